/**
 * Where a proxy's CPU goes while it relays: `perf record -e cpu-clock -g` on its processes, each
 * sample's kernel and user stack sorted into what it was doing. The split answers "what limits it"
 * from a profile: the proxy's own code, the kernel's TCP/IP work, or the cost of waking the process on
 * the other side of each message and of sleeping until the next one (which every relay adds once per
 * traversal, whatever its configuration).
 */
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { sleep } from '../local/readiness';
import { findExecutable } from '../local/system';

const execFileAsync = promisify(execFile);

/** What a sample was doing, judged from its whole stack; the first matching kind wins. */
export const PROFILE_KINDS = ['wake', 'switch', 'kernel', 'user'] as const;
export type ProfileKind = (typeof PROFILE_KINDS)[number];

export const PROFILE_KIND_LABELS: Readonly<Record<ProfileKind, string>> = {
  wake: 'waking the process that waits on the other socket',
  switch: 'sleeping in epoll_wait and being switched back in',
  kernel: 'rest of the kernel (TCP/IP, system calls)',
  user: 'the proxy itself and libc (user space)',
};

// A send on loopback runs the receiver's TCP input in the sender's context, ending in a wake-up of
// whoever sleeps on that socket; on a virtual machine that wake-up is an inter-processor interrupt.
const WAKE_FRAMES = /^(sock_def_readable|sock_def_write_space|ep_poll_callback|__wake_up(_common|_sync_key)?|try_to_wake_up|ttwu_\w+)$/;
const SWITCH_FRAMES = /^(finish_task_switch(\.\w+)*|__schedule|schedule|schedule_hrtimeout_range(_clock)?)$/;

export interface ProfileFrame {
  readonly symbol: string;
  readonly kernel: boolean;
}

export interface CpuProfileSplit {
  readonly samples: number;
  /** Share of the samples per kind, percent (one decimal). */
  readonly percent: Readonly<Record<ProfileKind, number>>;
}

/** The kind of one sample from its frames, leaf first. */
export function classifyStack(frames: readonly ProfileFrame[]): ProfileKind {
  if (frames.some((frame) => frame.kernel && WAKE_FRAMES.test(frame.symbol))) return 'wake';
  if (frames.some((frame) => frame.kernel && SWITCH_FRAMES.test(frame.symbol))) return 'switch';
  return frames[0]?.kernel ? 'kernel' : 'user';
}

/** Samples of `perf script -F comm,tid,ip,sym,dso`: a header line, then one indented frame per line. */
export function parsePerfScript(text: string): ProfileFrame[][] {
  const samples: ProfileFrame[][] = [];
  let current: ProfileFrame[] | null = null;
  for (const line of text.split('\n')) {
    const frame = /^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$/.exec(line);
    if (frame && current) {
      current.push({ symbol: frame[1]!.replace(/\+0x[0-9a-f]+$/, ''), kernel: frame[2] === '[kernel.kallsyms]' });
    } else if (line.trim() === '') {
      current = null;
    } else if (!/^\s/.test(line)) {
      current = [];
      samples.push(current);
    }
  }
  return samples.filter((frames) => frames.length > 0);
}

/** Share of the samples spent waking the other side and sleeping, percent (one decimal). */
export function waitingPercent(split: CpuProfileSplit): number {
  return Math.round((split.percent.wake + split.percent.switch) * 10) / 10;
}

export function splitProfile(samples: readonly (readonly ProfileFrame[])[]): CpuProfileSplit {
  const counts: Record<ProfileKind, number> = { wake: 0, switch: 0, kernel: 0, user: 0 };
  for (const frames of samples) counts[classifyStack(frames)] += 1;
  const total = samples.length;
  const percent = Object.fromEntries(
    PROFILE_KINDS.map((kind) => [kind, total === 0 ? 0 : Math.round((counts[kind] / total) * 1000) / 10]),
  ) as Record<ProfileKind, number>;
  return { samples: total, percent };
}

export function perfAvailable(): boolean {
  return findExecutable('perf') !== undefined;
}

/**
 * Samples `pids` with `perf record` while `work` runs; `null` when perf is missing or not allowed
 * here (the profile is evidence for RESULTS.md, not a figure any verdict rests on).
 */
export async function profileWhile(pids: readonly number[], outFile: string, work: () => Promise<void>): Promise<CpuProfileSplit | null> {
  if (!perfAvailable()) return null;
  const perf = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-g', '-o', outFile, '-p', pids.join(',')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  perf.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString('utf8')));
  // perf record stops on SIGINT, writes its data, then re-raises the signal: exit by SIGINT is success.
  const exited = new Promise<string>((resolve) => {
    perf.once('error', (error) => resolve(error.message));
    perf.once('exit', (code, signal) => resolve(code === 0 || signal === 'SIGINT' ? 'ok' : `exit ${code ?? signal}`));
  });
  // perf writes its file header once it has attached to every process.
  const deadline = Date.now() + 5000;
  while (!fs.existsSync(outFile) && perf.exitCode === null && Date.now() < deadline) await sleep(20);
  await sleep(100);
  try {
    await work();
  } finally {
    perf.kill('SIGINT');
  }
  const outcome = await exited;
  if (outcome !== 'ok' || !fs.existsSync(outFile)) {
    throw new Error(`perf record on ${pids.join(', ')} failed (${outcome}): ${errors.trim()}`);
  }
  // A stack per sample: about 1 KB each, a megabyte or more per profile.
  const { stdout } = await execFileAsync('perf', ['script', '-i', outFile, '-F', 'comm,tid,ip,sym,dso'], { maxBuffer: 256 * 1024 * 1024 });
  fs.rmSync(outFile, { force: true });
  return splitProfile(parsePerfScript(stdout));
}

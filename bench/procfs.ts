/**
 * What the benchmark reads about processes from /proc: memory (RSS, and PSS, which splits shared
 * pages between the processes that map them), CPU time and open descriptors, summed over a process
 * and its descendants (an nginx master and its workers).
 */
import * as fs from 'node:fs';
import type { CpuProfile } from './results';

/** Kernel clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;

function readOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces and parentheses). */
function statFields(pid: number): string[] | null {
  const stat = readOrNull(`/proc/${pid}/stat`);
  if (stat === null) return null;
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** `pid` and every live descendant. */
export function processTree(pid: number): number[] {
  const childrenOf = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (!fields) continue;
    const ppid = Number(fields[1]);
    const list = childrenOf.get(ppid) ?? [];
    list.push(Number(entry));
    childrenOf.set(ppid, list);
  }
  const tree: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    if (readOrNull(`/proc/${next}/stat`) === null) continue;
    tree.push(next);
    queue.push(...(childrenOf.get(next) ?? []));
  }
  return tree;
}

function statusKilobytes(pid: number, field: string, file = 'status'): number {
  const text = readOrNull(`/proc/${pid}/${file}`);
  const match = text ? new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text) : null;
  return match ? Number(match[1]) : 0;
}

/** The thread ids of a process; none once it has exited. */
function threadIds(pid: number): string[] {
  try {
    return fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
}

/** Voluntary + involuntary context switches of all of a process's threads. /proc/<pid>/status
 * counts the main thread's only, and HAProxy (nbthread) or a Node process switch on others too. */
function threadContextSwitches(pid: number): number {
  let switches = 0;
  for (const tid of threadIds(pid)) {
    const status = readOrNull(`/proc/${pid}/task/${tid}/status`) ?? '';
    for (const field of ['voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches']) {
      switches += Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    }
  }
  return switches;
}

/**
 * Nanoseconds every thread of `pids` has run on a CPU (/proc/<pid>/task/<tid>/schedstat, first
 * field): exact to the nanosecond where stat counts 10 ms ticks, so it can meter a window of a few
 * round trips. Threads that exited meanwhile drop out of the sum.
 */
export function threadCpuNanoseconds(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    for (const tid of threadIds(pid)) {
      const schedstat = readOrNull(`/proc/${pid}/task/${tid}/schedstat`);
      total += schedstat ? Number(schedstat.split(' ')[0]) || 0 : 0;
    }
  }
  return total;
}

export interface ProcessSample {
  readonly pids: readonly number[];
  /** Sum of VmRSS, bytes (shared pages counted once per process). */
  readonly rssBytes: number;
  /** Sum of Pss, bytes (shared pages divided among their users). */
  readonly pssBytes: number;
  /** utime + stime of the live processes, seconds. */
  readonly cpuSeconds: number;
  /** Open descriptors per process. */
  readonly fds: readonly number[];
  /** Voluntary + involuntary context switches of all threads (each wake-up from epoll_wait is one). */
  readonly contextSwitches: number;
}

export function sampleProcesses(pids: readonly number[]): ProcessSample {
  let rss = 0;
  let pss = 0;
  let cpuTicks = 0;
  let contextSwitches = 0;
  const fds: number[] = [];
  const live: number[] = [];
  for (const pid of pids) {
    const fields = statFields(pid);
    if (!fields) continue;
    live.push(pid);
    // utime and stime are fields 14 and 15 of stat; fields[] starts at field 3 (state).
    cpuTicks += Number(fields[11]) + Number(fields[12]);
    rss += statusKilobytes(pid, 'VmRSS');
    contextSwitches += threadContextSwitches(pid);
    pss += statusKilobytes(pid, 'Pss', 'smaps_rollup');
    try {
      fds.push(fs.readdirSync(`/proc/${pid}/fd`).length);
    } catch {
      fds.push(0);
    }
  }
  return { pids: live, rssBytes: rss * 1024, pssBytes: pss * 1024, cpuSeconds: cpuTicks / CLOCK_TICKS_PER_SECOND, fds, contextSwitches };
}

/** A process tree sampled as a whole (nginx master + workers, HAProxy, a node). */
export function sampleTree(rootPid: number): ProcessSample {
  return sampleProcesses(processTree(rootPid));
}

/** The command lines of `pids` (nginx workers of an old configuration read "shutting down"). */
export function commandLines(pids: readonly number[]): string[] {
  return pids.map((pid) => (readOrNull(`/proc/${pid}/cmdline`) ?? '').replace(/\0/g, ' ').trim());
}

/** The soft open-file limit of a running process. */
export function openFileLimit(pid: number): number | null {
  const limits = readOrNull(`/proc/${pid}/limits`);
  const match = limits ? /^Max open files\s+(\d+)/m.exec(limits) : null;
  return match ? Number(match[1]) : null;
}

/** Processes whose working directory is `dir` (how the local topology's Redis is found). */
export function pidsWorkingIn(dir: string, command?: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readlinkSync(`/proc/${entry}/cwd`) !== dir) continue;
      if (command && fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== command) continue;
      pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Busy and total CPU time of the whole machine from /proc/stat, in ticks. */
function machineTicks(): { busy: number; total: number } {
  const line = (readOrNull('/proc/stat') ?? '').split('\n').find((entry) => entry.startsWith('cpu '));
  if (!line) return { busy: 0, total: 0 };
  // user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.slice(0, 8).reduce((sum, value) => sum + value, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: total - idle, total };
}

/** The processes of one component; re-evaluated at each sample (a restarted node has a new pid). */
export type ComponentPids = () => readonly number[];

/**
 * CPU seconds per component over a phase: the evidence for "what limits it". The benchmark's own
 * process is measured with process.cpuUsage() (it runs the latency and publishing clients).
 */
export function startCpuMeter(components: Readonly<Record<string, ComponentPids>>, nproc: number) {
  const sampleOf = (pids: ComponentPids): ProcessSample => sampleProcesses(pids());
  const start = new Map(Object.entries(components).map(([name, pids]) => [name, sampleOf(pids)]));
  const selfStart = process.cpuUsage();
  const machineStart = machineTicks();
  const wallStart = performance.now();
  return {
    stop(): CpuProfile {
      const wallSeconds = (performance.now() - wallStart) / 1000;
      const seconds: Record<string, number> = {};
      const contextSwitches: Record<string, number> = {};
      for (const [name, pids] of Object.entries(components)) {
        const now = sampleOf(pids);
        seconds[name] = Math.max(0, now.cpuSeconds - (start.get(name)?.cpuSeconds ?? 0));
        contextSwitches[name] = Math.max(0, now.contextSwitches - (start.get(name)?.contextSwitches ?? 0));
      }
      const self = process.cpuUsage(selfStart);
      seconds['bench process'] = (self.user + self.system) / 1e6;
      const percentOfMachine: Record<string, number> = {};
      for (const [name, value] of Object.entries(seconds)) {
        seconds[name] = Math.round(value * 100) / 100;
        percentOfMachine[name] = wallSeconds > 0 ? Math.round((value / (wallSeconds * nproc)) * 1000) / 10 : 0;
      }
      const machine = machineTicks();
      const totalTicks = machine.total - machineStart.total;
      const machineBusyPercent = totalTicks > 0 ? Math.round(((machine.busy - machineStart.busy) / totalTicks) * 1000) / 10 : 0;
      return { wallSeconds: Math.round(wallSeconds * 100) / 100, seconds, percentOfMachine, contextSwitches, machineBusyPercent };
    },
  };
}

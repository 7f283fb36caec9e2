/**
 * Helpers for the servers/ tests: run real bash, shellcheck and systemd-analyze, temp dirs, free
 * ports, and child processes that are always stopped.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface RunResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a bash script file (or `-c` text) synchronously. */
export function runBash(args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): RunResult {
  const r = spawnSync('bash', args, {
    env: options.env ?? process.env,
    input: options.input,
    cwd: options.cwd,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** shellcheck's findings for a bash script (empty string = clean). */
export function shellcheck(script: string): string {
  const r = spawnSync('shellcheck', ['-s', 'bash', '-'], { input: script, encoding: 'utf8' });
  if (r.error) throw r.error;
  return `${r.stdout}${r.stderr}`.trim();
}

/** `bash -n` (parse only); returns bash's complaint or ''. */
export function bashSyntaxError(script: string): string {
  const r = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
  return r.status === 0 ? '' : r.stderr;
}

export function makeTempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `realtime-edge-${prefix}-`));
}

export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** Writes `script` into `dir` and runs it with `env` added to a minimal environment. */
export function runScriptInRoot(dir: string, script: string, env: Record<string, string>): RunResult {
  const file = join(dir, 'user-data.sh');
  writeFileSync(file, script);
  return runBash([file], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', TMPDIR: dir, ...env } });
}

/** Like `runScriptInRoot`, but asynchronous: use it when the script talks to a server that runs
 * in the test process (a synchronous spawn would block that server's event loop). */
export function runScriptInRootAsync(dir: string, script: string, env: Record<string, string>): Promise<RunResult> {
  const file = join(dir, 'user-data.sh');
  writeFileSync(file, script);
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [file], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', TMPDIR: dir, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** `systemd-analyze verify` of `unitName` inside the staging root `root` (which already holds the
 * unit under /etc/systemd/system). systemd's own unit library is copied in so dependencies such as
 * network-online.target resolve, and each ExecStart program is created as an empty executable.
 * Returns systemd's complaints (warnings included) or ''. */
export function systemdVerify(root: string, unitName: string, executables: readonly string[]): string {
  const library = join(root, 'usr/lib/systemd/system');
  if (!existsSync(library)) {
    mkdirSync(dirname(library), { recursive: true });
    cpSync('/lib/systemd/system', library, { recursive: true });
  }
  for (const exe of executables) {
    const path = join(root, exe);
    if (!existsSync(path)) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, '#!/bin/sh\n');
      chmodSync(path, 0o755);
    }
  }
  const r = spawnSync('systemd-analyze', ['verify', `--root=${root}`, unitName], { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.trim() + (r.status === 0 ? '' : `\n(exit ${r.status})`);
}

/** A TCP port nobody listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Child processes started by a test; `stopAll` ends every one (TERM, then KILL). */
export class ProcessGroup {
  private readonly children: { name: string; child: ChildProcess; output: string[] }[] = [];

  start(name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    child.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
    child.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
    this.children.push({ name, child, output });
    return child;
  }

  /** Everything a process printed so far (for failure messages). */
  output(name: string): string {
    return this.children.find((c) => c.name === name)?.output.join('') ?? '';
  }

  /** Stops every process started as `name` (TERM, then KILL) and waits until each has exited. */
  async stop(name: string): Promise<void> {
    await Promise.all(this.children.filter((c) => c.name === name).map(({ child }) => stopChild(child)));
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.children.map(({ child }) => stopChild(child)));
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Polls `url` until it answers 200 or `attempts` polls (every 200 ms) have failed. */
export async function waitForHttp200(url: string, attempts = 100, headers: Record<string, string> = {}): Promise<void> {
  let last = '';
  for (let i = 0; i < attempts; i += 1) {
    try {
      const response = await fetch(url, { headers });
      if (response.status === 200) return;
      last = `status ${response.status}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer 200: ${last}`);
}

/** The number of the step whose name starts with `prefix` in a rendered bootstrap script. */
export function stepNumber(script: string, prefix: string): number {
  const match = script.split('\n').find((line) => line.startsWith(`# step `) && line.includes(`: ${prefix}`));
  if (!match) throw new Error(`no step starting with ${JSON.stringify(prefix)}`);
  return Number(/^# step (\d+):/.exec(match)?.[1]);
}

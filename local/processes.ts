/**
 * Child processes of the local topology: each runs in its own process group (so nginx workers die
 * with their master), writes stdout/stderr to a log file in the run folder, and is registered so that
 * nothing outlives its owner: `stop()`, SIGINT/SIGTERM/SIGHUP and process exit all end every group.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { waitUntil } from './readiness';

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitStatus>;
  isRunning(): boolean;
  /** Sends a signal to this process only (e.g. SIGHUP to an nginx master). */
  signal(signal: NodeJS.Signals): void;
  /** Sends a signal to the whole process group (nginx master and workers alike). */
  signalGroup(signal: NodeJS.Signals): void;
  /** `signal` (default SIGTERM), then SIGKILL to the group if it has not exited after `graceMs`. */
  stop(options?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<ExitStatus>;
}

export interface StartProcessOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Working directory; always inside the run folder, which is how stale processes are recognized. */
  readonly cwd: string;
  readonly logPath: string;
  readonly env?: NodeJS.ProcessEnv;
}

const running = new Set<ManagedProcess>();
const shutdownHooks = new Set<() => Promise<void>>();
let handlersInstalled = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

export function startProcess(options: StartProcessOptions): ManagedProcess {
  installExitHandlers();
  const logFd = fs.openSync(options.logPath, 'a');
  const child = spawn(options.command, [...options.args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    // Own process group: the group can be killed as a whole, and a Ctrl-C in the terminal reaches
    // only the CLI, which then stops everything in order.
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  if (child.pid === undefined) {
    // A failed spawn (e.g. ENOENT) also emits 'error'; without a listener that event would crash
    // the whole process instead of surfacing as this error.
    child.once('error', () => undefined);
    throw new Error(`could not start ${options.name} (${options.command}): spawn returned no pid`);
  }
  const pid = child.pid;
  let alive = true;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      running.delete(managed);
      resolve({ code, signal });
    });
    child.once('error', () => {
      alive = false;
      running.delete(managed);
      resolve({ code: null, signal: null });
    });
  });
  // The topology's handles keep the event loop alive where needed; a child alone must not.
  child.unref();

  const managed: ManagedProcess = {
    name: options.name,
    pid,
    logPath: options.logPath,
    exited,
    isRunning: () => alive,
    signal: (signal) => {
      if (alive) process.kill(pid, signal);
    },
    signalGroup: (signal) => {
      if (alive) killGroup(pid, signal);
    },
    stop: async ({ signal = 'SIGTERM', graceMs = 5000 } = {}) => {
      if (!alive) {
        killGroup(pid, 'SIGKILL'); // leftovers of the group, e.g. orphaned workers
        return exited;
      }
      killGroup(pid, signal);
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      const status = await exited;
      clearTimeout(timer);
      killGroup(pid, 'SIGKILL');
      return status;
    },
  };
  running.add(managed);
  return managed;
}

export interface ReadyCheck {
  /** True once the process serves (a port accepts, a health URL answers). */
  readonly check: () => Promise<boolean>;
  /** What is awaited, for the timeout message. */
  readonly what: string;
  readonly timeoutMs: number;
  /** Why waiting stopped when the process exits first. Default: "<name> exited; see <log>". */
  readonly exitMessage?: () => string;
}

/** `startProcess`, then wait until `ready.check` holds. A process that exits first or is not ready
 * in time is stopped (its whole group) before the error is thrown, so nothing half-started is left. */
export async function startReadyProcess(options: StartProcessOptions, ready: ReadyCheck): Promise<ManagedProcess> {
  const proc = startProcess(options);
  const exitMessage = ready.exitMessage ?? (() => `${options.name} exited; see ${options.logPath}`);
  try {
    await waitUntil(ready.check, {
      what: ready.what,
      timeoutMs: ready.timeoutMs,
      abortReason: () => (proc.isRunning() ? undefined : exitMessage()),
    });
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return proc;
}

/** Registers an async cleanup (a topology's `stop`) run on SIGINT/SIGTERM/SIGHUP before exiting.
 * Returns a function that unregisters it. */
export function onShutdownSignal(hook: () => Promise<void>): () => void {
  installExitHandlers();
  shutdownHooks.add(hook);
  return () => shutdownHooks.delete(hook);
}

/** Kills every process group this process started and has not yet seen exit. */
export function killAllSync(): void {
  for (const proc of running) proc.signalGroup('SIGKILL');
}

/** Processes whose names mark them as part of the command that started us (npm, its `sh -c`, tsx).
 * Interactive shells are not: `nohup npm run local &` outlives the shell it was started from. */
const LAUNCHER_NAMES = /^(node|sh|npm|npx|tsx)\b/;

/** Name and parent of a live process; undefined when it is gone (or a zombie, dead but unreaped). */
function parentOf(pid: number): { ppid: number; name: string } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z' || state === 'X') return undefined;
    return { ppid: Number(ppid), name };
  } catch {
    return undefined;
  }
}

/**
 * `npm run local` is node under tsx under sh under npm. A SIGTERM sent to npm ends npm and sh but
 * is not passed on to tsx, which would leave this process (and everything it started) running
 * without a parent. So the launcher chain is watched, and its end is handled like SIGTERM.
 */
export function stopWhenLauncherExits(pollMs = 1000): void {
  installExitHandlers();
  const launchers: number[] = [];
  let pid = process.ppid;
  while (pid > 1 && launchers.length < 8) {
    const info = parentOf(pid);
    if (!info || !LAUNCHER_NAMES.test(info.name)) break;
    launchers.push(pid);
    pid = info.ppid;
  }
  const timer = setInterval(() => {
    if (launchers.some((launcher) => parentOf(launcher) === undefined)) {
      clearInterval(timer);
      process.emit('SIGTERM', 'SIGTERM');
    }
  }, pollMs);
  timer.unref();
}

const SIGNAL_EXIT_CODES: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // Last resort: whatever way this process ends, its children end too.
  process.on('exit', killAllSync);
  let shuttingDown = false;
  for (const signal of Object.keys(SIGNAL_EXIT_CODES) as NodeJS.Signals[]) {
    process.on(signal, () => {
      if (shuttingDown) return;
      shuttingDown = true;
      const hooks = [...shutdownHooks];
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref());
      void Promise.race([Promise.allSettled(hooks.map((hook) => hook())), deadline]).finally(() => {
        killAllSync();
        process.exit(SIGNAL_EXIT_CODES[signal]);
      });
    });
  }
}

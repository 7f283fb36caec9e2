/**
 * The run folder: every file the local topology writes (configs, certificate, logs, pid files, nginx
 * temp files) lives in `<project>/run/<label>-<time>-<pid>/`, which git ignores. Every child process
 * runs with its working directory inside it, which is how a later run recognizes and ends processes a
 * crashed run left behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const PROJECT_ROOT = path.resolve(__dirname, '..');
export const RUN_ROOT = path.join(PROJECT_ROOT, 'run');
const OWNER_FILE = 'owner.json';

export interface RunFolder {
  readonly path: string;
  /** Creates (if needed) and returns a sub folder. */
  subdir(...segments: string[]): string;
  remove(): void;
}

export function createRunFolder(label: string): RunFolder {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(label)) {
    throw new Error(`run folder label "${label}" is not valid; allowed: lowercase letters, digits and dashes`);
  }
  fs.mkdirSync(RUN_ROOT, { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  const folder = fs.mkdtempSync(path.join(RUN_ROOT, `${label}-${stamp}-${process.pid}-`));
  // nginx workers run as an unprivileged user and must reach the error page inside.
  fs.chmodSync(folder, 0o755);
  fs.writeFileSync(path.join(folder, OWNER_FILE), JSON.stringify({ ownerPid: process.pid }) + '\n');
  return {
    path: folder,
    subdir: (...segments) => {
      const dir = path.join(folder, ...segments);
      fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      return dir;
    },
    remove: () => fs.rmSync(folder, { recursive: true, force: true }),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Exited: no such process, or a zombie (its sockets and files are closed; only its parent's wait is
 * missing). */
export function hasExited(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name, which is in parentheses and may itself hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** How long cleanStaleRuns waits for the processes it killed to exit. */
const STALE_EXIT_TIMEOUT_MS = 5_000;

/** Pids of the processes whose working directory is inside one of `folders`. */
export function processesWorkingIn(folders: readonly string[]): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cwd: string;
    try {
      cwd = fs.readlinkSync(`/proc/${entry}/cwd`);
    } catch {
      continue; // exited meanwhile, or not ours to inspect
    }
    if (folders.some((folder) => cwd === folder || cwd.startsWith(folder + path.sep))) pids.push(Number(entry));
  }
  return pids;
}

/**
 * Ends the processes of run folders whose owner has died (a crashed or SIGKILLed run) and removes those
 * folders. Folders of live owners, e.g. a parallel test worker, are left alone. Resolves once the
 * ended processes have exited, so the ports they held are free again. Returns the pids ended.
 */
export async function cleanStaleRuns(): Promise<number[]> {
  if (!fs.existsSync(RUN_ROOT)) return [];
  const stale: string[] = [];
  for (const entry of fs.readdirSync(RUN_ROOT)) {
    const folder = path.join(RUN_ROOT, entry);
    let ownerPid: number | undefined;
    try {
      ownerPid = (JSON.parse(fs.readFileSync(path.join(folder, OWNER_FILE), 'utf8')) as { ownerPid?: number }).ownerPid;
    } catch {
      continue; // not a run folder of ours
    }
    if (typeof ownerPid === 'number' && ownerPid !== process.pid && !isAlive(ownerPid)) stale.push(folder);
  }
  if (stale.length === 0) return [];
  const pids = processesWorkingIn(stale);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // SIGKILL is asynchronous: a process still holds its listening sockets until it has exited.
  const deadline = Date.now() + STALE_EXIT_TIMEOUT_MS;
  while (!pids.every(hasExited) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  for (const folder of stale) fs.rmSync(folder, { recursive: true, force: true });
  return pids;
}

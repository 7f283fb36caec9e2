/**
 * Runs nginx with a config rendered by `renderNginxConf` from the shared spec. Everything nginx writes
 * (pid, logs, temp files) is under its folder in the run folder: `-p` sets the prefix, `-e` replaces
 * the compiled-in error log (Debian's is /var/log/nginx/error.log, opened before the config is read),
 * and the spec's `paths` point inside the folder.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { renderErrorPage, renderNginxConf } from '../nginx/conf';
import type { NginxPaths, NginxSpec } from '../nginx/spec';
import { startReadyProcess, type ManagedProcess } from './processes';
import { LOOPBACK } from './ports';
import { tcpAccepts, waitUntil } from './readiness';
import { findExecutable } from './system';

export interface NginxHandle {
  readonly spec: NginxSpec;
  readonly confPath: string;
  readonly paths: NginxPaths;
  readonly masterPid: number;
  isRunning(): boolean;
  /** Renders `spec`, checks it with `nginx -t`, sends SIGHUP and waits until the new workers took over. */
  reload(spec: NginxSpec): Promise<void>;
  /** Fast shutdown (SIGTERM: open WebSockets are cut, as on a host going down). */
  stop(): Promise<void>;
}

/** Paths for a spec whose files all live in `dir`. */
export function nginxPathsIn(dir: string): NginxPaths {
  return {
    pidFile: path.join(dir, 'nginx.pid'),
    errorLog: path.join(dir, 'logs', 'error.log'),
    accessLog: path.join(dir, 'logs', 'access.log'),
    errorPageRoot: path.join(dir, 'html'),
    tempDir: path.join(dir, 'tmp'),
  };
}

/** Every port the spec makes nginx listen on (what "nginx is up" waits for). */
export function listenPortsOf(spec: NginxSpec): number[] {
  const ports: number[] = [];
  if (spec.http) {
    if (spec.http.listenPort !== undefined) ports.push(spec.http.listenPort);
    if (typeof spec.http.redirectHttpPort === 'number') ports.push(spec.http.redirectHttpPort);
  }
  for (const listener of spec.stream?.listeners ?? []) ports.push(listener.listenPort);
  if (typeof spec.statusPort === 'number') ports.push(spec.statusPort);
  return ports;
}

function run(command: string, args: readonly string[]): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(command, [...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ ok: !error, output: `${stdout}${stderr}`.trim() });
    });
  });
}

function childPidsOf(parentPid: number): Array<{ pid: number; title: string }> {
  const children: Array<{ pid: number; title: string }> = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the parenthesized command name, which may itself contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parentPid) continue;
      const title = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      children.push({ pid: Number(entry), title });
    } catch {
      // exited meanwhile
    }
  }
  return children;
}

function tail(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface StartNginxOptions {
  /** Folder for nginx.conf, logs, pid and temp files; the spec's `paths` must point inside it. */
  readonly dir: string;
  readonly spec: NginxSpec;
  /** Default: `nginx` from PATH or /usr/sbin. */
  readonly binary?: string;
}

export async function startNginx(options: StartNginxOptions): Promise<NginxHandle> {
  const binary = options.binary ?? findExecutable('nginx');
  if (!binary) throw new Error('nginx is not installed (no `nginx` in PATH or /usr/sbin)');
  const dir = options.dir;
  const confPath = path.join(dir, 'nginx.conf');
  let spec = options.spec;
  const paths = spec.paths;
  for (const folder of [path.dirname(paths.errorLog), path.dirname(paths.accessLog), paths.errorPageRoot, paths.tempDir]) {
    if (folder) fs.mkdirSync(folder, { recursive: true, mode: 0o755 });
  }
  fs.writeFileSync(path.join(paths.errorPageRoot, '50x.html'), renderErrorPage(), { mode: 0o644 });
  const baseArgs = ['-p', dir + path.sep, '-c', confPath, '-e', paths.errorLog];

  async function writeAndTest(next: NginxSpec): Promise<void> {
    fs.writeFileSync(confPath, renderNginxConf(next));
    const test = await run(binary!, [...baseArgs, '-t', '-q']);
    if (!test.ok) throw new Error(`nginx -t rejected ${confPath}:\n${test.output}`);
  }

  await writeAndTest(spec);
  const master: ManagedProcess = await startReadyProcess(
    {
      name: 'nginx',
      command: binary,
      // Foreground master: the topology owns its lifetime (no daemon to find through a pid file).
      args: [...baseArgs, '-g', 'daemon off;'],
      cwd: dir,
      logPath: path.join(path.dirname(paths.errorLog), 'nginx.stdout.log'),
    },
    {
      check: async () => (await Promise.all(listenPortsOf(spec).map((port) => tcpAccepts(LOOPBACK, port)))).every(Boolean),
      what: `nginx listening on ${listenPortsOf(spec).join(', ')}`,
      timeoutMs: 15_000,
      exitMessage: () => `nginx exited; ${paths.errorLog}:\n${tail(paths.errorLog)}`,
    },
  );

  return {
    get spec() {
      return spec;
    },
    confPath,
    paths,
    masterPid: master.pid,
    isRunning: () => master.isRunning(),
    reload: async (next) => {
      const previous = spec;
      try {
        await writeAndTest(next);
      } catch (error) {
        fs.writeFileSync(confPath, renderNginxConf(previous));
        throw error;
      }
      const oldWorkers = new Set(childPidsOf(master.pid).map((child) => child.pid));
      master.signal('SIGHUP');
      // The reload is complete once new workers run and every old one has stopped accepting
      // (it renames itself "worker process is shutting down" or is gone).
      await waitUntil(
        async () => {
          const children = childPidsOf(master.pid);
          const fresh = children.filter((child) => !oldWorkers.has(child.pid) && child.title.includes('worker process'));
          const oldStillAccepting = children.filter(
            (child) => oldWorkers.has(child.pid) && child.title.includes('worker process') && !child.title.includes('shutting down'),
          );
          return fresh.length > 0 && oldStillAccepting.length === 0;
        },
        {
          what: `nginx reload (new workers replacing the old ones; see ${paths.errorLog})`,
          timeoutMs: 15_000,
          abortReason: () => (master.isRunning() ? undefined : `nginx exited; ${paths.errorLog}:\n${tail(paths.errorLog)}`),
        },
      );
      spec = next;
      await waitUntil(
        async () => (await Promise.all(listenPortsOf(next).map((port) => tcpAccepts(LOOPBACK, port)))).every(Boolean),
        { what: `nginx listening on ${listenPortsOf(next).join(', ')} after reload`, timeoutMs: 10_000 },
      );
    },
    stop: async () => {
      await master.stop({ signal: 'SIGTERM', graceMs: 5000 });
    },
  };
}

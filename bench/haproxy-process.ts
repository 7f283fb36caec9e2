/** Runs HAProxy in the foreground with a config from bench/haproxy.ts, owned by the benchmark. */
import * as path from 'node:path';
import { LOOPBACK } from '../local/ports';
import { startReadyProcess, type ManagedProcess } from '../local/processes';
import { tcpAccepts } from '../local/readiness';
import { findExecutable } from '../local/system';

export interface HaproxyProcessOptions {
  /** Folder of the config; the log goes here too. */
  readonly dir: string;
  readonly configPath: string;
  /** Ports HAProxy is up once it accepts on all of them. */
  readonly ports: readonly number[];
}

export async function startHaproxyProcess(options: HaproxyProcessOptions): Promise<ManagedProcess> {
  const binary = findExecutable('haproxy');
  if (!binary) throw new Error('haproxy is not installed (no `haproxy` in PATH or /usr/sbin); the benchmark compares nginx with it: apt-get install haproxy');
  return startReadyProcess(
    {
      name: 'haproxy',
      command: binary,
      // -db: foreground, the benchmark owns its lifetime.
      args: ['-f', options.configPath, '-db'],
      cwd: options.dir,
      logPath: path.join(options.dir, 'haproxy.log'),
    },
    {
      check: async () => (await Promise.all(options.ports.map((port) => tcpAccepts(LOOPBACK, port)))).every(Boolean),
      what: `haproxy listening on ${options.ports.join(', ')}`,
      timeoutMs: 10_000,
    },
  );
}

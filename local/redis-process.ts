/** A throwaway redis-server on loopback: no persistence, data dir and log in the run folder. */
import * as path from 'node:path';
import { LOOPBACK } from './ports';
import { startProcess, type ManagedProcess } from './processes';
import { redisPing, waitUntil } from './readiness';
import { findExecutable } from './system';

export interface RedisHandle {
  readonly host: string;
  readonly port: number;
  isRunning(): boolean;
  /** SIGTERM and wait for exit (what a Redis restart or outage looks like to the nodes). */
  stop(): Promise<void>;
  /** Starts it again on the same port and waits for PING. */
  start(): Promise<void>;
}

export async function startRedis(options: { dir: string; port: number; binary?: string }): Promise<RedisHandle> {
  const binary = options.binary ?? findExecutable('redis-server');
  if (!binary) throw new Error('redis-server is not installed (no `redis-server` in PATH or /usr/sbin)');
  let current: ManagedProcess | undefined;

  async function launch(): Promise<void> {
    const proc = startProcess({
      name: 'redis',
      command: binary!,
      args: [
        '--bind', LOOPBACK,
        '--port', String(options.port),
        // Cluster messages and the record cache only; nothing worth a disk write.
        '--save', '',
        '--appendonly', 'no',
        '--dir', options.dir,
        '--daemonize', 'no',
        '--logfile', '',
      ],
      cwd: options.dir,
      logPath: path.join(options.dir, 'redis.log'),
    });
    current = proc;
    try {
      await waitUntil(() => redisPing(LOOPBACK, options.port), {
        what: `redis on port ${options.port}`,
        timeoutMs: 10_000,
        abortReason: () => (proc.isRunning() ? undefined : `redis-server exited; see ${proc.logPath}`),
      });
    } catch (error) {
      await proc.stop({ graceMs: 1000 });
      throw error;
    }
  }

  await launch();
  return {
    host: LOOPBACK,
    port: options.port,
    isRunning: () => current?.isRunning() ?? false,
    stop: async () => {
      await current?.stop({ signal: 'SIGTERM', graceMs: 5000 });
    },
    start: async () => {
      if (current?.isRunning()) return;
      await launch();
    },
  };
}

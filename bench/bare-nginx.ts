/**
 * nginx with the fewest directives that do the job and nginx's defaults for everything else: what the
 * rendered config is compared with, so a figure can be told apart from a setting (bench only;
 * `nginx -t` checks both configs in test/bench-harness.test.ts).
 * - stream: `listen` + `proxy_pass` (the relay floor, bench/relay-floor.ts);
 * - http: `listen` + `proxy_pass` + the two headers a WebSocket upgrade needs (memory per connection).
 * Only file locations are added (pid, error log, temp directories), so nothing outside `dir` is used,
 * and, for http, room for the memory probe's clients (nginx's default of 512 connection slots holds
 * 250 proxied clients; a slot costs memory only once used).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LOOPBACK } from '../local/ports';
import { startReadyProcess, type ManagedProcess } from '../local/processes';
import { tcpAccepts } from '../local/readiness';
import { findExecutable } from '../local/system';

export interface BareNginxOptions {
  /** Folder for nginx.conf, logs, pid and temp files. */
  readonly dir: string;
  readonly listenPort: number;
  /** Absolute path of a dynamic stream module to load (Debian), if the config needs one. */
  readonly streamModulePath?: string;
}

function fileLocations(dir: string): string[] {
  return [`pid ${path.join(dir, 'nginx.pid')};`, `error_log ${path.join(dir, 'error.log')} warn;`];
}

/** A TCP relay: one stream server with `listen` and `proxy_pass`. */
export function bareStreamConf(options: BareNginxOptions & { readonly upstreamPort: number }): string {
  return [
    ...(options.streamModulePath ? [`load_module ${options.streamModulePath};`] : []),
    ...fileLocations(options.dir),
    'events {}',
    'stream {',
    `    server { listen ${LOOPBACK}:${options.listenPort}; proxy_pass ${LOOPBACK}:${options.upstreamPort}; }`,
    '}',
    '',
  ].join('\n');
}

/** A WebSocket proxy: `proxy_pass` to the nodes with HTTP/1.1 and the Upgrade/Connection headers. */
export function bareHttpConf(options: BareNginxOptions & { readonly upstreamPorts: readonly number[]; readonly clients: number }): string {
  const temp = (kind: string): string => `    ${kind}_temp_path ${path.join(options.dir, 'tmp', kind)};`;
  return [
    ...fileLocations(options.dir),
    `events { worker_connections ${2 * options.clients + 64}; }`,
    'http {',
    `    access_log ${path.join(options.dir, 'access.log')};`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp),
    `    upstream nodes { ${options.upstreamPorts.map((port) => `server ${LOOPBACK}:${port};`).join(' ')} }`,
    `    server {`,
    `        listen ${LOOPBACK}:${options.listenPort};`,
    '        location / {',
    '            proxy_pass http://nodes;',
    '            proxy_http_version 1.1;',
    '            proxy_set_header Upgrade $http_upgrade;',
    '            proxy_set_header Connection "upgrade";',
    '        }',
    '    }',
    '}',
    '',
  ].join('\n');
}

/** Starts nginx in the foreground with `conf` and waits until it accepts on `listenPort`. */
export async function startBareNginx(dir: string, conf: string, listenPort: number): Promise<ManagedProcess> {
  const binary = findExecutable('nginx');
  if (!binary) throw new Error('nginx is not installed (no `nginx` in PATH or /usr/sbin)');
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true, mode: 0o755 });
  const confPath = path.join(dir, 'nginx.conf');
  fs.writeFileSync(confPath, conf);
  const errorLog = path.join(dir, 'error.log');
  return startReadyProcess(
    {
      name: 'nginx-bare',
      command: binary,
      args: ['-p', dir + path.sep, '-c', confPath, '-e', errorLog, '-g', 'daemon off;'],
      cwd: dir,
      logPath: path.join(dir, 'nginx.stdout.log'),
    },
    {
      check: () => tcpAccepts(LOOPBACK, listenPort),
      what: `bare nginx listening on ${listenPort}`,
      timeoutMs: 10_000,
      exitMessage: () => `bare nginx exited; see ${errorLog}`,
    },
  );
}

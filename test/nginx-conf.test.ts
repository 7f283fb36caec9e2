/**
 * renderNginxConf: every option rendered and accepted by the real `nginx -t`; what nginx -t cannot
 * see proven by a real nginx (TLS versions and ciphers, prefix stripping, next-upstream rules, the
 * 50x page, redirects, affinity, logs) between real clients and tiny upstreams; every validation
 * error; properties over random specs.
 */
import { X509Certificate } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as fc from 'fast-check';
import WebSocket, { WebSocketServer } from 'ws';
import {
  ERROR_PAGE_FILE,
  NginxSpecError,
  colocatedWorkerProcesses,
  TLS_CIPHERS,
  defaultIdleTimeoutSeconds,
  nginxCapacity,
  renderErrorPage,
  renderNginxConf,
} from '../nginx/conf';
import { PROXY_DEFAULTS } from '../config/proxy-defaults';
import type { BackendMount, BalanceStrategy, NginxSpec, UpstreamServer } from '../nginx/spec';
import { centrifugoProfile } from '../servers/centrifugo';
import { deepstreamProfile } from '../servers/deepstream';
import { ORIGIN_MAX_LENGTH } from '../servers/validate';
import type { ServerProfile } from '../servers/profile';
import {
  checkNginxConf,
  childArgs,
  findDirectives,
  freePorts,
  makeNginxPrefix,
  parseNginxConf,
  startNginx,
  type NginxDirective,
  type NginxTestPrefix,
  type RunningNginx,
} from './helpers/nginx';

let prefix: NginxTestPrefix;
beforeAll(() => {
  prefix = makeNginxPrefix('conf');
});
afterAll(() => prefix?.cleanup());

const ds = (servers: UpstreamServer[] = [{ host: '10.0.0.1' }, { host: '10.0.0.2' }], extra: Partial<BackendMount> = {}): BackendMount => ({
  profile: deepstreamProfile,
  servers,
  ...extra,
});
const cf = (servers: UpstreamServer[] = [{ host: '10.0.1.1' }, { host: '10.0.1.2' }], extra: Partial<BackendMount> = {}): BackendMount => ({
  profile: centrifugoProfile,
  servers,
  ...extra,
});
const tlsOf = (p: NginxTestPrefix, hstsMaxAgeSeconds?: number) => ({
  certificatePath: p.tls.certificatePath,
  keyPath: p.tls.keyPath,
  ...(hstsMaxAgeSeconds !== undefined && { hstsMaxAgeSeconds }),
});

async function expectAccepted(conf: string, options: Parameters<typeof checkNginxConf>[1] = {}): Promise<void> {
  const result = await checkNginxConf(conf, options);
  if (!result.ok) throw new Error(`nginx -t rejected:\n${result.output}\n\n${result.testedText}`);
  // Unprivileged, nginx ignores `user` with a warning; every other warning is a defect of the config.
  const runningAsRoot = process.getuid?.() === 0;
  expect(result.warnings.filter((w) => runningAsRoot || !w.includes('"user" directive'))).toEqual([]);
}

// -------------------------------------------------------------------------------------------------
// 1. The matrix: every option through the real nginx -t
// -------------------------------------------------------------------------------------------------

type MatrixCase = [name: string, spec: (p: NginxTestPrefix) => NginxSpec];

const matrix: MatrixCase[] = [
  ['http, plain, deepstream, round robin, status off', (p) => ({ http: { listenPort: 8080, backends: [ds()] }, statusPort: null, paths: p.paths })],
  ['http, TLS, HSTS, default redirect 80 -> 443, least_conn', (p) => ({ http: { tls: tlsOf(p, 63072000), backends: [ds(undefined, { balance: { strategy: 'least-conn' } })] }, paths: p.paths })],
  ['http, TLS on 8443, redirect disabled', (p) => ({ http: { listenPort: 8443, tls: tlsOf(p), redirectHttpPort: null, backends: [ds()] }, paths: p.paths })],
  ['http, TLS, redirect from 8080, server name', (p) => ({ http: { listenPort: 8443, redirectHttpPort: 8080, serverName: 'rt.example.com', tls: tlsOf(p), backends: [ds()] }, paths: p.paths })],
  ['http, both backends, centrifugo under /centrifugo, ip_hash', (p) => ({
    http: { tls: tlsOf(p), backends: [ds(undefined, { balance: { strategy: 'ip-hash' } }), cf(undefined, { prefix: '/centrifugo', balance: { strategy: 'ip-hash' } })] },
    paths: p.paths,
  })],
  ['http, centrifugo alone claims / (admin UI), hash $remote_addr', (p) => ({ http: { backends: [cf(undefined, { balance: { strategy: 'hash' } })] }, paths: p.paths })],
  ['http, cookie affinity on two backends (one map per cookie)', (p) => ({
    http: {
      backends: [
        ds(undefined, { balance: { strategy: 'hash', hashKey: '$cookie_sid' } }),
        cf(undefined, { prefix: '/rt/centrifugo', balance: { strategy: 'hash', hashKey: '${cookie_sid}' } }),
      ],
    },
    paths: p.paths,
  })],
  ['http, composite hash key', (p) => ({ http: { backends: [ds(undefined, { balance: { strategy: 'hash', hashKey: '$http_x_tenant:$remote_addr' } })] }, paths: p.paths })],
  ['http, random two least_conn with weights', (p) => ({
    http: { backends: [ds([{ host: '10.0.0.1', weight: 3 }, { host: '10.0.0.2' }, { host: '10.0.0.3', port: 7020 }], { balance: { strategy: 'random-two-least-conn' } })] },
    paths: p.paths,
  })],
  ['http, weights, backup and per-server passive-check overrides', (p) => ({
    http: { backends: [ds([{ host: '10.0.0.1', weight: 2, maxFails: 3, failTimeoutSeconds: 20 }, { host: 'localhost', maxFails: 1 }, { host: '10.0.0.9', backup: true }])] },
    paths: p.paths,
  })],
  ['stream, plain, dynamic module (default path)', (p) => ({
    stream: { listeners: [{ listenPort: 6021, backend: ds() }] },
    streamModule: { kind: 'dynamic' },
    paths: p.paths,
  })],
  ['stream, TLS, two listeners, hash $remote_addr', (p) => ({
    stream: {
      listeners: [
        { listenPort: 6021, tls: tlsOf(p), backend: ds(undefined, { balance: { strategy: 'hash', hashKey: '$remote_addr' } }) },
        { listenPort: 8001, tls: tlsOf(p), backend: cf(undefined, { balance: { strategy: 'hash' } }) },
      ],
    },
    streamModule: { kind: 'dynamic' },
    statusPort: null,
    paths: p.paths,
  })],
  ['stream, least_conn with a backup, random two least_conn on a second listener', (p) => ({
    stream: {
      listeners: [
        { listenPort: 6021, backend: ds([{ host: '10.0.0.1' }, { host: '10.0.0.2', backup: true }], { balance: { strategy: 'least-conn' } }) },
        { listenPort: 6022, backend: ds(undefined, { balance: { strategy: 'random-two-least-conn' } }) },
      ],
    },
    streamModule: { kind: 'dynamic' },
    paths: p.paths,
  })],
  ['http + stream in one file, TLS in both, explicit module path, separate stream log', (p) => ({
    http: { tls: tlsOf(p, 31536000), backends: [ds(), cf(undefined, { prefix: '/centrifugo' })] },
    stream: { listeners: [{ listenPort: 6021, tls: tlsOf(p), backend: ds() }] },
    streamModule: { kind: 'dynamic', path: '/usr/lib/nginx/modules/ngx_stream_module.so' },
    paths: { ...p.paths, streamAccessLog: `${p.dir}/logs/stream.log` },
  })],
  ['stream with a static module (EC2 build): the test nginx loads Debian\'s module itself', (p) => ({
    stream: { listeners: [{ listenPort: 6021, backend: ds() }] },
    streamModule: { kind: 'static' },
    paths: p.paths,
  })],
  ['maxConnections 50000, 4 workers, reuseport off', (p) => ({
    http: { backends: [ds()] },
    maxConnections: 50000,
    workerProcesses: 4,
    reuseport: false,
    paths: p.paths,
  })],
  ['custom timeouts, user, loopback listen address, mime types', (p) => ({
    http: { tls: tlsOf(p), listenPort: 8443, redirectHttpPort: 8080, backends: [ds()] },
    timeouts: { connectSeconds: 1, idleSeconds: 120, workerShutdownSeconds: 5 },
    user: 'www-data',
    listenAddress: '127.0.0.1',
    workerProcesses: 2,
    maxConnections: 1000,
    paths: { ...p.paths, mimeTypes: '/etc/nginx/mime.types' },
  })],
  ['IPv6 listen address and IPv6 upstreams', (p) => ({
    http: { listenPort: 8080, backends: [ds([{ host: '::1' }, { host: '[fd00::2]', port: 6021 }])] },
    stream: { listeners: [{ listenPort: 6021, backend: cf([{ host: 'fd00::3' }]) }] },
    streamModule: { kind: 'dynamic' },
    listenAddress: '::1',
    paths: p.paths,
  })],
  ['stream only with the status listener (http block holds only stub_status)', (p) => ({
    stream: { listeners: [{ listenPort: 6021, backend: ds() }] },
    streamModule: { kind: 'dynamic' },
    statusPort: 9145,
    paths: p.paths,
  })],
];

describe('renderNginxConf: the real nginx -t accepts every option', () => {
  it('covers at least 16 specs', () => {
    expect(matrix.length).toBeGreaterThanOrEqual(16);
  });

  it.each(matrix)('%s', async (_name, build) => {
    const conf = renderNginxConf(build(prefix));
    await expectAccepted(conf);
  });

  it('production paths (EC2 layout, static stream, user nginx) pass once relocated into a temp prefix', async () => {
    const conf = renderNginxConf({
      http: { tls: { certificatePath: '/etc/realtime-edge/tls/fullchain.pem', keyPath: '/etc/realtime-edge/tls/privkey.pem', hstsMaxAgeSeconds: 63072000 }, backends: [ds(), cf(undefined, { prefix: '/centrifugo' })] },
      stream: { listeners: [{ listenPort: 6021, tls: { certificatePath: '/etc/realtime-edge/tls/fullchain.pem', keyPath: '/etc/realtime-edge/tls/privkey.pem' }, backend: ds() }] },
      user: 'nginx',
      paths: {
        pidFile: '/run/nginx.pid',
        errorLog: '/var/log/nginx/error.log',
        accessLog: '/var/log/nginx/access.log',
        errorPageRoot: '/usr/share/realtime-edge/html',
        tempDir: '/var/cache/nginx',
        mimeTypes: '/opt/nginx/conf/mime.types',
      },
    });
    await expectAccepted(conf, { relocatePaths: true });
  });

  it('the helper reports what nginx rejects (the check can fail)', async () => {
    const conf = renderNginxConf({ stream: { listeners: [{ listenPort: 6021, backend: ds() }] }, streamModule: { kind: 'dynamic' }, paths: prefix.paths });
    const broken = conf.replace('proxy_next_upstream on;', 'proxy_next_upstream on;\n        ip_hash;');
    const result = await checkNginxConf(broken);
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/ip_hash/);
  });
});

// -------------------------------------------------------------------------------------------------
// 2. Structure nginx -t does not judge
// -------------------------------------------------------------------------------------------------

function servers(tree: NginxDirective[]): Array<{ server: NginxDirective; context: string }> {
  return findDirectives(tree, 'server')
    .filter(({ directive, parents }) => directive.children && (parents.at(-1)?.name === 'http' || parents.at(-1)?.name === 'stream'))
    .map(({ directive, parents }) => ({ server: directive, context: parents.at(-1)!.name }));
}

/** Locations that proxy (not the error page or the 404 catch-all). */
function locations(tree: NginxDirective[]): NginxDirective[] {
  return findDirectives(tree, 'location')
    .map(({ directive }) => directive)
    .filter((location) => childArgs(location, 'proxy_pass') !== undefined);
}

function upstreamBlock(tree: NginxDirective[], name: string): NginxDirective {
  const found = findDirectives(tree, 'upstream').find(({ directive }) => directive.args[0] === name);
  if (!found) throw new Error(`no upstream ${name}`);
  return found.directive;
}

function upstreamOf(location: NginxDirective): string {
  const target = childArgs(location, 'proxy_pass')![0];
  return /^http:\/\/([^/]+)/.exec(target)![1];
}

const fullSpec = (p: NginxTestPrefix): NginxSpec => ({
  http: { tls: tlsOf(p, 63072000), backends: [ds(), cf(undefined, { prefix: '/centrifugo' })] },
  stream: { listeners: [{ listenPort: 6021, tls: tlsOf(p), backend: ds() }, { listenPort: 6022, backend: cf() }] },
  streamModule: { kind: 'dynamic' },
  paths: p.paths,
});

describe('renderNginxConf: structure', () => {
  it('TLS listeners in both modes accept exactly TLS 1.2 and 1.3 with the Mozilla intermediate ciphers, tickets off', () => {
    const tree = parseNginxConf(renderNginxConf(fullSpec(prefix)));
    const tlsServers = servers(tree).filter(({ server }) => childArgs(server, 'listen')!.includes('ssl'));
    expect(tlsServers.map((s) => s.context).sort()).toEqual(['http', 'stream']);
    for (const { server } of tlsServers) {
      expect(childArgs(server, 'ssl_protocols')).toEqual(['TLSv1.2', 'TLSv1.3']);
      expect(childArgs(server, 'ssl_ciphers')).toEqual([TLS_CIPHERS.join(':')]);
      expect(childArgs(server, 'ssl_prefer_server_ciphers')).toEqual(['off']);
      expect(childArgs(server, 'ssl_session_tickets')).toEqual(['off']);
    }
    // Small TLS records on the http listener; the stream TLS module has no ssl_buffer_size.
    expect(tlsServers.map(({ context, server }) => [context, childArgs(server, 'ssl_buffer_size')]).sort()).toEqual([
      ['http', ['1k']],
      ['stream', undefined],
    ]);
    // Shared memory zones are global: http and stream must not share a session cache name.
    const zones = findDirectives(tree, 'ssl_session_cache').map(({ directive }) => directive.args[0].split(':')[1]);
    expect(zones).toHaveLength(2);
    expect(new Set(zones).size).toBe(2);
  });

  it('renders the upgrade map and WebSocket headers, no buffering and idle timeouts on WebSocket routes', () => {
    const tree = parseNginxConf(renderNginxConf(fullSpec(prefix)));
    const map = findDirectives(tree, 'map').find(({ directive }) => directive.args[0] === '$http_upgrade')!.directive;
    expect(map.args).toEqual(['$http_upgrade', '$connection_upgrade']);
    expect(map.children!.map((d) => [d.name, ...d.args])).toEqual([['default', 'upgrade'], ['', 'close']]);
    const idle = String(defaultIdleTimeoutSeconds([deepstreamProfile, centrifugoProfile]));
    const wsLocations = locations(tree).filter((l) => upstreamOf(l).endsWith('_ws'));
    expect(wsLocations.map((l) => l.args.at(-1)).sort()).toEqual(['/centrifugo/connection/', '/deepstream']);
    for (const location of wsLocations) {
      const headers = location.children!.filter((d) => d.name === 'proxy_set_header').map((d) => d.args);
      expect(headers).toEqual(
        expect.arrayContaining([
          ['Upgrade', '$http_upgrade'],
          ['Connection', '$connection_upgrade'],
          ['Host', '$host'],
          ['X-Real-IP', '$remote_addr'],
          ['X-Forwarded-For', '$proxy_add_x_forwarded_for'],
          ['X-Forwarded-Proto', '$scheme'],
        ]),
      );
      expect(childArgs(location, 'proxy_http_version')).toEqual(['1.1']);
      expect(childArgs(location, 'proxy_buffering')).toEqual(['off']);
      expect(childArgs(location, 'proxy_buffer_size')).toEqual(['1k']);
      expect(childArgs(location, 'proxy_read_timeout')).toEqual([`${idle}s`]);
      expect(childArgs(location, 'proxy_send_timeout')).toEqual([`${idle}s`]);
    }
  });

  it('retries WebSocket routes on errors and timeouts before the node answered, with bounded tries', () => {
    const tree = parseNginxConf(renderNginxConf(fullSpec(prefix)));
    for (const location of locations(tree).filter((l) => upstreamOf(l).endsWith('_ws'))) {
      expect(childArgs(location, 'proxy_next_upstream')).toEqual(['error', 'timeout']);
      const tries = Number(childArgs(location, 'proxy_next_upstream_tries')![0]);
      expect(tries).toBeGreaterThanOrEqual(1);
      expect(tries).toBeLessThanOrEqual(3);
    }
    for (const { server } of servers(tree).filter((s) => s.context === 'stream')) {
      expect(childArgs(server, 'proxy_next_upstream')).toEqual(['on']);
      expect(childArgs(server, 'proxy_buffer_size')).toEqual(['1k']);
      expect(Number(childArgs(server, 'proxy_next_upstream_tries')![0])).toBeGreaterThanOrEqual(1);
      expect(childArgs(server, 'proxy_timeout')).toEqual([`${defaultIdleTimeoutSeconds([deepstreamProfile, centrifugoProfile])}s`]);
    }
  });

  it('keeps passive checks off on long-lived upstreams and on for HTTP ones, with keepalive and per-server overrides', () => {
    const tree = parseNginxConf(
      renderNginxConf({
        http: { backends: [ds([{ host: '10.0.0.1' }, { host: '10.0.0.2', maxFails: 5, failTimeoutSeconds: 30, weight: 4, backup: true }])] },
        stream: { listeners: [{ listenPort: 6021, backend: ds([{ host: '10.0.0.1' }]) }] },
        paths: prefix.paths,
      }),
    );
    const serverArgs = (name: string) => upstreamBlock(tree, name).children!.filter((d) => d.name === 'server').map((d) => d.args);
    expect(serverArgs('deepstream_ws')).toEqual([['10.0.0.1:6020', 'max_fails=0'], ['10.0.0.2:6020', 'weight=4', 'max_fails=5', 'fail_timeout=30s', 'backup']]);
    expect(serverArgs('deepstream_http')).toEqual([['10.0.0.1:6020', 'max_fails=2', 'fail_timeout=10s'], ['10.0.0.2:6020', 'weight=4', 'max_fails=5', 'fail_timeout=30s', 'backup']]);
    expect(serverArgs('deepstream_stream_6021')).toEqual([['10.0.0.1:6020', 'max_fails=0']]);
    expect(childArgs(upstreamBlock(tree, 'deepstream_http'), 'keepalive')).toEqual(['32']);
    expect(childArgs(upstreamBlock(tree, 'deepstream_ws'), 'keepalive')).toBeUndefined();
    for (const location of locations(tree).filter((l) => upstreamOf(l).endsWith('_http'))) {
      expect(location.children!.filter((d) => d.name === 'proxy_set_header').map((d) => d.args)).toContainEqual(['Connection', '']);
      expect(childArgs(location, 'proxy_http_version')).toEqual(['1.1']);
    }
  });

  it('puts the balancing method first in every upstream (before keepalive)', () => {
    for (const [strategy, directive] of [
      ['least-conn', ['least_conn']],
      ['ip-hash', ['ip_hash']],
      ['hash', ['hash', '$remote_addr', 'consistent']],
      ['random-two-least-conn', ['random', 'two', 'least_conn']],
    ] as Array<[BalanceStrategy, string[]]>) {
      const tree = parseNginxConf(renderNginxConf({ http: { backends: [ds(undefined, { balance: { strategy } })] }, paths: prefix.paths }));
      for (const name of ['deepstream_ws', 'deepstream_http']) {
        const first = upstreamBlock(tree, name).children![0];
        expect([first.name, ...first.args]).toEqual(directive);
      }
    }
  });

  it('strips prefixes by proxy_pass URI replacement and answers 404 on unclaimed paths, never serving files', () => {
    const tree = parseNginxConf(renderNginxConf({ http: { backends: [ds(), cf(undefined, { prefix: '/centrifugo' })] }, paths: prefix.paths }));
    const byPath = new Map(findDirectives(tree, 'location').map(({ directive }) => [directive.args.at(-1)!, directive]));
    expect(childArgs(byPath.get('/centrifugo/connection/')!, 'proxy_pass')).toEqual(['http://centrifugo_ws/connection/']);
    expect(childArgs(byPath.get('/centrifugo/')!, 'proxy_pass')).toEqual(['http://centrifugo_http/']);
    expect(childArgs(byPath.get('/deepstream')!, 'proxy_pass')).toEqual(['http://deepstream_ws']);
    expect(byPath.get('/')!.children!.map((d) => [d.name, ...d.args])).toEqual([['return', '404']]);
    expect(findDirectives(tree, 'rewrite')).toEqual([]);
    expect(findDirectives(tree, 'alias')).toEqual([]);
    // The only root is the internal error page location.
    const roots = findDirectives(tree, 'root');
    expect(roots).toHaveLength(1);
    expect(roots[0].parents.at(-1)!.args).toEqual(['=', `/${ERROR_PAGE_FILE}`]);
    expect(childArgs(roots[0].parents.at(-1)!, 'internal')).toEqual([]);
  });

  it('loads the stream module only when stream is used with a dynamic module, as the first directive', () => {
    const dynamicStream = parseNginxConf(renderNginxConf({ stream: { listeners: [{ listenPort: 6021, backend: ds() }] }, streamModule: { kind: 'dynamic', path: '/opt/mods/ngx_stream_module.so' }, paths: prefix.paths }));
    expect([dynamicStream[0].name, ...dynamicStream[0].args]).toEqual(['load_module', '/opt/mods/ngx_stream_module.so']);
    const dynamicHttpOnly = parseNginxConf(renderNginxConf({ http: { backends: [ds()] }, streamModule: { kind: 'dynamic' }, paths: prefix.paths }));
    expect(findDirectives(dynamicHttpOnly, 'load_module')).toEqual([]);
    const staticStream = parseNginxConf(renderNginxConf({ stream: { listeners: [{ listenPort: 6021, backend: ds() }] }, paths: prefix.paths }));
    expect(findDirectives(staticStream, 'load_module')).toEqual([]);
  });

  it('sizes worker_connections and worker_rlimit_nofile from maxConnections, as nginxCapacity says', () => {
    const cases: Array<[Partial<NginxSpec>, number, number]> = [
      [{}, 16640, 17664],
      // 20,000 x 1.25 / 4 = 6,250 clients per worker.
      [{ maxConnections: 20000, workerProcesses: 4 }, 12756, 13780],
      [{ maxConnections: 20000, workerProcesses: 4, reuseport: false }, 40256, 41280],
      [{ maxConnections: 1000, workerProcesses: 1 }, 2256, 3280],
    ];
    for (const [extra, workerConnections, rlimitNofile] of cases) {
      const tree = parseNginxConf(renderNginxConf({ http: { backends: [ds()] }, paths: prefix.paths, ...extra }));
      expect(nginxCapacity(extra)).toMatchObject({ workerConnections, rlimitNofile });
      expect(findDirectives(tree, 'worker_connections')[0].directive.args).toEqual([String(workerConnections)]);
      expect(findDirectives(tree, 'worker_rlimit_nofile')[0].directive.args).toEqual([String(rlimitNofile)]);
    }
  });

  it('gives an nginx that shares its host with the nodes one worker per core they leave free, at least one', () => {
    expect(colocatedWorkerProcesses(2, 2)).toBe(1);
    expect(colocatedWorkerProcesses(8, 2)).toBe(6);
    expect(colocatedWorkerProcesses(2, 3)).toBe(1);
  });

  it('derives the idle timeout from the mounted profiles\' largest ping interval unless set', () => {
    const idleOf = (spec: NginxSpec) => childArgs(locations(parseNginxConf(renderNginxConf(spec))).find((l) => upstreamOf(l).endsWith('_ws'))!, 'proxy_read_timeout');
    expect(idleOf({ http: { backends: [cf()] }, paths: prefix.paths })).toEqual(['65s']);
    expect(idleOf({ http: { backends: [ds(), cf(undefined, { prefix: '/c' })] }, paths: prefix.paths })).toEqual(['75s']);
    expect(idleOf({ http: { backends: [cf()] }, timeouts: { idleSeconds: 300 }, paths: prefix.paths })).toEqual(['300s']);
  });

  it('puts reuseport and the raised backlog on public listeners, never on the status listener', () => {
    const listens = (spec: NginxSpec) => findDirectives(parseNginxConf(renderNginxConf(spec)), 'listen').map(({ directive }) => directive.args);
    const backlog = `backlog=${PROXY_DEFAULTS.listenBacklog}`;
    expect(listens(fullSpec(prefix))).toEqual([
      ['443', 'ssl', 'reuseport', backlog],
      ['80', 'reuseport', backlog],
      ['127.0.0.1:8081'],
      ['6021', 'ssl', 'reuseport', backlog],
      ['6022', 'reuseport', backlog],
    ]);
    expect(listens({ ...fullSpec(prefix), reuseport: false, statusPort: null, listenAddress: '10.1.2.3' })).toEqual([
      ['10.1.2.3:443', 'ssl', backlog],
      ['10.1.2.3:80', backlog],
      ['10.1.2.3:6021', 'ssl', backlog],
      ['10.1.2.3:6022', backlog],
    ]);
  });
});

// -------------------------------------------------------------------------------------------------
// 3. A real nginx between real clients and tiny upstreams
// -------------------------------------------------------------------------------------------------

interface Echo {
  readonly name: string;
  readonly port: number;
  readonly upgrades: string[];
  readonly requests: string[];
  close(): Promise<void>;
}

/** An upstream answering every HTTP request and WebSocket with its name, the path and the headers it got. */
function startEcho(name: string): Promise<Echo> {
  const upgrades: string[] = [];
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ node: name, path: req.url, headers: req.headers }));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    upgrades.push(req.url ?? '');
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify({ node: name, path: req.url, headers: req.headers }));
      ws.on('message', (data) => ws.send(`echo:${data.toString()}`));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        name,
        port,
        upgrades,
        requests,
        close: () =>
          new Promise<void>((done) => {
            for (const client of wss.clients) client.terminate();
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/** An upstream that accepts connections and never answers. */
function startBlackhole(): Promise<{ port: number; accepted: () => number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        accepted: () => accepted,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      }),
    );
  });
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(url: string, options: { ca?: Buffer; headers?: Record<string, string> } = {}): Promise<Reply> {
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { agent: false, ca: options.ca, headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Hello {
  node: string;
  path: string;
  headers: Record<string, string>;
}

/** Opens a WebSocket, reads the upstream's hello, round-trips one message and closes. */
function webSocketHello(url: string, ca?: Buffer, origin?: string): Promise<Hello> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca, ...(origin ? { origin } : {}) });
    let hello: Hello | null = null;
    ws.on('unexpected-response', (_req, res) => {
      ws.terminate();
      reject(Object.assign(new Error(`upgrade refused with ${res.statusCode}`), { status: res.statusCode }));
    });
    ws.on('error', reject);
    ws.on('message', (data) => {
      const text = data.toString();
      if (!hello) {
        hello = JSON.parse(text) as Hello;
        ws.send('ping');
      } else {
        ws.close();
        if (text === 'echo:ping') resolve(hello);
        else reject(new Error(`unexpected echo ${JSON.stringify(text)}`));
      }
    });
  });
}

function openssl(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile('openssl', args, { timeout: 15_000 }, (_error, stdout, stderr) => resolve(`${stdout}${stderr}`));
    child.stdin?.end();
  });
}

async function waitForLog(file: string, pattern: RegExp): Promise<string> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const text = readFileSync(file, 'utf8');
    if (pattern.test(text)) return text;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return readFileSync(file, 'utf8');
}

const echoProfile: ServerProfile = {
  name: 'echo',
  displayName: 'Echo',
  port: 1,
  routes: [
    { path: '/socket', kind: 'websocket' },
    { path: '/api', kind: 'http' },
    { path: '/health', kind: 'http', exact: true },
  ],
  healthPath: '/health',
  clientPath: '/socket',
  pingIntervalSeconds: 30,
};
const adminLikeProfile = (name: string): ServerProfile => ({
  ...centrifugoProfile,
  name,
  displayName: name,
});

describe('a real nginx running the rendered config', () => {
  let run: NginxTestPrefix;
  let nginx: RunningNginx | undefined;
  let a: Echo;
  let b: Echo;
  let c: Echo;
  let deadPort: number;
  let ports: { https: number; redirect: number; status: number; stream: number };
  let ca: Buffer;

  beforeAll(async () => {
    run = makeNginxPrefix('run');
    ca = readFileSync(run.tls.certificatePath);
    [a, b, c] = await Promise.all([startEcho('A'), startEcho('B'), startEcho('C')]);
    let https_: number, redirect: number, status: number, stream: number;
    [https_, redirect, status, stream, deadPort] = await freePorts(5);
    ports = { https: https_, redirect, status, stream };
    const at = (echo: { port: number }) => ({ host: '127.0.0.1', port: echo.port });
    const spec: NginxSpec = {
      http: {
        listenPort: ports.https,
        redirectHttpPort: ports.redirect,
        tls: tlsOf(run, 600),
        backends: [
          { profile: echoProfile, servers: [at(a)] },
          { profile: adminLikeProfile('admin'), prefix: '/admin', servers: [at(c)] },
          { profile: adminLikeProfile('dead'), prefix: '/dead', servers: [{ host: '127.0.0.1', port: deadPort }] },
          { profile: adminLikeProfile('flaky'), prefix: '/flaky', servers: [{ host: '127.0.0.1', port: deadPort }, at(b)] },
          { profile: adminLikeProfile('sticky'), prefix: '/sticky', servers: [at(a), at(b)], balance: { strategy: 'hash', hashKey: '$cookie_sid' } },
        ],
      },
      stream: { listeners: [{ listenPort: ports.stream, tls: tlsOf(run), backend: { profile: echoProfile, servers: [at(b)] } }] },
      streamModule: { kind: 'dynamic' },
      statusPort: ports.status,
      listenAddress: '127.0.0.1',
      workerProcesses: 1,
      maxConnections: 256,
      paths: run.paths,
    };
    nginx = await startNginx(renderNginxConf(spec), { prefix: run.dir });
  });

  afterAll(async () => {
    await nginx?.stop();
    await Promise.all([a, b, c].filter(Boolean).map((echo) => echo.close()));
    run?.cleanup();
  });

  const base = () => `https://127.0.0.1:${ports.https}`;

  it('strips the prefix of a mounted backend for WebSockets and HTTP', async () => {
    const hello = await webSocketHello(`wss://127.0.0.1:${ports.https}/admin/connection/websocket?format=json`, ca);
    expect(hello).toMatchObject({ node: 'C', path: '/connection/websocket?format=json' });
    expect(JSON.parse((await request(`${base()}/admin/api/info?x=1`, { ca })).body)).toMatchObject({ node: 'C', path: '/api/info?x=1' });
    expect(JSON.parse((await request(`${base()}/admin/`, { ca })).body)).toMatchObject({ node: 'C', path: '/' });
    expect(JSON.parse((await request(`${base()}/admin/health`, { ca })).body)).toMatchObject({ node: 'C', path: '/health' });
    const bare = await request(`${base()}/admin`, { ca });
    expect(bare.status).toBe(301);
    expect(bare.headers.location).toMatch(/\/admin\/$/);
  });

  it('passes unprefixed paths unchanged with the forwarding headers, over a WebSocket and plain HTTP', async () => {
    const hello = await webSocketHello(`wss://127.0.0.1:${ports.https}/socket`, ca);
    expect(hello.node).toBe('A');
    expect(hello.path).toBe('/socket');
    expect(hello.headers).toMatchObject({ upgrade: 'websocket', connection: 'upgrade', 'x-forwarded-proto': 'https', 'x-real-ip': '127.0.0.1', 'x-forwarded-for': '127.0.0.1', host: '127.0.0.1' });
    const reply = JSON.parse((await request(`${base()}/api/v1/x`, { ca, headers: { 'x-forwarded-for': '203.0.113.9' } })).body) as Hello;
    expect(reply).toMatchObject({ node: 'A', path: '/api/v1/x' });
    expect(reply.headers).toMatchObject({ 'x-forwarded-for': '203.0.113.9, 127.0.0.1', 'x-forwarded-proto': 'https' });
    expect(reply.headers.connection).toBeUndefined();
  });

  it('answers 404 with HSTS on unclaimed paths', async () => {
    const reply = await request(`${base()}/etc/passwd`, { ca });
    expect(reply.status).toBe(404);
    expect(reply.headers['strict-transport-security']).toBe('max-age=600');
    expect(a.requests).not.toContain('/etc/passwd');
  });

  it('redirects plain HTTP to https with a 301', async () => {
    const reply = await request(`http://127.0.0.1:${ports.redirect}/deep/path?q=1`);
    expect(reply.status).toBe(301);
    expect(reply.headers.location).toBe(`https://127.0.0.1:${ports.https}/deep/path?q=1`);
  });

  it('serves the custom 50x page when no upstream answers; a WebSocket upgrade fails cleanly', async () => {
    const reply = await request(`${base()}/dead/api/x`, { ca });
    expect(reply.status).toBe(502);
    expect(reply.headers['content-type']).toMatch(/^text\/html/);
    expect(reply.body).toBe(renderErrorPage());
    await expect(webSocketHello(`wss://127.0.0.1:${ports.https}/dead/connection/websocket`, ca)).rejects.toMatchObject({ status: 502 });
  });

  it('moves a WebSocket whose node refuses the connection to the next node', async () => {
    const before = b.upgrades.length;
    for (let i = 0; i < 4; i += 1) {
      expect(await webSocketHello(`wss://127.0.0.1:${ports.https}/flaky/connection/websocket`, ca)).toMatchObject({ node: 'B', path: '/connection/websocket' });
    }
    expect(b.upgrades.length - before).toBe(4);
  });

  it('keeps one cookie on one node (cookie affinity), spreads cookies, and falls back to the address without one', async () => {
    const nodeFor = async (cookie?: string) =>
      (JSON.parse((await request(`${base()}/sticky/api/x`, { ca, headers: cookie ? { cookie: `sid=${cookie}` } : {} })).body) as Hello).node;
    const seen = new Set<string>();
    for (let i = 0; i < 12; i += 1) {
      const first = await nodeFor(`client-${i}`);
      expect(await nodeFor(`client-${i}`)).toBe(first);
      expect(await nodeFor(`client-${i}`)).toBe(first);
      seen.add(first);
    }
    expect([...seen].sort()).toEqual(['A', 'B']);
    const anonymous = await nodeFor();
    expect(await nodeFor()).toBe(anonymous);
  });

  it('terminates TLS 1.2 and 1.3 only, with the Mozilla ciphers and the expected certificate, in http and stream mode', async () => {
    const expected = new X509Certificate(ca).fingerprint256;
    for (const port of [ports.https, ports.stream]) {
      const target = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost'];
      for (const old of ['-tls1', '-tls1_1']) {
        // SECLEVEL=0 lets the client offer the old version, so the refusal is the server's alert.
        expect(await openssl([...target, old, '-cipher', 'DEFAULT:@SECLEVEL=0'])).toMatch(/alert protocol version/);
      }
      expect(await openssl([...target, '-tls1_2'])).toMatch(/New, TLSv1\.2, Cipher is ECDHE-/);
      expect(await openssl([...target, '-tls1_3'])).toMatch(/New, TLSv1\.3, Cipher is TLS_/);
      // A TLS 1.2 cipher outside the list (no forward secrecy) is refused.
      expect(await openssl([...target, '-tls1_2', '-cipher', 'AES128-GCM-SHA256'])).toMatch(/handshake failure/);
      const fingerprint = await new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.end();
        });
        socket.on('error', reject);
      });
      expect(fingerprint).toBe(expected);
    }
  });

  it('passes a TLS-terminated stream session to the node unchanged', async () => {
    const hello = await webSocketHello(`wss://127.0.0.1:${ports.stream}/socket?x=1`, ca);
    expect(hello).toMatchObject({ node: 'B', path: '/socket?x=1' });
    expect(hello.headers['x-forwarded-for']).toBeUndefined();
  });

  it('serves stub_status on the loopback status port only', async () => {
    const status = await request(`http://127.0.0.1:${ports.status}/nginx_status`);
    expect(status.status).toBe(200);
    expect(status.body).toMatch(/^Active connections: \d+/);
    expect((await request(`http://127.0.0.1:${ports.status}/`)).status).toBe(404);
  });

  it('logs upstream address and timings for HTTP and stream sessions', async () => {
    await request(`${base()}/api/logged`, { ca });
    const text = await waitForLog(run.paths.accessLog, new RegExp(`GET /api/logged HTTP/1.1" 200 .*upstream=127.0.0.1:${a.port} uct=[0-9.]+ urt=[0-9.]+`));
    expect(text).toMatch(new RegExp(`"GET /api/logged HTTP/1.1" 200 \\d+ rt=[0-9.]+ upstream=127.0.0.1:${a.port} uct=[0-9.]+ urt=[0-9.]+ ustatus=200`));
    const streamLine = await waitForLog(run.paths.accessLog, new RegExp(`TCP 200 .*upstream=127.0.0.1:${b.port}`));
    expect(streamLine).toMatch(new RegExp(`TCP 200 sent=\\d+ received=\\d+ session=[0-9.]+ upstream=127.0.0.1:${b.port} uct=[0-9.]+`));
  });
});

/**
 * A node that never accepts: a listener in a stopped process whose accept queue is already full, so
 * the kernel drops every further SYN, as with a crashed host or a security group that drops traffic.
 */
async function startUnreachable(): Promise<{ port: number; close(): Promise<void> }> {
  const child = spawn(process.execPath, [
    '-e',
    "const s = require('net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => process.stdout.write(String(s.address().port) + '\\n'));",
  ]);
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (data: Buffer) => resolve(Number(data.toString().trim())));
    child.once('exit', (code) => reject(new Error(`listener exited with ${code}`)));
  });
  child.kill('SIGSTOP');
  const fillers: net.Socket[] = [];
  // backlog 1 holds two completed handshakes; a few more make sure the queue is full.
  for (let index = 0; index < 4; index += 1) {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    fillers.push(socket);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  return {
    port,
    close: async () => {
      for (const socket of fillers) socket.destroy();
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

const LONGEST_ORIGIN = `https://${'a'.repeat(ORIGIN_MAX_LENGTH - 'https://.example.com'.length)}.example.com`;

describe('a real nginx: allowed origins on WebSocket routes of servers that do not check them', () => {
  it('refuses other origins with 403 for such a server, passes requests without Origin, leaves a checking server alone', async () => {
    const run = makeNginxPrefix('origins');
    const unchecked = await startEcho('UNCHECKED');
    const checking = await startEcho('CHECKING');
    let nginx: RunningNginx | undefined;
    try {
      const [listenPort] = await freePorts(1);
      const spec: NginxSpec = {
        http: {
          listenPort,
          allowedOrigins: ['https://app.example.com', 'https://*.example.org:8443', LONGEST_ORIGIN],
          backends: [
            { profile: { ...echoProfile, checksOriginOnUpgrade: false }, servers: [{ host: '127.0.0.1', port: unchecked.port }] },
            { profile: { ...echoProfile, name: 'checking', checksOriginOnUpgrade: true }, prefix: '/checking', servers: [{ host: '127.0.0.1', port: checking.port }] },
          ],
        },
        workerProcesses: 1,
        statusPort: null,
        listenAddress: '127.0.0.1',
        paths: run.paths,
      };
      nginx = await startNginx(renderNginxConf(spec), { prefix: run.dir });
      const outcome = (path: string, origin?: string) =>
        webSocketHello(`ws://127.0.0.1:${listenPort}${path}`, undefined, origin).then(
          (hello) => hello.node,
          (error: { status?: number }) => error.status,
        );
      expect(await outcome('/socket', 'https://app.example.com')).toBe('UNCHECKED');
      expect(await outcome('/socket', 'HTTPS://App.Example.COM')).toBe('UNCHECKED');
      expect(await outcome('/socket', 'https://eu.rt.example.org:8443')).toBe('UNCHECKED');
      expect(await outcome('/socket')).toBe('UNCHECKED');
      // As long as an origin may be: past one cache line, the size of nginx's default map bucket.
      expect(await outcome('/socket', LONGEST_ORIGIN)).toBe('UNCHECKED');
      for (const refused of ['https://evil.example', 'http://app.example.com', 'https://app.example.com.evil.example', 'https://eu.example.org', 'https://x.example.org:8443.evil', 'null']) {
        expect([refused, await outcome('/socket', refused)]).toEqual([refused, 403]);
      }
      expect(unchecked.upgrades).toHaveLength(5);
      // The checking server decides for itself: nginx passes the handshake and its Origin through.
      expect(await outcome('/checking/socket', 'https://evil.example')).toBe('CHECKING');
      // Plain HTTP routes are not gated: allowedOrigins is about WebSockets (see the README).
      expect((await request(`http://127.0.0.1:${listenPort}/api`, { headers: { origin: 'https://evil.example' } })).status).toBe(200);
    } finally {
      await nginx?.stop();
      await unchecked.close();
      await checking.close();
      run.cleanup();
    }
  });
});

describe('a real nginx: a WebSocket handshake a node never answers moves to the next node', () => {
  it('retries past a node that never accepts (connect timeout) and one that never answers (read timeout)', async () => {
    const run = makeNginxPrefix('timeout');
    const live = await startEcho('LIVE');
    const silent = await startBlackhole();
    const unreachable = await startUnreachable();
    let nginx: RunningNginx | undefined;
    try {
      const [listenPort] = await freePorts(1);
      const quickProfile: ServerProfile = { ...echoProfile, name: 'quick', pingIntervalSeconds: 1 };
      const servers = [unreachable.port, silent.port, live.port].map((port) => ({ host: '127.0.0.1', port }));
      nginx = await startNginx(
        renderNginxConf({
          http: { listenPort, backends: [{ profile: quickProfile, servers }] },
          timeouts: { idleSeconds: 2, connectSeconds: 1 },
          workerProcesses: 1,
          statusPort: null,
          listenAddress: '127.0.0.1',
          paths: run.paths,
        }),
        { prefix: run.dir },
      );
      // Round robin starts at the unreachable node: the first handshake waits out the connect
      // timeout there, then the read timeout on the silent node, then reaches the live one.
      const first = await webSocketHello(`ws://127.0.0.1:${listenPort}/socket`);
      const second = await webSocketHello(`ws://127.0.0.1:${listenPort}/socket`);
      expect([first.node, second.node]).toEqual(['LIVE', 'LIVE']);
      expect(live.upgrades).toEqual(['/socket', '/socket']);
      expect(silent.accepted()).toBeGreaterThanOrEqual(1);
      const errors = readFileSync(run.paths.errorLog, 'utf8');
      expect(errors).toMatch(new RegExp(`upstream timed out \\(110: Connection timed out\\) while connecting to upstream.*127\\.0\\.0\\.1:${unreachable.port}`));
      expect(errors).toMatch(new RegExp(`upstream timed out .* while reading response header from upstream.*127\\.0\\.0\\.1:${silent.port}`));
    } finally {
      await nginx?.stop();
      await live.close();
      await silent.close();
      await unreachable.close();
      run.cleanup();
    }
  });
});

// -------------------------------------------------------------------------------------------------
// 4. Validation: one clear error naming the field
// -------------------------------------------------------------------------------------------------

const validBase = (): NginxSpec => ({
  http: { tls: { certificatePath: '/etc/tls/cert.pem', keyPath: '/etc/tls/key.pem' }, backends: [ds()] },
  stream: { listeners: [{ listenPort: 6021, backend: ds() }] },
  paths: { pidFile: '/run/nginx.pid', errorLog: '/var/log/nginx/error.log', accessLog: '/var/log/nginx/access.log', errorPageRoot: '/usr/share/nginx/html' },
});

function withHttp(patch: Partial<NonNullable<NginxSpec['http']>>): NginxSpec {
  const spec = validBase();
  return { ...spec, http: { ...spec.http!, ...patch } };
}

function withStreamBackend(patch: Partial<BackendMount>): NginxSpec {
  return { ...validBase(), stream: { listeners: [{ listenPort: 6021, backend: { ...ds(), ...patch } }] } };
}

function thrown(build: () => unknown): NginxSpecError {
  try {
    build();
  } catch (error) {
    if (error instanceof NginxSpecError) return error;
    throw error;
  }
  throw new Error('expected an NginxSpecError, nothing was thrown');
}

const invalid: Array<[string, () => unknown, string, RegExp]> = [
  ['neither http nor stream', () => ({ paths: validBase().paths }), 'http', /neither http .* nor stream/],
  ['no backends', () => withHttp({ backends: [] }), 'http.backends', /at least one backend/],
  ['no upstream servers', () => withHttp({ backends: [ds([])] }), 'http.backends[0].servers', /at least one upstream server/],
  ['bad server port', () => withHttp({ backends: [ds([{ host: '10.0.0.1', port: 70000 }])] }), 'http.backends[0].servers[0].port', /70000 is not valid; allowed: a TCP port, an integer from 1 to 65535/],
  ['bad listen port', () => withHttp({ listenPort: 0 }), 'http.listenPort', /0 is not valid; allowed: a TCP port/],
  ['an origin with a path', () => withHttp({ allowedOrigins: ['https://app.example.com/x'] }), 'http.allowedOrigins[0]', /https:\/\/app\.example\.com\/x.*origin like https:\/\/app\.example\.com/],
  ['TLS without certificate', () => withHttp({ tls: { keyPath: '/k.pem' } as never }), 'http.tls.certificatePath', /required; allowed: an absolute path/],
  ['TLS key not absolute', () => withHttp({ tls: { certificatePath: '/c.pem', keyPath: 'key.pem' } }), 'http.tls.keyPath', /"key.pem" is not valid; allowed: an absolute path/],
  ['ip_hash in stream mode', () => withStreamBackend({ balance: { strategy: 'ip-hash' } }), 'stream.listeners[0].backend.balance.strategy', /"ip-hash" is not available in stream mode.*"hash" with hashKey "\$remote_addr".*allowed in stream mode: round-robin, least-conn, hash, random-two-least-conn/],
  ['two backends on one path', () => withHttp({ backends: [ds(), cf()] }), 'http.backends[1].profile.routes[2].path', /"\/api" mounts at \/api, which http.backends\[0\] \(deepstream\) already routes.*prefix/],
  ['two backends on one path after prefixes', () => withHttp({ backends: [cf(undefined, { prefix: '/rt' }), { ...ds(), prefix: '/rt/connection' , profile: { ...deepstreamProfile, name: 'ds2', routes: [{ path: '/', kind: 'http' }] } }] }), 'http.backends[1].profile.routes[0].path', /mounts at \/rt\/connection\/, which http.backends\[0\] \(centrifugo\) already routes/],
  ['a route on the error page path', () => withHttp({ backends: [{ ...ds(), profile: { ...deepstreamProfile, routes: [{ path: '/50x.html', kind: 'http', exact: true }] } }] }), 'http.backends[0].profile.routes[0].path', /the custom error page/],
  ['one profile name twice', () => withHttp({ backends: [ds(), ds(undefined, { prefix: '/second' })] }), 'http.backends[1].profile.name', /"deepstream" is already mounted as http.backends\[0\]/],
  ['idle timeout not above the ping interval', () => ({ ...validBase(), timeouts: { idleSeconds: 30 } }), 'timeouts.idleSeconds', /30 s would cut idle connections between two pings of deepstream.io \(every 30 s\); allowed: more than 30 s/],
  ['hash key with a semicolon', () => withHttp({ backends: [ds(undefined, { balance: { strategy: 'hash', hashKey: '$remote_addr; evil' } })] }), 'http.backends[0].balance.hashKey', /not a valid hash key; allowed: variables/],
  ['cookie hash key in stream mode', () => withStreamBackend({ balance: { strategy: 'hash', hashKey: '$cookie_sid' } }), 'stream.listeners[0].backend.balance.hashKey', /uses \$cookie_sid, which stream mode cannot hash on/],
  ['constant hash key', () => withHttp({ backends: [ds(undefined, { balance: { strategy: 'hash', hashKey: 'everyone' } })] }), 'http.backends[0].balance.hashKey', /constant, which sends every client to one node/],
  ['unknown hash variable', () => withHttp({ backends: [ds(undefined, { balance: { strategy: 'hash', hashKey: '$remote_adr' } })] }), 'http.backends[0].balance.hashKey', /uses \$remote_adr/],
  ['hash key without hash', () => withHttp({ backends: [ds(undefined, { balance: { strategy: 'least-conn', hashKey: '$remote_addr' } })] }), 'http.backends[0].balance.hashKey', /only used with strategy "hash"/],
  ['backup with hash', () => withHttp({ backends: [ds([{ host: '10.0.0.1' }, { host: '10.0.0.2', backup: true }], { balance: { strategy: 'hash' } })] }), 'http.backends[0].servers[1].backup', /does not allow backup servers with strategy "hash"; backup works with round-robin and least-conn/],
  ['backup with ip_hash', () => withHttp({ backends: [ds([{ host: '10.0.0.1' }, { host: '10.0.0.2', backup: true }], { balance: { strategy: 'ip-hash' } })] }), 'http.backends[0].servers[1].backup', /"ip-hash"/],
  ['backup with random', () => withStreamBackend({ servers: [{ host: '10.0.0.1' }, { host: '10.0.0.2', backup: true }], balance: { strategy: 'random-two-least-conn' } }), 'stream.listeners[0].backend.servers[1].backup', /"random-two-least-conn"/],
  ['only backups', () => withHttp({ backends: [ds([{ host: '10.0.0.1', backup: true }])] }), 'http.backends[0].servers', /every server is a backup/],
  ['one server twice', () => withHttp({ backends: [ds([{ host: '10.0.0.1' }, { host: '10.0.0.1', port: 6020 }])] }), 'http.backends[0].servers[1]', /10.0.0.1:6020 is already listed as http.backends\[0\].servers\[0\]/],
  ['stream port = https port', () => ({ ...validBase(), stream: { listeners: [{ listenPort: 443, backend: ds() }] } }), 'stream.listeners[0].listenPort', /port 443 is already used by http.listenPort/],
  ['redirect port = https port', () => withHttp({ listenPort: 8443, redirectHttpPort: 8443 }), 'http.redirectHttpPort', /port 8443 is already used by http.listenPort/],
  ['status port = stream port', () => ({ ...validBase(), statusPort: 6021 }), 'statusPort', /port 6021 is already used by stream.listeners\[0\].listenPort/],
  ['HSTS on a stream listener', () => ({ ...validBase(), stream: { listeners: [{ listenPort: 6021, tls: { certificatePath: '/c', keyPath: '/k', hstsMaxAgeSeconds: 60 }, backend: ds() }] } }), 'stream.listeners[0].tls.hstsMaxAgeSeconds', /HSTS is an HTTP response header/],
  ['prefix on a stream backend', () => withStreamBackend({ prefix: '/ds' }), 'stream.listeners[0].backend.prefix', /cannot strip a URL prefix/],
  ['redirect without TLS', () => withHttp({ tls: null, redirectHttpPort: 80 }), 'http.redirectHttpPort', /needs http.tls/],
  ['misspelled field', () => withHttp({ tlss: null } as never), 'http.tlss', /unknown field; allowed fields: listenPort, serverName, tls, redirectHttpPort, backends/],
  ['unknown strategy', () => withHttp({ backends: [ds(undefined, { balance: { strategy: 'sticky' as BalanceStrategy } })] }), 'http.backends[0].balance.strategy', /"sticky" is not valid; allowed: round-robin, least-conn, ip-hash, hash, random-two-least-conn/],
  ['bad worker count', () => ({ ...validBase(), workerProcesses: 0 }), 'workerProcesses', /allowed: "auto" or an integer from 1 to 1024/],
  ['bad maxConnections', () => ({ ...validBase(), maxConnections: -5 }), 'maxConnections', /-5 is not valid; allowed: an integer from 1 to 500000/],
  ['prefix without a leading slash', () => withHttp({ backends: [ds(undefined, { prefix: 'centrifugo' })] }), 'http.backends[0].prefix', /"centrifugo" is not valid; allowed: a path prefix/],
  ['prefix with a trailing slash', () => withHttp({ backends: [ds(undefined, { prefix: '/centrifugo/' })] }), 'http.backends[0].prefix', /no trailing "\/"/],
  ['bad host', () => withHttp({ backends: [ds([{ host: 'bad host;' }])] }), 'http.backends[0].servers[0].host', /"bad host;" is not valid; allowed: an IPv4 or IPv6 address or a DNS name/],
  ['bad stream module', () => ({ ...validBase(), streamModule: { kind: 'shared' } as never }), 'streamModule.kind', /allowed: \{kind: "static"\} or \{kind: "dynamic"/],
  ['listen address not an IP', () => ({ ...validBase(), listenAddress: 'localhost' }), 'listenAddress', /allowed: an IPv4 or IPv6 address/],
  ['relative log path', () => ({ ...validBase(), paths: { ...validBase().paths, accessLog: 'logs/access.log' } }), 'paths.accessLog', /an absolute path/],
  ['no stream listeners', () => ({ ...validBase(), stream: { listeners: [] } }), 'stream.listeners', /at least one listener/],
  ['profile without routes', () => withHttp({ backends: [{ ...ds(), profile: { ...deepstreamProfile, routes: [] } }] }), 'http.backends[0].profile.routes', /at least one route/],
  ['route path with a space', () => withHttp({ backends: [{ ...ds(), profile: { ...deepstreamProfile, routes: [{ path: '/a b', kind: 'http' }] } }] }), 'http.backends[0].profile.routes[0].path', /"\/a b" is not valid/],
];

describe('renderNginxConf: an invalid spec throws one NginxSpecError naming the field', () => {
  it.each(invalid)('%s', (_name, build, field, message) => {
    const error = thrown(() => renderNginxConf(build() as NginxSpec));
    expect(error.field).toBe(field);
    expect(error.message.startsWith(`${field}: `)).toBe(true);
    expect(error.message).toMatch(message);
  });

  it('the base spec of the table above is valid', () => {
    expect(() => renderNginxConf(validBase())).not.toThrow();
  });
});

// -------------------------------------------------------------------------------------------------
// 5. Properties over random specs
// -------------------------------------------------------------------------------------------------

const strategyArb = fc.constantFrom<BalanceStrategy>('round-robin', 'least-conn', 'ip-hash', 'hash', 'random-two-least-conn');
const serversArb = (allowBackup: boolean) =>
  fc
    .uniqueArray(fc.integer({ min: 1, max: 250 }), { minLength: 1, maxLength: 4 })
    .chain((octets) =>
      fc.tuple(
        ...octets.map((octet, index) =>
          fc.record({
            host: fc.constant(`10.0.0.${octet}`),
            weight: fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
            maxFails: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
            failTimeoutSeconds: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
            backup: fc.constant(allowBackup && index > 0 && octet % 2 === 0 ? true : undefined),
          }),
        ),
      ),
    )
    .map((servers) => servers.map((s) => Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as unknown as UpstreamServer));

const mountArb = (profile: ServerProfile, mode: 'http' | 'stream', prefixValue?: string) =>
  strategyArb
    .filter((strategy) => mode === 'http' || strategy !== 'ip-hash')
    .chain((strategy) =>
      fc.record({
        profile: fc.constant(profile),
        servers: serversArb(strategy === 'round-robin' || strategy === 'least-conn'),
        balance: fc.constant({ strategy, ...(strategy === 'hash' && mode === 'http' ? { hashKey: '$cookie_sid' } : {}) }),
      }),
    )
    .map((mount) => ({ ...mount, ...(prefixValue ? { prefix: prefixValue } : {}) }) as BackendMount);

const validSpecArb = (p: NginxTestPrefix): fc.Arbitrary<NginxSpec> =>
  fc
    .record({
      mode: fc.constantFrom('http', 'stream', 'both'),
      tls: fc.boolean(),
      hsts: fc.option(fc.integer({ min: 0, max: 63072000 }), { nil: undefined }),
      redirect: fc.constantFrom<number | null | undefined>(undefined, null, 8080),
      backends: fc.constantFrom('deepstream', 'centrifugo', 'both'),
      httpDs: mountArb(deepstreamProfile, 'http'),
      httpCf: mountArb(centrifugoProfile, 'http', '/centrifugo'),
      streamDs: mountArb(deepstreamProfile, 'stream'),
      maxConnections: fc.option(fc.integer({ min: 1, max: 100_000 }), { nil: undefined }),
      workerProcesses: fc.option(fc.oneof(fc.constant<'auto'>('auto'), fc.integer({ min: 1, max: 8 })), { nil: undefined }),
      reuseport: fc.option(fc.boolean(), { nil: undefined }),
      idleExtra: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
      statusPort: fc.constantFrom<number | null | undefined>(undefined, null, 9100),
    })
    .map((o): NginxSpec => {
      const httpBackends = o.backends === 'deepstream' ? [o.httpDs] : o.backends === 'centrifugo' ? [{ ...o.httpCf, prefix: undefined }] : [o.httpDs, o.httpCf];
      const tlsSpec = o.tls ? { ...tlsOf(p), ...(o.hsts !== undefined && { hstsMaxAgeSeconds: o.hsts }) } : null;
      const http = o.mode === 'stream' ? undefined : { listenPort: 8443, tls: tlsSpec, ...(o.tls ? { redirectHttpPort: o.redirect } : {}), backends: httpBackends.map((b) => JSON.parse(JSON.stringify(b)) as BackendMount) };
      const stream = o.mode === 'http' ? undefined : { listeners: [{ listenPort: 6021, tls: o.tls ? tlsOf(p) : null, backend: o.streamDs }] };
      return {
        ...(http && { http }),
        ...(stream && { stream }),
        streamModule: { kind: 'dynamic' },
        ...(o.maxConnections !== undefined && { maxConnections: o.maxConnections }),
        ...(o.workerProcesses !== undefined && { workerProcesses: o.workerProcesses }),
        ...(o.reuseport !== undefined && { reuseport: o.reuseport }),
        ...(o.idleExtra !== undefined && { timeouts: { idleSeconds: 30 + o.idleExtra } }),
        statusPort: o.statusPort,
        paths: p.paths,
      };
    });

describe('renderNginxConf: properties', () => {
  it('random valid specs render deterministically, parse, mount every route once, and pass nginx -t', async () => {
    await fc.assert(
      fc.asyncProperty(validSpecArb(prefix), async (spec) => {
        const conf = renderNginxConf(spec);
        expect(renderNginxConf(spec)).toBe(conf);
        const tree = parseNginxConf(conf);
        const paths = locations(tree).map((l) => l.args.at(-1)!);
        const expected = (spec.http?.backends ?? []).flatMap((b) => b.profile.routes.map((r) => `${b.prefix ?? ''}${r.path}`));
        expect(paths.sort()).toEqual(expected.sort());
        await expectAccepted(conf);
      }),
      { numRuns: 30 },
    );
  });

  const portFields: Array<[string, (value: number) => NginxSpec]> = [
    ['http.listenPort', (v) => withHttp({ listenPort: v })],
    ['http.redirectHttpPort', (v) => withHttp({ redirectHttpPort: v })],
    ['statusPort', (v) => ({ ...validBase(), statusPort: v })],
    ['stream.listeners[0].listenPort', (v) => ({ ...validBase(), stream: { listeners: [{ listenPort: v, backend: ds() }] } })],
    ['http.backends[0].servers[0].port', (v) => withHttp({ backends: [ds([{ host: '10.0.0.1', port: v }])] })],
    ['http.backends[0].profile.port', (v) => withHttp({ backends: [{ ...ds(), profile: { ...deepstreamProfile, port: v } }] })],
  ];
  const badPort = fc.oneof(
    fc.integer({ max: 0 }),
    fc.integer({ min: 65536 }),
    fc.double({ min: 1.0001, max: 65534.9999, noNaN: true }).filter((v) => !Number.isInteger(v)),
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
  );

  it('random invalid ports always throw an NginxSpecError naming the port field', () => {
    fc.assert(
      fc.property(fc.constantFrom(...portFields), badPort, ([field, build], value) => {
        const error = thrown(() => renderNginxConf(build(value)));
        expect(error.field).toBe(field);
        expect(error.message).toMatch(/allowed: a TCP port, an integer from 1 to 65535/);
      }),
      { numRuns: 300 },
    );
  });

  it('idle timeouts at or below the ping interval always throw; above it they are rendered as given', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 600 }), (idleSeconds) => {
        const spec = { ...validBase(), timeouts: { idleSeconds } };
        if (idleSeconds <= deepstreamProfile.pingIntervalSeconds) {
          expect(thrown(() => renderNginxConf(spec)).field).toBe('timeouts.idleSeconds');
        } else {
          const stream = servers(parseNginxConf(renderNginxConf(spec))).find((s) => s.context === 'stream')!.server;
          expect(childArgs(stream, 'proxy_timeout')).toEqual([`${idleSeconds}s`]);
        }
      }),
    );
  });

  it('capacity always covers the target: per worker when it cannot be divided, in total otherwise', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 500_000 }),
        fc.oneof(fc.constant<'auto'>('auto'), fc.integer({ min: 1, max: 64 })),
        fc.boolean(),
        (maxConnections, workerProcesses, reuseport) => {
          const { workerConnections, rlimitNofile } = nginxCapacity({ maxConnections, workerProcesses, reuseport });
          expect(rlimitNofile).toBeGreaterThan(workerConnections);
          if (workerProcesses === 'auto' || !reuseport) {
            expect(workerConnections).toBeGreaterThanOrEqual(2 * maxConnections);
          } else {
            expect(workerConnections * workerProcesses).toBeGreaterThanOrEqual(2 * maxConnections);
            expect(workerConnections).toBeLessThanOrEqual(2 * maxConnections + 256);
          }
        },
      ),
    );
  });

  it('random two-backend specs without prefixes always collide on /api, naming the second backend', () => {
    fc.assert(
      fc.property(fc.boolean(), (deepstreamFirst) => {
        const backends = deepstreamFirst ? [ds(), cf()] : [cf(), ds()];
        const error = thrown(() => renderNginxConf(withHttp({ backends })));
        expect(error.field).toMatch(/^http\.backends\[1\]\.profile\.routes\[\d\]\.path$/);
      }),
    );
  });
});

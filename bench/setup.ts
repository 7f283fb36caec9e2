/**
 * Everything the benchmark measures through, started once so every figure of a section comes from
 * the same processes in the same run:
 * - the local topology (Redis, two deepstream nodes, nginx with its TLS http and TLS stream
 *   listeners), plus a plain stream listener and its twin added to that nginx through the spec;
 * - a second nginx with a plain http listener and a third with a worker per core (the worker-count lever),
 *   both rendered from the topology's own spec with only the listener and worker settings changed;
 * - a fourth nginx with only the plain stream listener: the same listener as on the topology nginx, in
 *   a process that relays no other path (the process a path runs in, and how it is scheduled, moves
 *   its latency by a different amount in each run);
 * - HAProxy with the equivalent configuration (bench/haproxy.ts), in two processes laid out like
 *   nginx's: plain http alone, the TLS and tcp listeners together.
 * Variants are renderer input; rendered text is never edited.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NginxSpec } from '../nginx/spec';
import { nginxPathsIn, startNginx, type NginxHandle } from '../local/nginx-process';
import { LOOPBACK, pickFreePort } from '../local/ports';
import type { ManagedProcess } from '../local/processes';
import { resolveIdleTimeoutSeconds } from '../nginx/conf';
import { NGINX_DEFAULTS } from '../nginx/conf-defaults';
import { startTopology, type Topology } from '../local/topology';
import { renderHaproxyConfig } from './haproxy';
import { startHaproxyProcess } from './haproxy-process';
import { pidsWorkingIn, processTree } from './procfs';

/** Where a client can connect; `direct` paths bypass every proxy. */
export interface BenchPath {
  readonly name: string;
  readonly description: string;
  readonly url: string;
  /** Where a client must connect to land on a given node (serverName -> URL), for paths that do not
   * balance (direct); balanced paths are retried until a connection lands there. */
  readonly urlOfNode?: Readonly<Record<string, string>>;
}

export interface BenchEnvironment {
  readonly topology: Topology;
  /** PEM of the self-signed certificate every TLS listener uses. */
  readonly ca: string;
  /** The topology's nginx: TLS http, TLS stream and (added here) plain stream. */
  readonly nginxTls: NginxHandle;
  /** Plain http listener, the topology's worker settings. */
  readonly nginxPlain: NginxHandle;
  /** Plain http listener with worker_processes auto, one per core. */
  readonly nginxPerCore: NginxHandle;
  /** The pid of the HAProxy that relays `path` (it changes with `restartHaproxy`). */
  haproxyPid(path: PathName): number;
  /** A fresh HAProxy process with the same configuration (its memory pools start empty). */
  restartHaproxy(path: PathName): Promise<void>;
  /** Every latency path by name. */
  readonly paths: Readonly<Record<PathName, BenchPath>>;
  /** Direct URL of each node. */
  readonly nodeUrls: readonly string[];
  /** Component name -> its processes, for CPU profiles. */
  readonly components: Readonly<Record<string, () => readonly number[]>>;
  /** Proxy component name -> the latency paths it serves. */
  readonly proxyPaths: Readonly<Record<string, readonly PathName[]>>;
  /** The processes that relay a proxied path's messages: nginx's workers (not its master), or
   * HAProxy's one process; what a profiler attaches to. */
  relayPids(path: PathName): readonly number[];
  /** Spec of the plain nginx with changes (capacity settings, the seed configuration). */
  plainSpec(nginx: 'plain' | 'per-core', changes?: Partial<Pick<NginxSpec, 'maxConnections' | 'workerProcesses' | 'reuseport'>>): NginxSpec;
  /** Spec of the TLS nginx (topology) with changes. */
  tlsSpec(changes?: Partial<Pick<NginxSpec, 'maxConnections' | 'workerProcesses' | 'reuseport'>>): NginxSpec;
  stop(): Promise<void>;
}

export const PATH_NAMES = [
  'direct',
  'nginx-http',
  'nginx-http-per-core',
  'nginx-https',
  'nginx-stream',
  'nginx-stream-twin',
  'nginx-stream-alone',
  'nginx-stream-tls',
  'haproxy-http',
  'haproxy-https',
  'haproxy-tcp',
  'haproxy-tcp-tls',
] as const;
export type PathName = (typeof PATH_NAMES)[number];

/** Component names of the proxies in CPU profiles; report.ts recognizes proxies by these prefixes. */
export const PROXY_COMPONENT_PREFIXES = ['nginx', 'haproxy'] as const;
const NGINX_TLS = 'nginx (TLS: https, stream)';
const NGINX_PLAIN = 'nginx (plain http)';
const NGINX_PER_CORE = 'nginx (plain http, a worker per core)';
const NGINX_ALONE = 'nginx (plain stream, no other path)';
const HAPROXY = 'haproxy';
const HAPROXY_ALONE = 'haproxy (plain http, no other path)';
type HaproxyName = typeof HAPROXY | typeof HAPROXY_ALONE;
/** Which HAProxy process relays which path; the listeners each one is started with follow it. */
const HAPROXY_PATHS: Readonly<Record<HaproxyName, readonly PathName[]>> = {
  [HAPROXY]: ['haproxy-https', 'haproxy-tcp', 'haproxy-tcp-tls'],
  [HAPROXY_ALONE]: ['haproxy-http'],
};

/** Connection limit of the comparison HAProxy: latency needs a handful, nothing here needs more. */
const HAPROXY_MAX_CONNECTIONS = 4096;

export interface SetupOptions {
  readonly log: (line: string) => void;
}

export async function startBenchEnvironment(options: SetupOptions): Promise<BenchEnvironment> {
  const { log } = options;
  const topology = await startTopology({ label: 'bench', log });
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await topology.stop();
  };
  try {
    const ca = topology.ca.toString('utf8');
    const nodeUrls = topology.nodes.map((node) => node.directUrl);
    const clientPath = new URL(topology.urlOf('http')).pathname;

    // A plain stream listener next to the TLS one, on the topology's own nginx, and its twin: the
    // same listener again on another port, an A/A control for how far two identical paths differ.
    const plainStreamPort = await pickFreePort();
    const twinStreamPort = await pickFreePort();
    const tlsBase = (): NginxSpec =>
      topology.nginxSpec({
        extraStreamListeners: [plainStreamPort, twinStreamPort].map((listenPort) => ({ listenPort, tls: null, backend: topology.deepstreamMount() })),
      });
    await topology.nginx.reload(tlsBase());

    const plainDirs = { plain: path.join(topology.runFolder, 'nginx-plain'), 'per-core': path.join(topology.runFolder, 'nginx-per-core') };
    const plainPorts = { plain: await pickFreePort(), 'per-core': await pickFreePort() };
    const plainSpec: BenchEnvironment['plainSpec'] = (which, changes = {}) => {
      const base = topology.nginxSpec();
      if (!base.http) throw new Error('the topology runs no http listener; the bench needs proxyMode both');
      const { stream: _stream, ...withoutStream } = base;
      return {
        ...withoutStream,
        http: { ...base.http, listenPort: plainPorts[which], tls: null, redirectHttpPort: null },
        statusPort: null,
        paths: nginxPathsIn(plainDirs[which]),
        ...(which === 'per-core' ? { workerProcesses: 'auto' as const } : {}),
        ...changes,
      };
    };
    const tlsSpec: BenchEnvironment['tlsSpec'] = (changes = {}) => ({ ...tlsBase(), ...changes });

    fs.mkdirSync(plainDirs.plain, { recursive: true, mode: 0o755 });
    fs.mkdirSync(plainDirs['per-core'], { recursive: true, mode: 0o755 });
    const nginxPlain = await startNginx({ dir: plainDirs.plain, spec: plainSpec('plain') });
    cleanups.push(() => nginxPlain.stop());
    const nginxPerCore = await startNginx({ dir: plainDirs['per-core'], spec: plainSpec('per-core') });
    cleanups.push(() => nginxPerCore.stop());
    // The plain stream listener once more, in an nginx that relays no other path: an A/B control for
    // how far the process a path runs in moves its latency in this run.
    const aloneDir = path.join(topology.runFolder, 'nginx-alone');
    const aloneStreamPort = await pickFreePort();
    fs.mkdirSync(aloneDir, { recursive: true, mode: 0o755 });
    const { http: _http, ...streamOnly } = topology.nginxSpec();
    const nginxAlone = await startNginx({
      dir: aloneDir,
      spec: {
        ...streamOnly,
        stream: { listeners: [{ listenPort: aloneStreamPort, tls: null, backend: topology.deepstreamMount() }] },
        statusPort: null,
        paths: nginxPathsIn(aloneDir),
      },
    });
    cleanups.push(() => nginxAlone.stop());
    log(
      `nginx plain http on ${plainPorts.plain}, per-core plain http on ${plainPorts['per-core']}, plain stream on ${plainStreamPort} and ` +
        `${twinStreamPort} (twin), and alone on ${aloneStreamPort}`,
    );

    const haproxyPorts: HaproxyPorts = {
      http: await pickFreePort(),
      https: await pickFreePort(),
      tcp: await pickFreePort(),
      tcpTls: await pickFreePort(),
    };
    // HAProxy's processes mirror nginx's: plain http in one that relays no other path, as nginx-http
    // is, the other three in one, as nginx's TLS and stream paths are. The process a path runs in
    // moves its latency on these shared cores (nginx-stream-alone measures by how much).
    const haproxyListeners: Record<HaproxyName, HaproxyListeners> = {
      [HAPROXY]: { name: 'haproxy', http: [{ port: haproxyPorts.https, tls: true }], tcp: [{ port: haproxyPorts.tcp, tls: false }, { port: haproxyPorts.tcpTls, tls: true }] },
      [HAPROXY_ALONE]: { name: 'haproxy-alone', http: [{ port: haproxyPorts.http, tls: false }], tcp: [] },
    };
    const haproxies = {
      [HAPROXY]: await startHaproxy(topology, haproxyListeners[HAPROXY]),
      [HAPROXY_ALONE]: await startHaproxy(topology, haproxyListeners[HAPROXY_ALONE]),
    };
    cleanups.push(async () => {
      for (const haproxy of Object.values(haproxies)) await haproxy.stop({ signal: 'SIGTERM', graceMs: 3000 });
    });
    const haproxyOf = (pathName: PathName): HaproxyName => (HAPROXY_PATHS[HAPROXY_ALONE].includes(pathName) ? HAPROXY_ALONE : HAPROXY);
    const restartHaproxy = async (pathName: PathName): Promise<void> => {
      const which = haproxyOf(pathName);
      await haproxies[which].stop({ signal: 'SIGTERM', graceMs: 3000 });
      haproxies[which] = await startHaproxy(topology, haproxyListeners[which]);
    };
    log(`haproxy on https ${haproxyPorts.https}, tcp ${haproxyPorts.tcp}, tcp+tls ${haproxyPorts.tcpTls}; another on http ${haproxyPorts.http}`);

    // The local topology's worker count: one per core the nodes leave free (colocatedWorkerProcesses).
    const workers = topology.nginxSpec().workerProcesses;
    const colocated = workers === undefined ? '' : `, worker_processes ${workers}`;
    const url = (scheme: 'ws' | 'wss', port: number): string => `${scheme}://${LOOPBACK}:${port}${clientPath}`;
    const paths: Record<PathName, BenchPath> = {
      direct: {
        name: 'direct',
        description: 'straight to a deepstream node',
        url: nodeUrls[0]!,
        urlOfNode: Object.fromEntries(topology.nodes.map((node) => [node.name, node.directUrl])),
      },
      'nginx-http': {
        name: 'nginx-http',
        description: `nginx http (L7) mode, plain${colocated}`,
        url: url('ws', plainPorts.plain),
      },
      'nginx-http-per-core': {
        name: 'nginx-http-per-core',
        description: 'nginx http mode, plain, worker_processes auto (one per core, as on EC2 proxy hosts)',
        url: url('ws', plainPorts['per-core']),
      },
      'nginx-https': { name: 'nginx-https', description: `nginx http mode + TLS${colocated}`, url: topology.urlOf('http') },
      'nginx-stream': { name: 'nginx-stream', description: `nginx stream (L4) mode, plain${colocated}`, url: url('ws', plainStreamPort) },
      'nginx-stream-twin': {
        name: 'nginx-stream-twin',
        description: 'nginx-stream again: the same nginx and config on another port (A/A control)',
        url: url('ws', twinStreamPort),
      },
      'nginx-stream-alone': {
        name: 'nginx-stream-alone',
        description: 'nginx-stream again, in an nginx that relays no other path (A/B control for the process a path shares)',
        url: url('ws', aloneStreamPort),
      },
      'nginx-stream-tls': { name: 'nginx-stream-tls', description: `nginx stream mode + TLS${colocated}`, url: topology.urlOf('stream') },
      'haproxy-http': {
        name: 'haproxy-http',
        description: 'HAProxy http mode, plain, in a HAProxy that relays no other path (as nginx-http)',
        url: url('ws', haproxyPorts.http),
      },
      'haproxy-https': { name: 'haproxy-https', description: 'HAProxy http mode + TLS', url: url('wss', haproxyPorts.https) },
      'haproxy-tcp': { name: 'haproxy-tcp', description: 'HAProxy tcp mode, plain', url: url('ws', haproxyPorts.tcp) },
      'haproxy-tcp-tls': { name: 'haproxy-tcp-tls', description: 'HAProxy tcp mode + TLS', url: url('wss', haproxyPorts.tcpTls) },
    };

    const redisDir = path.join(topology.runFolder, 'redis');
    const proxyPaths: Record<string, readonly PathName[]> = {
      [NGINX_TLS]: ['nginx-https', 'nginx-stream', 'nginx-stream-twin', 'nginx-stream-tls'],
      [NGINX_PLAIN]: ['nginx-http'],
      [NGINX_PER_CORE]: ['nginx-http-per-core'],
      [NGINX_ALONE]: ['nginx-stream-alone'],
      ...HAPROXY_PATHS,
    };
    const components: Record<string, () => readonly number[]> = {
      [NGINX_TLS]: () => processTree(topology.nginx.masterPid),
      [NGINX_PLAIN]: () => processTree(nginxPlain.masterPid),
      [NGINX_PER_CORE]: () => processTree(nginxPerCore.masterPid),
      [NGINX_ALONE]: () => processTree(nginxAlone.masterPid),
      [HAPROXY]: () => processTree(haproxies[HAPROXY].pid),
      [HAPROXY_ALONE]: () => processTree(haproxies[HAPROXY_ALONE].pid),
      redis: () => pidsWorkingIn(redisDir, 'redis-server'),
      ...Object.fromEntries(topology.nodes.map((node) => [node.name, () => (node.pid !== undefined && node.isRunning() ? [node.pid] : [])])),
    };

    const relayPids = (pathName: PathName): readonly number[] => {
      const component = Object.keys(proxyPaths).find((name) => proxyPaths[name]!.includes(pathName));
      if (component === undefined) throw new Error(`${pathName} goes through no proxy`);
      const tree = components[component]!();
      return component === HAPROXY || component === HAPROXY_ALONE ? tree : tree.slice(1);
    };

    return {
      topology,
      ca,
      nginxTls: topology.nginx,
      nginxPlain,
      nginxPerCore,
      haproxyPid: (pathName) => haproxies[haproxyOf(pathName)].pid,
      restartHaproxy,
      paths,
      nodeUrls,
      components,
      proxyPaths,
      relayPids,
      plainSpec,
      tlsSpec,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

interface HaproxyPorts {
  readonly http: number;
  readonly https: number;
  readonly tcp: number;
  readonly tcpTls: number;
}

interface HaproxyListeners {
  /** Folder name under the run folder. */
  readonly name: string;
  readonly http: ReadonlyArray<{ readonly port: number; readonly tls: boolean }>;
  readonly tcp: ReadonlyArray<{ readonly port: number; readonly tls: boolean }>;
}

async function startHaproxy(topology: Topology, listeners: HaproxyListeners): Promise<ManagedProcess> {
  const dir = path.join(topology.runFolder, listeners.name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // HAProxy reads certificate and key from one file.
  const spec = topology.nginxSpec();
  const tls = spec.http?.tls;
  if (!tls) throw new Error('the topology http listener has no TLS; the bench needs its certificate for HAProxy');
  const pemPath = path.join(dir, 'server.pem');
  fs.writeFileSync(pemPath, fs.readFileSync(tls.certificatePath, 'utf8') + fs.readFileSync(tls.keyPath, 'utf8'), { mode: 0o600 });
  const configPath = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(
    configPath,
    renderHaproxyConfig({
      listenAddress: LOOPBACK,
      http: listeners.http,
      tcp: listeners.tcp,
      servers: topology.ports.nodes.map((port) => ({ host: LOOPBACK, port })),
      certificatePemPath: pemPath,
      connectSeconds: spec.timeouts?.connectSeconds ?? NGINX_DEFAULTS.connectSeconds,
      idleSeconds: resolveIdleTimeoutSeconds(spec),
      maxConnections: HAPROXY_MAX_CONNECTIONS,
    }),
  );
  return startHaproxyProcess({ dir, configPath, ports: [...listeners.http, ...listeners.tcp].map((listener) => listener.port) });
}

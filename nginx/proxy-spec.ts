/**
 * The NginxSpec of a realtime-edge proxy, from the proxy settings a stack validates, the backends'
 * node addresses and what differs between places nginx runs. The one place that turns settings into
 * a spec: the NginxProxy component (EC2 user data and SSM), `npm run render` (through that
 * component) and the local topology all call `proxyNginxSpec`, so they render the same nginx.conf
 * and differ only in the deployment options (ports, paths, how the stream module is present).
 *
 * Pure data in, data out; no Pulumi, no I/O.
 */
import type { ProxyMode } from '../config/types';
import { proxyEnforcesOrigins, type ServerProfile } from '../servers/profile';
import { resolveNginxInstallPaths } from './build';
import { NGINX_DEFAULTS } from './conf-defaults';
import type {
  BackendMount,
  BalanceSpec,
  NginxPaths,
  NginxSpec,
  NginxTimeouts,
  StreamListenerSpec,
  TlsSpec,
  UpstreamServer,
} from './spec';

/** A node's address; the port only where it is not the profile's port (e.g. loopback nodes). */
export type ProxyNodeAddress = string | { readonly host: string; readonly port?: number };

/** One backend cluster behind the proxy. */
export interface ProxyBackend {
  readonly profile: ServerProfile;
  readonly nodes: readonly ProxyNodeAddress[];
  /** http mode: mount every route under this prefix, stripped before proxying.
   * @default `mountPrefix(profile, index)`: the first backend at the root, every other under `/<name>` */
  readonly prefix?: string;
  /** stream mode: the public TCP/TLS listener port of this backend. @default profile.port */
  readonly streamPort?: number;
}

/** The proxy settings of a stack (what a user chooses; the same wherever nginx runs). */
export interface ProxySettings {
  /** Which listeners exist: `http` (L7 path routing), `stream` (one L4 listener per backend) or both. */
  readonly mode: ProxyMode;
  /** Upstream strategy of every backend. @default round robin (nginx's own default) */
  readonly balance?: BalanceSpec;
  /** Strategy of the stream listeners when it must differ from `balance` (stream sessions carry no
   * cookies or headers). @default `streamBalanceOf(balance)`: ip-hash becomes hash $remote_addr */
  readonly streamBalance?: BalanceSpec;
  /** server_name. @default NGINX_DEFAULTS.serverName (`_`, any name) */
  readonly domain?: string;
  /** Where nginx finds its certificate and key; every listener terminates TLS. */
  readonly tls: { readonly certificatePath: string; readonly keyPath: string };
  /** Strict-Transport-Security max-age on http routes; 0 or unset = no header. */
  readonly hstsMaxAgeSeconds?: number;
  /** Concurrent client connections; sizes worker_connections and the file limits.
   * @default NGINX_DEFAULTS.maxConnections */
  readonly maxConnections?: number;
  /** @default the renderer's (idle above the mounted backends' ping intervals) */
  readonly timeouts?: NginxTimeouts;
  /** Browser origins allowed on http-mode WebSocket routes of servers that do not check them
   * (`HttpFrontendSpec.allowedOrigins`). @default any origin */
  readonly allowedOrigins?: readonly string[];
}

/** What differs between places nginx runs (EC2 host, local run folder), never what it proxies. */
export interface ProxyDeployment {
  readonly paths: NginxPaths;
  /** @default compiled in (`static`), as the EC2 build does */
  readonly streamModule?: NginxSpec['streamModule'];
  /** Address every public listener binds. @default all addresses */
  readonly listenAddress?: string;
  /** Ports to listen on instead of the public ones. */
  readonly listenPorts?: {
    /** Instead of NGINX_DEFAULTS.tlsListenPort (443). */
    readonly https?: number;
    /** Instead of NGINX_DEFAULTS.redirectHttpPort (80); `null` = no redirect listener. */
    readonly redirect?: number | null;
    /** Per backend name, instead of its public stream port. */
    readonly stream?: Readonly<Record<string, number>>;
  };
  /** stub_status listener. @default NGINX_DEFAULTS.statusPort; `null` = none */
  readonly statusPort?: number | null;
  readonly workerProcesses?: 'auto' | number;
  /** Worker user (honoured when the master runs as root). @default none */
  readonly user?: string;
  /** Replaces the http mounts the backends give (tests mounting a route-test upstream alone). */
  readonly httpMounts?: readonly BackendMount[];
  /** Mounted after the backends' http mounts. */
  readonly extraHttpMounts?: readonly BackendMount[];
  /** Listeners after the backends' stream listeners. */
  readonly extraStreamListeners?: readonly StreamListenerSpec[];
}

/** Where a backend is mounted when several share one frontend: the first at the root, every other
 * one under `/<name>` (stripped before proxying). The first keeps its plain paths; the others cannot
 * collide with it (deepstream and Centrifugo both serve `/api`). The ALB follows the same rule. */
export function mountPrefix(profile: ServerProfile, index: number): string | undefined {
  return index === 0 ? undefined : `/${profile.name}`;
}

/** The prefix backend `index` is mounted under in http mode. */
export function proxyBackendPrefix(backend: Pick<ProxyBackend, 'profile' | 'prefix'>, index: number): string | undefined {
  return backend.prefix ?? mountPrefix(backend.profile, index);
}

/** The public stream listener port of a backend. */
export function proxyStreamPort(backend: Pick<ProxyBackend, 'profile' | 'streamPort'>): number {
  return backend.streamPort ?? backend.profile.port;
}

/** The stream listener's equivalent of an http balance: `ip-hash` becomes `hash $remote_addr
 * consistent` (nginx has no ip_hash for TCP); HTTP-only hash keys (cookies, headers, arguments)
 * have none and are refused. */
export function streamBalanceOf(balance: BalanceSpec | undefined): BalanceSpec | undefined {
  if (!balance) return undefined;
  if (balance.strategy === 'ip-hash') return { strategy: 'hash', hashKey: '$remote_addr' };
  if (balance.strategy === 'hash' && balance.hashKey && /\$(cookie|http|arg)_/.test(balance.hashKey)) {
    throw new Error(
      `balance hashKey ${balance.hashKey} is an HTTP variable and cannot be used by the stream listener; ` +
        'allowed in stream mode: $remote_addr (or proxyMode http)',
    );
  }
  return balance;
}

function upstreamServer(node: ProxyNodeAddress): UpstreamServer {
  if (typeof node === 'string') return { host: node };
  return node.port === undefined ? { host: node.host } : { host: node.host, port: node.port };
}

/** The http mount of backend `index` (its nodes, its prefix, the given balance). */
export function proxyBackendMount(backend: ProxyBackend, index: number, balance?: BalanceSpec): BackendMount {
  const prefix = proxyBackendPrefix(backend, index);
  return {
    profile: backend.profile,
    servers: backend.nodes.map(upstreamServer),
    ...(balance ? { balance } : {}),
    ...(prefix ? { prefix } : {}),
  };
}

/** The public ports a proxy listens on in `mode`; a port claimed twice is refused. */
export function proxyListenerPorts(
  mode: ProxyMode,
  backends: readonly Pick<ProxyBackend, 'profile' | 'streamPort'>[],
): { port: number; purpose: string }[] {
  const ports: { port: number; purpose: string }[] = [];
  if (mode !== 'stream') {
    ports.push(
      { port: NGINX_DEFAULTS.tlsListenPort, purpose: 'HTTPS and WSS clients' },
      { port: NGINX_DEFAULTS.redirectHttpPort, purpose: 'redirect to HTTPS' },
    );
  }
  if (mode !== 'http') {
    for (const backend of backends) {
      ports.push({ port: proxyStreamPort(backend), purpose: `${backend.profile.displayName} over TLS (stream)` });
    }
  }
  const seen = new Set<number>();
  for (const { port } of ports) {
    if (seen.has(port)) throw new Error(`nginx proxy: listener port ${port} is used twice; give each stream backend its own streamPort`);
    seen.add(port);
  }
  return ports;
}

/** The complete NginxSpec of a proxy: `renderNginxConf(proxyNginxSpec(...))` is its nginx.conf. */
export function proxyNginxSpec(
  settings: ProxySettings,
  backends: readonly ProxyBackend[],
  deployment: ProxyDeployment,
): NginxSpec {
  const unenforceable = settings.mode === 'http' ? [] : backends.filter((backend) => proxyEnforcesOrigins(backend.profile));
  if (settings.allowedOrigins?.length && unenforceable.length > 0) {
    throw new Error(
      `nginx proxy: allowedOrigins cannot be enforced on the stream listener of ${unenforceable.map((b) => b.profile.displayName).join(', ')} ` +
        `(mode ${settings.mode}): stream mode passes the WebSocket handshake through unread, and that server does not check Origin itself; ` +
        'allowed: mode http, or no allowedOrigins',
    );
  }
  const hsts = settings.hstsMaxAgeSeconds ?? 0;
  const tls: TlsSpec = {
    certificatePath: settings.tls.certificatePath,
    keyPath: settings.tls.keyPath,
    ...(hsts > 0 ? { hstsMaxAgeSeconds: hsts } : {}),
  };
  // Derived only when stream listeners exist: an http-only proxy may use cookie hash keys, which
  // have no stream equivalent.
  const streamBalance = settings.mode === 'http' ? undefined : (settings.streamBalance ?? streamBalanceOf(settings.balance));
  const ports = deployment.listenPorts ?? {};
  const httpMounts = [
    ...(deployment.httpMounts ?? backends.map((backend, index) => proxyBackendMount(backend, index, settings.balance))),
    ...(deployment.extraHttpMounts ?? []),
  ];
  const streamListeners: StreamListenerSpec[] = [
    ...(settings.mode !== 'http'
      ? backends.map((backend, index) => {
          // Bytes pass through untouched in stream mode: no paths, so no prefix.
          const { profile, servers, balance } = proxyBackendMount(backend, index, streamBalance);
          return {
            listenPort: ports.stream?.[backend.profile.name] ?? proxyStreamPort(backend),
            // HSTS is an HTTP header: a stream listener has none to send.
            tls: { certificatePath: tls.certificatePath, keyPath: tls.keyPath },
            backend: { profile, servers, ...(balance ? { balance } : {}) },
          };
        })
      : []),
    ...(deployment.extraStreamListeners ?? []),
  ];
  return {
    ...(settings.mode !== 'stream'
      ? {
          http: {
            ...(ports.https !== undefined ? { listenPort: ports.https } : {}),
            ...(ports.redirect !== undefined ? { redirectHttpPort: ports.redirect } : {}),
            serverName: settings.domain ?? NGINX_DEFAULTS.serverName,
            tls,
            backends: httpMounts,
            ...(settings.allowedOrigins?.length ? { allowedOrigins: settings.allowedOrigins } : {}),
          },
        }
      : {}),
    ...(streamListeners.length > 0 ? { stream: { listeners: streamListeners } } : {}),
    streamModule: deployment.streamModule ?? NGINX_DEFAULTS.streamModule,
    ...(settings.maxConnections !== undefined ? { maxConnections: settings.maxConnections } : {}),
    ...(deployment.workerProcesses !== undefined ? { workerProcesses: deployment.workerProcesses } : {}),
    ...(settings.timeouts ? { timeouts: settings.timeouts } : {}),
    ...(deployment.statusPort !== undefined ? { statusPort: deployment.statusPort } : {}),
    ...(deployment.user ? { user: deployment.user } : {}),
    ...(deployment.listenAddress ? { listenAddress: deployment.listenAddress } : {}),
    paths: deployment.paths,
  };
}

/** The custom 50x page's directory on a proxy host (apart from nginx's sample html/). */
export const NGINX_HOST_ERROR_PAGE_ROOT = '/etc/nginx/errors';

/** Where nginx runs on an EC2 proxy host (the NginxProxy component): compiled with the stream module,
 * the build's install paths, workers as user nginx. */
export function proxyHostDeployment(): ProxyDeployment {
  const paths = resolveNginxInstallPaths();
  return {
    paths: {
      pidFile: paths.pidPath,
      errorLog: paths.errorLogPath,
      accessLog: paths.accessLogPath,
      errorPageRoot: NGINX_HOST_ERROR_PAGE_ROOT,
    },
    streamModule: { kind: 'static' },
    user: 'nginx',
  };
}

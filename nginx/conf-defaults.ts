/**
 * The one place that decides every default of the rendered nginx.conf, and the two derived figures
 * other layers must agree with: the idle timeout (the ALB's idle timeout follows the same rule) and
 * the capacity numbers (systemd `LimitNOFILE` must equal `worker_rlimit_nofile`). The defaults a
 * stack key shares (connect timeout, capacity, the idle-timeout rule) are decided in the base layer,
 * config/proxy-defaults.ts, and only applied here.
 */
import { defaultIdleTimeoutSeconds, PROXY_DEFAULTS } from '../config/proxy-defaults';
import type { ServerProfile } from '../servers/profile';
import type { NginxSpec } from './spec';

export { defaultIdleTimeoutSeconds } from '../config/proxy-defaults';

export const NGINX_DEFAULTS = {
  maxConnections: PROXY_DEFAULTS.maxConnections,
  /** One worker per core: EC2 proxy hosts run nothing else, so every core is the proxy's. Where
   * nginx shares a host with the nodes, see `colocatedWorkerProcesses`. */
  workerProcesses: 'auto',
  connectSeconds: PROXY_DEFAULTS.connectSeconds,
  /** Old workers close their WebSockets this long after a reload; clients then reconnect to the new
   * workers. Short, so repeated reloads (node changes) do not pile up generations of old workers. */
  workerShutdownSeconds: 30,
  statusPort: 8081,
  tlsListenPort: 443,
  plainListenPort: 80,
  redirectHttpPort: 80,
  serverName: '_',
  reuseport: true,
  /** `backlog=` of every public listener; see PROXY_DEFAULTS.listenBacklog (the kernel caps it at
   * net.core.somaxconn, which the build script raises to the same value). */
  listenBacklog: PROXY_DEFAULTS.listenBacklog,
  streamModule: { kind: 'static' } as const,
  streamModulePath: '/usr/lib/nginx/modules/ngx_stream_module.so',
  /** Idle upstream connections each worker keeps per plain-HTTP upstream. */
  upstreamKeepalive: 32,
  /** Passive health checks on plain-HTTP upstreams: requests complete, so a node marked down is
   * probed again after fail_timeout and restored by the first success. */
  httpMaxFails: 2,
  httpFailTimeoutSeconds: 10,
  /** Passive health checks off on long-lived (WebSocket, stream) upstreams; see conf.ts. */
  longLivedMaxFails: 0,
  /** Upper bound of proxy_next_upstream_tries (the actual value is min(this, servers)). */
  maxNextUpstreamTries: 3,
  /** TLS session cache per shared zone: 10 MB holds about 40,000 sessions. */
  tlsSessionCacheMegabytes: 10,
  tlsSessionTimeout: '1d',
  /** Relay buffer of an upgraded WebSocket (http) or a TCP session (stream), allocated per
   * connection and direction. Realtime messages are small, and an idle connection still holds its
   * buffers: bench/ measured nginx per idle connection at 18 -> 14 KB (http) and 10 -> 3.5 KB
   * (stream) going from the defaults (4k, 16k) to 1k. A larger frame is relayed in several reads.
   * It must still hold the upstream's 101 response headers (about 150 bytes for both servers).
   * Not 512: it saves another 1.0 KB per idle http-mode connection (12.3 -> 11.2 KB, 2,000 clients),
   * but a 16 KB message then takes 1.8x as long through the relay (a TCP ping-pong through nginx
   * stream: 430 against 237 µs per round trip; +15% at 4 KB), and record snapshots are that large. */
  longLivedProxyBufferSize: '1k',
  /** TLS record size in http mode, and the size of the per-connection buffer nginx fills before it
   * encrypts a response. An upgraded WebSocket bypasses that buffer (each relayed read is one
   * SSL_write), yet the buffer the 101 response went through stays allocated for the connection's
   * life. Per idle wss connection (3,000 through one worker, Debian nginx 1.22 + OpenSSL 3.0):
   * 16k 49.4, 4k 39.2, 2k 37.3, 1k 36.3, 512 35.8 KB. 1k keeps most of the saving; below it records
   * get too small for the plain HTTP responses this listener also serves (health checks, server
   * APIs, SSE). The stream TLS module has no such directive. */
  tlsBufferSize: '1k',
  /** Allocation unit of a request's memory pool. A proxied WebSocket keeps its request (headers,
   * upstream state, variables) for its whole life; in 1k blocks that state fits tighter than in the
   * default 4k ones: bench/ measured 14.3 -> 12.4 KB per idle http-mode connection. 512 measured 12.5
   * with this config (it saved 0.5 KB only on a bare proxy_pass config), 768, 384 and 256 were no
   * better than 1k, 2k and 8k no better than 4k. Larger objects fall back to plain allocations, as
   * with any pool size. */
  requestPoolSize: '1k',
} as const;

/** Path of the stub_status page on the loopback status listener. */
export const STUB_STATUS_PATH = '/nginx_status';
/** File name of the custom error page inside `paths.errorPageRoot`. */
export const ERROR_PAGE_FILE = '50x.html';

/** Every backend profile the spec mounts, http and stream. */
export function mountedProfiles(spec: Pick<NginxSpec, 'http' | 'stream'>): ServerProfile[] {
  return [
    ...(spec.http?.backends ?? []).map((backend) => backend.profile),
    ...(spec.stream?.listeners ?? []).map((listener) => listener.backend.profile),
  ];
}

/** The idle timeout the rendered config uses (spec value or the default above). */
export function resolveIdleTimeoutSeconds(spec: Pick<NginxSpec, 'http' | 'stream' | 'timeouts'>): number {
  return spec.timeouts?.idleSeconds ?? defaultIdleTimeoutSeconds(mountedProfiles(spec));
}

export interface NginxCapacity {
  /** The target the figures were derived from. */
  readonly maxConnections: number;
  /** `worker_connections`: per worker, counting client and upstream sockets. */
  readonly workerConnections: number;
  /** `worker_rlimit_nofile`, and what systemd `LimitNOFILE` must allow. */
  readonly rlimitNofile: number;
}

/** Every proxied connection holds two sockets in its worker: the client's and the upstream's. */
const SOCKETS_PER_CLIENT = 2;
/** Slots besides proxied pairs: listening sockets, idle upstream keepalive connections, stub_status. */
const WORKER_CONNECTION_RESERVE = 256;
/** Descriptors besides connections: log files, temp files of buffered bodies, the 50x page. */
const FILE_DESCRIPTOR_RESERVE = 1024;
/** With reuseport the kernel hashes connections over the workers' queues. 25% headroom per worker:
 * bench/ tried 4 standard deviations of the hash instead (+6% at 20,000 clients over 4 workers), and
 * one worker ran out of slots while 5,000 clients connected at once, although the spread it settled
 * at was under 2%; 25% held every 20,000-client run. */
const REUSEPORT_SKEW = 1.25;

/**
 * Workers for an nginx that shares its host with the nodes (the local topology): one per core the
 * nodes leave free, each node being a busy single-threaded event loop, and at least one. Extra
 * workers there only compete with the nodes: on 2 cores running 2 nodes, bench/ measured one
 * worker 1-21 µs faster per traversal than one per core in every run, with fan-out within 0.10x
 * either way.
 */
export function colocatedWorkerProcesses(cores: number, nodes: number): number {
  return Math.max(1, Math.floor(cores) - nodes);
}

/**
 * worker_connections and worker_rlimit_nofile from the `maxConnections` target:
 *
 *   clientsPerWorker  = maxConnections                               (workers `auto` or no reuseport)
 *                     = min(maxConnections, ceil(maxConnections * 1.25 / workerProcesses))
 *                                                                     (a fixed count with reuseport)
 *   workerConnections = 2 * clientsPerWorker + 256
 *   rlimitNofile      = workerConnections + 1024
 *
 * Without reuseport every worker accepts from one shared queue and long-lived connections pile up
 * on whichever worker wakes first, so each worker must be able to hold the whole target; with
 * `auto` the worker count is unknown at render time, so the same holds. Only a fixed worker count
 * with reuseport (the kernel spreads connections evenly) lets the target be divided.
 */
export function nginxCapacity(
  spec: Pick<NginxSpec, 'maxConnections' | 'workerProcesses' | 'reuseport'>,
): NginxCapacity {
  const maxConnections = spec.maxConnections ?? NGINX_DEFAULTS.maxConnections;
  const workers = spec.workerProcesses ?? NGINX_DEFAULTS.workerProcesses;
  const reuseport = spec.reuseport ?? NGINX_DEFAULTS.reuseport;
  const clientsPerWorker =
    reuseport && typeof workers === 'number'
      ? Math.min(maxConnections, Math.ceil((maxConnections * REUSEPORT_SKEW) / workers))
      : maxConnections;
  const workerConnections = SOCKETS_PER_CLIENT * clientsPerWorker + WORKER_CONNECTION_RESERVE;
  return { maxConnections, workerConnections, rlimitNofile: workerConnections + FILE_DESCRIPTOR_RESERVE };
}

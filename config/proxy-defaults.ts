/**
 * Proxy facts the stack config shares with the layers above it: the upstream balancing strategies,
 * the nginx release built by default, and the proxy defaults. Each is decided here, once: the stack
 * keys (config/schema.ts) default to these values, and nginx/ (NGINX_DEFAULTS, the build renderer)
 * and the ALB apply the same ones to a setting left unset. Base layer: plain data, no imports from
 * nginx/ or components/.
 */
import { maxPingIntervalSeconds, type ServerProfile } from '../servers/profile';

/** Upstream load-balancing strategy.
 * - `round-robin`: nginx's default.
 * - `least-conn`: fewest active connections; suits long-lived WebSockets.
 * - `ip-hash`: client-address affinity (http mode only; stream mode uses `hash` on `$remote_addr`).
 * - `hash`: `hash <hashKey> consistent` (ketama); `hashKey` defaults to `$remote_addr`, and
 *   `$cookie_NAME` gives cookie affinity in http mode.
 * - `random-two-least-conn`: `random two least_conn` (power of two choices). */
export type BalanceStrategy = 'round-robin' | 'least-conn' | 'ip-hash' | 'hash' | 'random-two-least-conn';

export const BALANCE_STRATEGIES: readonly BalanceStrategy[] = [
  'round-robin',
  'least-conn',
  'ip-hash',
  'hash',
  'random-two-least-conn',
];

export interface BalanceSpec {
  readonly strategy: BalanceStrategy;
  /** nginx variable expression for `hash`; default `$remote_addr`. A key that is exactly
   * `$cookie_NAME` gives cookie affinity (http only); clients without the cookie yet hash on their
   * address instead of all landing on one node. */
  readonly hashKey?: string;
}

/** Current nginx stable release (the 1.30 branch; 1.30.6, October 2026, per nginx.org CHANGES-1.30).
 * The version is an option; this is only the default. The build renderer pins the keys that sign
 * this branch (NGINX_RELEASE_SIGNING_KEYS in nginx/build-options.ts): moving to another branch may
 * need a key there too. */
export const NGINX_STABLE_VERSION = '1.30.6';

export const PROXY_DEFAULTS = {
  /** Concurrent client connections one proxy host is sized for. Sized for the tightest place the
   * default runs unchanged: `npm run local`, the tests and bench/ start nginx from an unprivileged
   * shell under a hard open-file limit of 20,000 per process, and with `auto` workers every worker
   * must hold the whole target (nginxCapacity), so worker_rlimit_nofile = 2 x 8192 + 256 + 1024 =
   * 17,664 stays under it. EC2 proxy hosts raise systemd LimitNOFILE to worker_rlimit_nofile
   * whatever the target, so capacity there is a sizing decision per stack (Pulumi.prod.yaml sets
   * 50,000), as nginx's and HAProxy's own conservative defaults leave it too. */
  maxConnections: 8192,
  /** The largest `maxConnections` a proxy can be sized for: each connection holds two sockets in a
   * worker, and worker_rlimit_nofile (2 x 500,000 + 256 + 1,024) must stay under the kernel's
   * per-process ceiling (fs.nr_open, 1,048,576 by default). */
  maxConnectionsLimit: 500_000,
  /** Time to connect to a node before trying the next one. Nodes sit in the same VPC and a healthy
   * one accepts within milliseconds; Linux retransmits a lost SYN after 1 s, so 2 s rides out one
   * lost SYN. A node that drops SYNs (crashed host, partition) holds no connections, so least_conn
   * keeps choosing it: every new handshake waits this long there before nginx moves it to the next
   * node (see nginx/conf.ts). Hence shorter than ingress-nginx's 5 s. */
  connectSeconds: 2,
  /** Accept queue of each public listening socket (nginx `listen ... backlog=`) and the kernel caps
   * it is bounded by (`net.core.somaxconn`, `net.ipv4.tcp_max_syn_backlog`, set by the build
   * script). nginx asks for 511 unless told otherwise. After a reload closes old workers' WebSockets
   * (worker_shutdown_timeout), every client reconnects at once; with reuseport each worker's queue
   * takes its share, and a handshake beyond a full queue loses its SYN and waits 1 s, then 3 s. */
  listenBacklog: 65535,
} as const;

/** Idle timeout = IDLE_PING_FACTOR x the largest ping interval + IDLE_MARGIN_SECONDS. */
const IDLE_PING_FACTOR = 2;
const IDLE_MARGIN_SECONDS = 15;

/** The rule of `defaultIdleTimeoutSeconds`, in words (generated docs). */
export const DEFAULT_IDLE_TIMEOUT_RULE = `${IDLE_PING_FACTOR} x the largest ping interval + ${IDLE_MARGIN_SECONDS} s`;

/**
 * Default idle timeout of long-lived connections, for nginx (proxy_read/send_timeout, stream
 * proxy_timeout) and the ALB alike: twice the largest ping interval plus 15 s. One missed ping (a slow
 * node, a GC pause, a lost packet retransmitted) must not cut a healthy socket, and a dead peer is
 * still noticed within about two ping periods.
 */
export function defaultIdleTimeoutSeconds(profiles: readonly ServerProfile[]): number {
  return IDLE_PING_FACTOR * maxPingIntervalSeconds(profiles) + IDLE_MARGIN_SECONDS;
}

/**
 * The typed input of `renderNginxConf`. Plain data: the same spec is rendered for EC2 user data,
 * for `npm run render` and for the local topology (which only changes ports, paths and how the
 * stream module is loaded).
 */
import type { BalanceSpec } from '../config/proxy-defaults';
import type { ServerProfile } from '../servers/profile';

// Balancing is a stack setting too, so its vocabulary lives in the base layer; re-exported here as
// part of the spec's surface.
export { BALANCE_STRATEGIES, type BalanceSpec, type BalanceStrategy } from '../config/proxy-defaults';

export interface UpstreamServer {
  /** IP address or DNS name of a node. */
  readonly host: string;
  /** Default: the profile's port. */
  readonly port?: number;
  readonly weight?: number;
  /** Passive health check: failures within failTimeoutSeconds that mark the server down. */
  readonly maxFails?: number;
  readonly failTimeoutSeconds?: number;
  readonly backup?: boolean;
}

/** One backend cluster behind the proxy. */
export interface BackendMount {
  readonly profile: ServerProfile;
  readonly servers: readonly UpstreamServer[];
  /** Mount every route under this prefix and strip it before proxying,
   * e.g. `/centrifugo` maps `/centrifugo/connection/websocket` to `/connection/websocket`. */
  readonly prefix?: string;
  /** Default: round-robin. */
  readonly balance?: BalanceSpec;
}

export interface TlsSpec {
  readonly certificatePath: string;
  readonly keyPath: string;
  /** Strict-Transport-Security max-age in seconds (http mode); off when unset. */
  readonly hstsMaxAgeSeconds?: number;
}

/** Layer-7 front: one `server` (plus an optional port-80 redirect server) routing paths to backends. */
export interface HttpFrontendSpec {
  /** Default 443 with TLS, 80 without. */
  readonly listenPort?: number;
  readonly serverName?: string;
  /** TLS termination; `null`/absent = plain HTTP. */
  readonly tls?: TlsSpec | null;
  /** With TLS: a plain listener on this port answering 301 to https. Default 80; `null` disables it. */
  readonly redirectHttpPort?: number | null;
  readonly backends: readonly BackendMount[];
  /** Browser origins (`https://app.example.com`, `*` wildcards in the host) allowed on the WebSocket
   * routes of backends whose servers do not check `Origin` themselves (`proxyEnforcesOrigins`): a
   * handshake with another `Origin` is answered 403; one without the header (non-browser clients)
   * passes. Empty or absent = any origin. Stream listeners pass the handshake through unread and
   * cannot check it. */
  readonly allowedOrigins?: readonly string[];
}

/** Layer-4 front: a TCP (optionally TLS-terminating) listener passing bytes to one backend's nodes. */
export interface StreamListenerSpec {
  readonly listenPort: number;
  readonly tls?: TlsSpec | null;
  readonly backend: BackendMount;
}

export interface NginxTimeouts {
  /** proxy_connect_timeout (http and stream); default PROXY_DEFAULTS.connectSeconds (2 s). */
  readonly connectSeconds?: number;
  /** proxy_read_timeout / proxy_send_timeout on WebSocket routes and stream proxy_timeout.
   * Default: well above the largest ping interval of the mounted profiles (`defaultIdleTimeoutSeconds`);
   * must be above that ping interval. */
  readonly idleSeconds?: number;
  /** worker_shutdown_timeout: how long workers of an old configuration keep their connections after a
   * reload before nginx closes them; default 30 s. */
  readonly workerShutdownSeconds?: number;
}

export interface NginxPaths {
  /** `pid` file. */
  readonly pidFile: string;
  readonly errorLog: string;
  readonly accessLog: string;
  /** Directory holding the custom 50x page (`50x.html`). */
  readonly errorPageRoot: string;
  /** Existing directory under which nginx creates client_body/proxy/fastcgi/uwsgi/scgi temp
   * directories; unset = nginx's compiled-in defaults. */
  readonly tempDir?: string;
  /** `include` for mime.types; unset = none (realtime-edge serves no files besides the 50x page). */
  readonly mimeTypes?: string;
  /** Access log of stream (L4) sessions; default: `accessLog` (lines carry the protocol, TCP). */
  readonly streamAccessLog?: string;
}

export interface NginxSpec {
  /** L7 mode. At least one of `http` and `stream` is required; both may be set. */
  readonly http?: HttpFrontendSpec;
  /** L4 mode. */
  readonly stream?: { readonly listeners: readonly StreamListenerSpec[] };
  /** How the stream module is present: compiled in (`static`, EC2 builds `--with-stream`) or a
   * dynamic module loaded by absolute path (Debian's `libnginx-mod-stream`). */
  readonly streamModule?: { readonly kind: 'static' } | { readonly kind: 'dynamic'; readonly path?: string };
  /** Target number of concurrent client connections; sizes worker_connections and
   * worker_rlimit_nofile (a proxied WebSocket holds two connections). */
  readonly maxConnections?: number;
  /** `auto` or a number; default `auto`. */
  readonly workerProcesses?: 'auto' | number;
  readonly timeouts?: NginxTimeouts;
  /** Loopback-only stub_status listener port; default 8081; `null` disables it. */
  readonly statusPort?: number | null;
  /** Unprivileged user the workers run as, with its group of the same name (ignored by nginx when
   * not started as root). */
  readonly user?: string;
  /** IP address every public listener (http, redirect, stream) binds; default all addresses.
   * The local topology uses 127.0.0.1. The stub_status listener always binds 127.0.0.1. */
  readonly listenAddress?: string;
  /** `reuseport` on public listeners (one accept queue per worker); default true. */
  readonly reuseport?: boolean;
  readonly paths: NginxPaths;
}

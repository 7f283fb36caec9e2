/**
 * A backend server profile: everything the proxy layer (nginx, the ALB, the local topology) needs
 * to know about a realtime server, as data. Adding a third server means adding one profile file in
 * `servers/`; nothing outside `servers/` branches on a server's name.
 */

/** How a proxy must treat one path of a backend. */
export type RouteKind =
  /** Long-lived upgraded or streaming connections: Upgrade/Connection headers, no buffering,
   * timeouts above the ping interval, retried on another node only for connection errors. */
  | 'websocket'
  /** Ordinary request/response HTTP: upstream keepalive, buffering allowed. */
  | 'http';

export interface ProxyRoute {
  /** Path on the backend node, e.g. `/deepstream` or `/connection/`. */
  readonly path: string;
  readonly kind: RouteKind;
  /** `location = path` instead of a prefix match. */
  readonly exact?: boolean;
}

export interface ServerProfile {
  /** Short lowercase identifier; used in upstream names, resource names and URL outputs. */
  readonly name: string;
  /** Human name for docs and messages. */
  readonly displayName: string;
  /** The port a node listens on for every route below. */
  readonly port: number;
  /** Paths a proxy forwards to the node. Longest/most specific first is not required: renderers sort. */
  readonly routes: readonly ProxyRoute[];
  /** HTTP GET path answering 200 when the node is healthy (ALB target group, local readiness). */
  readonly healthPath: string;
  /** The WebSocket path clients connect to; used to build `wss://HOST<prefix><clientPath>` outputs. */
  readonly clientPath: string;
  /** Server-side heartbeat interval. Proxy read/send and ALB idle timeouts must exceed it, or idle
   * sockets are cut between two pings. */
  readonly pingIntervalSeconds: number;
  /** The server itself refuses WebSocket handshakes whose `Origin` is outside `allowedOrigins`
   * (Centrifugo does; deepstream 7 checks plain HTTP requests only). When false or absent, every
   * frontend that can read the header (nginx http mode, the ALB) enforces the allowed origins on
   * this backend's WebSocket routes, and a frontend that cannot (nginx stream mode) is refused by
   * config validation while origins are set. */
  readonly checksOriginOnUpgrade?: boolean;
}

/** Whether proxies must enforce `allowedOrigins` for this backend (see `checksOriginOnUpgrade`). */
export function proxyEnforcesOrigins(profile: ServerProfile): boolean {
  return profile.checksOriginOnUpgrade !== true;
}

/** The largest ping interval among the given profiles (what proxy timeouts must stay above). */
export function maxPingIntervalSeconds(profiles: readonly ServerProfile[]): number {
  return profiles.reduce((max, p) => Math.max(max, p.pingIntervalSeconds), 0);
}

/** Where a node finds Redis (cluster messaging, cache, Centrifugo's engine). */
export interface RedisEndpoint {
  readonly host: string;
  readonly port: number;
  /** In-transit encryption (ElastiCache with transit encryption on). */
  readonly tls: boolean;
  /** SSM SecureString parameter holding the Redis AUTH token, read by the node at boot. */
  readonly authTokenParameter?: string;
}

/** What one node of a cluster needs to render its config and boot script. */
export interface NodeRenderInput {
  /** Unique per node, e.g. `deepstream-0`; becomes deepstream's serverName / Centrifugo's node name. */
  readonly nodeName: string;
  /** Pinned server version, e.g. `7.0.2` or `6.5.2`. */
  readonly version: string;
  /** Address and port the server listens on. Default `0.0.0.0` and the profile's port. */
  readonly listenHost?: string;
  readonly listenPort?: number;
  readonly redis: RedisEndpoint;
  /** Browser origins allowed to connect; empty = any origin. */
  readonly allowedOrigins?: readonly string[];
  /** SSM SecureString parameter names of this backend's secrets, keyed by `SecretSpec.key`. */
  readonly secretParameters?: Readonly<Record<string, string>>;
  /** AWS region the node reads its SSM parameters from. */
  readonly region?: string;
  /** Raise the node's open-file limit to at least this (systemd LimitNOFILE). */
  readonly maxConnections?: number;
  /** Trusted sha256 of the server's release archive per CPU architecture, for backends that
   * download a binary release (Centrifugo). The node detects its architecture at boot and refuses
   * to install when no pinned checksum matches. */
  readonly releaseSha256?: Readonly<Partial<Record<CpuArchitecture, string>>>;
  /** Accept a release verified only against the checksums file published next to it (no pin).
   * That catches corrupt downloads, not a replaced release. Default false: no pin, no install. */
  readonly allowUnpinnedRelease?: boolean;
}

/** CPU architectures as `uname -m` reports them on EC2 (Intel/AMD and Graviton). */
export type CpuArchitecture = 'x86_64' | 'aarch64';
export const CPU_ARCHITECTURES: readonly CpuArchitecture[] = ['x86_64', 'aarch64'];

/** A secret a backend needs generated (with @pulumi/random) and delivered via SSM. */
export interface SecretSpec {
  /** Stable key, e.g. `tokenHmacSecretKey`. */
  readonly key: string;
  readonly description: string;
  /** Length of the generated random string. */
  readonly length: number;
}

/** A file a node writes at boot. */
export interface RenderedFile {
  readonly path: string;
  readonly content: string;
  /** Octal mode string, e.g. `0644`. */
  readonly mode: string;
  /** What the file is, for `npm run render`'s manifest: `deepstream-config`, `centrifugo-config`, ... */
  readonly kind: string;
  /** `user` or `user:group` owning the file; default `root:root`. */
  readonly owner?: string;
}

/** A realtime server as realtime-edge deploys it: its proxy profile plus how a node is set up. */
export interface ServerBackend {
  readonly profile: ServerProfile;
  /** Default pinned version. */
  readonly defaultVersion: string;
  /** Secrets generated per cluster; none for deepstream. */
  readonly secrets: readonly SecretSpec[];
  /** True when a node downloads the server as a release archive and verifies it before installing:
   * against `NodeRenderInput.releaseSha256`, or with `allowUnpinnedRelease` against the checksums
   * published next to it (the stack config then offers `<name>ReleaseSha256` and
   * `<name>AllowUnpinnedRelease`). Default false: installed another way, e.g. pinned from npm. */
  readonly verifiesReleaseArchive?: boolean;
  /** The node's config files (no secret values in them). */
  renderConfigFiles(input: NodeRenderInput): RenderedFile[];
  /** The bash run as EC2 user data: installs the pinned server, writes the config files, fetches
   * secrets from SSM, installs and starts a systemd unit. Contains no secret values. */
  renderUserData(input: NodeRenderInput): string;
}

/**
 * Validation of an `NginxSpec` and its resolution into the plain model `renderNginxConf` prints:
 * defaults applied, upstreams named, routes mounted. Every invalid spec throws one `NginxSpecError`
 * naming the field path, the bad value and what is allowed.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { PROXY_DEFAULTS } from '../config/proxy-defaults';
import { proxyEnforcesOrigins, type RouteKind, type ServerProfile } from '../servers/profile';
import { DNS_NAME, originSchema } from '../servers/validate';
import {
  defaultIdleTimeoutSeconds,
  ERROR_PAGE_FILE,
  NGINX_DEFAULTS,
  nginxCapacity,
  mountedProfiles,
  resolveIdleTimeoutSeconds,
  type NginxCapacity,
} from './conf-defaults';
import {
  BALANCE_STRATEGIES,
  type BackendMount,
  type BalanceStrategy,
  type NginxPaths,
  type NginxSpec,
  type TlsSpec,
} from './spec';

/** An invalid `NginxSpec`. `field` is the path of the offending value, e.g. `http.backends[0].servers`. */
export class NginxSpecError extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'NginxSpecError';
    this.field = field;
  }
}

// ---------------------------------------------------------------------------------------------
// Resolved model
// ---------------------------------------------------------------------------------------------

export type UpstreamPurpose = 'websocket' | 'http' | 'stream';

export interface ResolvedServer {
  /** `host:port`, IPv6 in brackets. */
  readonly address: string;
  readonly weight?: number;
  /** Only what the spec sets explicitly; the renderer applies the per-purpose default. */
  readonly maxFails?: number;
  readonly failTimeoutSeconds?: number;
  readonly backup: boolean;
}

export interface ResolvedBalance {
  readonly strategy: BalanceStrategy;
  /** Set for `hash` only. */
  readonly hashKey?: string;
}

export interface ResolvedUpstream {
  readonly name: string;
  readonly purpose: UpstreamPurpose;
  readonly profile: ServerProfile;
  readonly balance: ResolvedBalance;
  readonly servers: readonly ResolvedServer[];
  /** proxy_next_upstream_tries: one attempt per server, bounded. */
  readonly nextUpstreamTries: number;
}

export interface ResolvedLocation {
  /** Path as clients see it (prefix included). */
  readonly path: string;
  readonly exact: boolean;
  readonly kind: RouteKind;
  readonly upstream: string;
  /** URI that replaces the matched path in `proxy_pass` (prefix stripping); null passes the URI unchanged. */
  readonly proxyPassUri: string | null;
  readonly backendName: string;
  /** Refuse handshakes from origins outside `ResolvedHttp.allowedOrigins` here. */
  readonly checksOrigin: boolean;
}

export interface ResolvedHttp {
  readonly listenPort: number;
  readonly serverName: string;
  readonly tls: TlsSpec | null;
  readonly redirectHttpPort: number | null;
  readonly upstreams: readonly ResolvedUpstream[];
  /** Sorted by path. */
  readonly locations: readonly ResolvedLocation[];
  /** Whether some backend routes the prefix location `/` (otherwise `/` answers 404). */
  readonly rootClaimed: boolean;
  /** Empty = any origin. */
  readonly allowedOrigins: readonly string[];
}

export interface ResolvedStreamListener {
  readonly listenPort: number;
  readonly tls: TlsSpec | null;
  readonly upstream: ResolvedUpstream;
}

export interface ResolvedNginx {
  readonly http: ResolvedHttp | null;
  readonly stream: readonly ResolvedStreamListener[] | null;
  /** `load_module` target; null when the stream module is compiled in or stream is unused. */
  readonly streamModulePath: string | null;
  readonly capacity: NginxCapacity;
  readonly workerProcesses: 'auto' | number;
  readonly idleSeconds: number;
  readonly connectSeconds: number;
  readonly workerShutdownSeconds: number;
  readonly statusPort: number | null;
  readonly user: string | null;
  readonly listenAddress: string | null;
  readonly reuseport: boolean;
  readonly paths: NginxPaths;
}

// ---------------------------------------------------------------------------------------------
// Shape (zod): types, ranges, formats, unknown fields
// ---------------------------------------------------------------------------------------------

/** zod error param whose message says what is allowed; the formatter adds the field and the value. */
function allowed(what: string) {
  return { error: (issue: { input?: unknown }) => (issue.input === undefined ? `required; allowed: ${what}` : `allowed: ${what}`) };
}

function integer(min: number, max: number, what = `an integer from ${min} to ${max}`) {
  const e = allowed(what);
  return z.number(e).int(e).min(min, e).max(max, e);
}

function text(pattern: RegExp, what: string) {
  const e = allowed(what);
  return z.string(e).regex(pattern, e);
}

/** A strict object: an unknown (misspelled) field is an error that lists the allowed ones. */
function strict<T extends z.ZodRawShape>(shape: T, what: string) {
  const fields = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown field; allowed fields: ${fields}`
        : issue.input === undefined
          ? `required; allowed: ${what}`
          : `allowed: ${what}`,
  });
}

const PROFILE_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const ROUTE_PATH = /^\/[A-Za-z0-9._~/-]*$/;
const PREFIX = /^(?:\/[A-Za-z0-9._~-]+)+$/;
/** nginx arguments are not quoted here, so paths exclude whitespace, `;`, braces, quotes and `$`. */
const ABSOLUTE_PATH = /^\/[^\s;{}"'$\\#]*$/;
const SERVER_NAME = /^(?:\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$|^_$/;
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

function isHost(value: string): boolean {
  const unbracketed = /^\[(.*)\]$/.exec(value)?.[1];
  if (unbracketed !== undefined) return isIP(unbracketed) === 6;
  return isIP(value) !== 0 || DNS_NAME.test(value);
}

function positiveSeconds(max: number) {
  const e = allowed(`seconds > 0 and <= ${max}`);
  return z.number(e).positive(e).max(max, e);
}

const PORT_WHAT = 'a TCP port, an integer from 1 to 65535';
const port = () => integer(1, 65535, PORT_WHAT);
const WORKERS_WHAT = '"auto" or an integer from 1 to 1024';
const absolutePath = () => text(ABSOLUTE_PATH, 'an absolute path without whitespace, quotes, ";", "{", "}", "$" or "#"');

const routeSchema = strict(
  {
    path: text(ROUTE_PATH, 'a URL path starting with "/" made of letters, digits and . _ ~ / -'),
    kind: z.enum(['websocket', 'http'], allowed('"websocket" or "http"')),
    exact: z.boolean(allowed('true or false')).optional(),
  },
  'a route {path, kind, exact?}',
);

const profileSchema = z.looseObject(
  {
    name: text(PROFILE_NAME, 'a lowercase identifier: a letter, then up to 31 of a-z 0-9 _ -'),
    port: port(),
    routes: z.array(routeSchema, allowed('a list of routes')).min(1, allowed('at least one route')),
    pingIntervalSeconds: positiveSeconds(3600),
    checksOriginOnUpgrade: z.boolean(allowed('true or false')).optional(),
  },
  allowed('a ServerProfile from servers/'),
);

const hostWhat = 'an IPv4 or IPv6 address or a DNS name';
const upstreamServerSchema = strict(
  {
    host: z.string(allowed(hostWhat)).refine(isHost, allowed(hostWhat)),
    port: port().optional(),
    weight: integer(1, 1000).optional(),
    maxFails: integer(0, 1000).optional(),
    failTimeoutSeconds: integer(1, 3600).optional(),
    backup: z.boolean(allowed('true or false')).optional(),
  },
  'an upstream server {host, port?, weight?, maxFails?, failTimeoutSeconds?, backup?}',
);

const balanceSchema = strict(
  {
    strategy: z.enum(BALANCE_STRATEGIES as [BalanceStrategy, ...BalanceStrategy[]], allowed(BALANCE_STRATEGIES.join(', '))),
    hashKey: z.string(allowed('an nginx variable expression such as $remote_addr or $cookie_NAME')).optional(),
  },
  '{strategy, hashKey?}',
);

const backendSchema = strict(
  {
    profile: profileSchema,
    servers: z
      .array(upstreamServerSchema, allowed('a list of upstream servers'))
      .min(1, allowed('at least one upstream server {host, port?}')),
    prefix: text(PREFIX, 'a path prefix such as "/centrifugo": "/" and segments of letters, digits, . _ ~ -, no trailing "/"').optional(),
    balance: balanceSchema.optional(),
  },
  'a backend {profile, servers, prefix?, balance?}',
);

const tlsSchema = strict(
  {
    certificatePath: absolutePath(),
    keyPath: absolutePath(),
    hstsMaxAgeSeconds: integer(0, 2 ** 31 - 1).optional(),
  },
  '{certificatePath, keyPath, hstsMaxAgeSeconds?} or null for plain text',
);

const httpSchema = strict(
  {
    listenPort: port().optional(),
    serverName: text(SERVER_NAME, 'one server name such as example.com, *.example.com or _').optional(),
    tls: tlsSchema.nullable().optional(),
    redirectHttpPort: port().nullable().optional(),
    backends: z.array(backendSchema, allowed('a list of backends')).min(1, allowed('at least one backend')),
    allowedOrigins: z.array(originSchema, allowed('a list of origins such as https://app.example.com')).optional(),
  },
  'an http frontend {backends, listenPort?, serverName?, tls?, redirectHttpPort?, allowedOrigins?}',
);

const streamSchema = strict(
  {
    listeners: z
      .array(
        strict(
          { listenPort: port(), tls: tlsSchema.nullable().optional(), backend: backendSchema },
          'a stream listener {listenPort, backend, tls?}',
        ),
        allowed('a list of stream listeners'),
      )
      .min(1, allowed('at least one listener')),
  },
  'a stream frontend {listeners}',
);

const specSchema = strict(
  {
    http: httpSchema.optional(),
    stream: streamSchema.optional(),
    streamModule: z
      .discriminatedUnion(
        'kind',
        [
          strict({ kind: z.literal('static') }, '{kind: "static"}'),
          strict({ kind: z.literal('dynamic'), path: absolutePath().optional() }, '{kind: "dynamic", path?}'),
        ],
        allowed('{kind: "static"} or {kind: "dynamic", path?: absolute path of ngx_stream_module.so}'),
      )
      .optional(),
    maxConnections: integer(1, PROXY_DEFAULTS.maxConnectionsLimit).optional(),
    workerProcesses: z
      .union([z.literal('auto'), integer(1, 1024, WORKERS_WHAT)], allowed(WORKERS_WHAT))
      .optional(),
    timeouts: strict(
      {
        connectSeconds: integer(1, 600).optional(),
        idleSeconds: integer(1, 86_400).optional(),
        workerShutdownSeconds: integer(1, 86_400).optional(),
      },
      '{connectSeconds?, idleSeconds?, workerShutdownSeconds?}',
    ).optional(),
    statusPort: port().nullable().optional(),
    user: text(USER_NAME, 'a system user name').optional(),
    listenAddress: z.string(allowed('an IPv4 or IPv6 address')).refine((v) => isIP(v) !== 0, allowed('an IPv4 or IPv6 address')).optional(),
    reuseport: z.boolean(allowed('true or false')).optional(),
    paths: strict(
      {
        pidFile: absolutePath(),
        errorLog: absolutePath(),
        accessLog: absolutePath(),
        errorPageRoot: absolutePath(),
        tempDir: absolutePath().optional(),
        mimeTypes: absolutePath().optional(),
        streamAccessLog: absolutePath().optional(),
      },
      '{pidFile, errorLog, accessLog, errorPageRoot, tempDir?, mimeTypes?, streamAccessLog?}',
    ),
  },
  'an NginxSpec',
);

function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => {
    if (typeof key === 'number') return `${acc}[${key}]`;
    return acc === '' ? String(key) : `${acc}.${String(key)}`;
  }, '');
}

function show(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol' || typeof value === 'bigint') return String(value);
  const json = JSON.stringify(value);
  if (json === undefined) return String(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

function checkShape(spec: unknown): void {
  const result = specSchema.safeParse(spec, { reportInput: true });
  if (result.success) return;
  const issue = result.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    throw new NginxSpecError(fieldPath([...issue.path, issue.keys[0]]), issue.message);
  }
  const field = fieldPath(issue.path) || '(spec)';
  const input = (issue as { input?: unknown }).input;
  throw new NginxSpecError(field, input === undefined ? issue.message : `${show(input)} is not valid; ${issue.message}`);
}

// ---------------------------------------------------------------------------------------------
// Meaning: what the shape cannot express
// ---------------------------------------------------------------------------------------------

const STRATEGIES_WITHOUT_BACKUP: readonly BalanceStrategy[] = ['ip-hash', 'hash', 'random-two-least-conn'];
const STREAM_STRATEGIES = BALANCE_STRATEGIES.filter((s) => s !== 'ip-hash');
const DEFAULT_HASH_KEY = '$remote_addr';

/** Variables a hash key may use. http also takes any `$cookie_*`, `$http_*` and `$arg_*`. */
const HASH_KEY_VARIABLES: Record<'http' | 'stream', { names: readonly string[]; prefixes: readonly string[] }> = {
  http: {
    names: [
      'remote_addr', 'binary_remote_addr', 'remote_port', 'request_uri', 'uri', 'args',
      'host', 'server_name', 'server_addr', 'server_port', 'scheme',
    ],
    prefixes: ['cookie_', 'http_', 'arg_'],
  },
  stream: { names: ['remote_addr', 'binary_remote_addr', 'remote_port', 'server_addr', 'server_port'], prefixes: [] },
};

/** A hash key: nginx variables (`$name` or `${name}`) optionally joined by literal characters. */
function hashKeyProblem(key: string, mode: 'http' | 'stream'): string | null {
  const { names, prefixes } = HASH_KEY_VARIABLES[mode];
  const variables = names.map((n) => `$${n}`).join(', ');
  const joined = 'optionally joined by letters, digits and . _ : / -';
  const allowedText =
    mode === 'http'
      ? `variables ${variables}, $cookie_NAME (cookie affinity), $http_NAME, $arg_NAME, ${joined}`
      : `variables ${variables} (stream sessions have no cookies, headers or URIs), ${joined}`;
  const token = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)|[A-Za-z0-9_.:/-]+/y;
  let variableCount = 0;
  for (let at = 0; at < key.length; ) {
    token.lastIndex = at;
    const match = token.exec(key);
    if (!match) return `${show(key)} is not a valid hash key; allowed: ${allowedText}`;
    const variable = match[1] ?? match[2];
    if (variable !== undefined) {
      const known = names.includes(variable) || prefixes.some((p) => variable.startsWith(p) && variable.length > p.length);
      if (!known) return `${show(key)} uses $${variable}, which ${mode} mode cannot hash on; allowed: ${allowedText}`;
      variableCount += 1;
    }
    at = token.lastIndex;
  }
  if (variableCount === 0) return `${show(key)} is a constant, which sends every client to one node; allowed: ${allowedText}`;
  return null;
}

/** `host:port` as nginx `server` and `listen` take it (IPv6 in brackets). */
export function formatAddress(host: string, portNumber: number): string {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  return isIP(bare) === 6 ? `[${bare}]:${portNumber}` : `${bare}:${portNumber}`;
}

function resolveBalance(mount: BackendMount, base: string, mode: 'http' | 'stream'): ResolvedBalance {
  const strategy = mount.balance?.strategy ?? 'round-robin';
  if (mode === 'stream' && strategy === 'ip-hash') {
    throw new NginxSpecError(
      `${base}.balance.strategy`,
      `"ip-hash" is not available in stream mode (nginx has no ip_hash for TCP); use strategy "hash" with hashKey "$remote_addr" ` +
        `for the same client-address affinity; allowed in stream mode: ${STREAM_STRATEGIES.join(', ')}`,
    );
  }
  const hashKey = mount.balance?.hashKey;
  if (hashKey !== undefined && strategy !== 'hash') {
    throw new NginxSpecError(
      `${base}.balance.hashKey`,
      `is only used with strategy "hash", but strategy is "${strategy}"; remove hashKey or use strategy "hash"`,
    );
  }
  if (strategy !== 'hash') return { strategy };
  const key = hashKey ?? DEFAULT_HASH_KEY;
  const problem = hashKeyProblem(key, mode);
  if (problem) throw new NginxSpecError(`${base}.balance.hashKey`, problem);
  return { strategy, hashKey: key };
}

function resolveServers(mount: BackendMount, base: string, strategy: BalanceStrategy): ResolvedServer[] {
  const seen = new Map<string, number>();
  const servers = mount.servers.map((server, index): ResolvedServer => {
    const address = formatAddress(server.host, server.port ?? mount.profile.port);
    const earlier = seen.get(address);
    if (earlier !== undefined) {
      throw new NginxSpecError(
        `${base}.servers[${index}]`,
        `${address} is already listed as ${base}.servers[${earlier}]; list each node once (use weight to favour one)`,
      );
    }
    seen.set(address, index);
    const backup = server.backup ?? false;
    if (backup && STRATEGIES_WITHOUT_BACKUP.includes(strategy)) {
      throw new NginxSpecError(
        `${base}.servers[${index}].backup`,
        `nginx does not allow backup servers with strategy "${strategy}"; backup works with round-robin and least-conn`,
      );
    }
    return {
      address,
      backup,
      ...(server.weight !== undefined && { weight: server.weight }),
      ...(server.maxFails !== undefined && { maxFails: server.maxFails }),
      ...(server.failTimeoutSeconds !== undefined && { failTimeoutSeconds: server.failTimeoutSeconds }),
    };
  });
  if (servers.every((server) => server.backup)) {
    throw new NginxSpecError(`${base}.servers`, 'every server is a backup; at least one must be a primary (backup: false)');
  }
  return servers;
}

function upstream(
  name: string,
  purpose: UpstreamPurpose,
  mount: BackendMount,
  balance: ResolvedBalance,
  servers: ResolvedServer[],
): ResolvedUpstream {
  return {
    name,
    purpose,
    profile: mount.profile,
    balance,
    servers,
    nextUpstreamTries: Math.min(servers.length, NGINX_DEFAULTS.maxNextUpstreamTries),
  };
}

function resolveHttp(http: NonNullable<NginxSpec['http']>): ResolvedHttp {
  const tls = http.tls ?? null;
  if (!tls && http.redirectHttpPort != null) {
    throw new NginxSpecError(
      'http.redirectHttpPort',
      `${http.redirectHttpPort} redirects to https, which needs http.tls; set http.tls or set redirectHttpPort to null`,
    );
  }
  const allowedOrigins = [...new Set(http.allowedOrigins ?? [])];
  const upstreams: ResolvedUpstream[] = [];
  const locations: ResolvedLocation[] = [];
  const claimedBy = new Map<string, string>([[`/${ERROR_PAGE_FILE}`, 'the custom error page']]);
  const backendByName = new Map<string, number>();

  http.backends.forEach((mount, backendIndex) => {
    const base = `http.backends[${backendIndex}]`;
    const name = mount.profile.name;
    const earlier = backendByName.get(name);
    if (earlier !== undefined) {
      throw new NginxSpecError(
        `${base}.profile.name`,
        `"${name}" is already mounted as http.backends[${earlier}]; upstream names derive from the profile name, ` +
          'so each backend needs its own',
      );
    }
    backendByName.set(name, backendIndex);
    const balance = resolveBalance(mount, base, 'http');
    const servers = resolveServers(mount, base, balance.strategy);
    const kinds = new Set(mount.profile.routes.map((route) => route.kind));
    const upstreamNames: Record<RouteKind, string> = { websocket: `${name}_ws`, http: `${name}_http` };
    if (kinds.has('websocket')) upstreams.push(upstream(upstreamNames.websocket, 'websocket', mount, balance, servers));
    if (kinds.has('http')) upstreams.push(upstream(upstreamNames.http, 'http', mount, balance, servers));

    mount.profile.routes.forEach((route, routeIndex) => {
      const field = `${base}.profile.routes[${routeIndex}].path`;
      const path = mount.prefix ? `${mount.prefix}${route.path}` : route.path;
      const owner = claimedBy.get(path);
      if (owner !== undefined) {
        throw new NginxSpecError(
          field,
          `${show(route.path)} mounts at ${path}, which ${owner} already routes; two routes cannot share a path ` +
            `(mount one backend under a prefix, e.g. ${base}.prefix "/${name}")`,
        );
      }
      claimedBy.set(path, `${base} (${name})`);
      locations.push({
        path,
        exact: route.exact ?? false,
        kind: route.kind,
        upstream: upstreamNames[route.kind],
        proxyPassUri: mount.prefix ? route.path : null,
        backendName: name,
        checksOrigin: route.kind === 'websocket' && allowedOrigins.length > 0 && proxyEnforcesOrigins(mount.profile),
      });
    });
  });

  locations.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return {
    listenPort: http.listenPort ?? (tls ? NGINX_DEFAULTS.tlsListenPort : NGINX_DEFAULTS.plainListenPort),
    serverName: http.serverName ?? NGINX_DEFAULTS.serverName,
    tls,
    redirectHttpPort: tls ? (http.redirectHttpPort === undefined ? NGINX_DEFAULTS.redirectHttpPort : http.redirectHttpPort) : null,
    upstreams,
    locations,
    rootClaimed: locations.some((location) => location.path === '/' && !location.exact),
    allowedOrigins,
  };
}

function resolveStream(stream: NonNullable<NginxSpec['stream']>): ResolvedStreamListener[] {
  return stream.listeners.map((listener, index) => {
    const base = `stream.listeners[${index}]`;
    if (listener.tls?.hstsMaxAgeSeconds !== undefined) {
      throw new NginxSpecError(
        `${base}.tls.hstsMaxAgeSeconds`,
        'HSTS is an HTTP response header; a stream (TCP) listener cannot send it; remove it',
      );
    }
    if (listener.backend.prefix !== undefined) {
      throw new NginxSpecError(
        `${base}.backend.prefix`,
        `${show(listener.backend.prefix)}: a stream listener passes bytes and cannot strip a URL prefix; remove prefix`,
      );
    }
    const mount = listener.backend;
    const balance = resolveBalance(mount, `${base}.backend`, 'stream');
    const servers = resolveServers(mount, `${base}.backend`, balance.strategy);
    return {
      listenPort: listener.listenPort,
      tls: listener.tls ?? null,
      upstream: upstream(`${mount.profile.name}_stream_${listener.listenPort}`, 'stream', mount, balance, servers),
    };
  });
}

function checkDistinctPorts(http: ResolvedHttp | null, stream: readonly ResolvedStreamListener[] | null, statusPort: number | null): void {
  const listeners: Array<{ field: string; port: number | null }> = [
    { field: 'http.listenPort', port: http?.listenPort ?? null },
    { field: 'http.redirectHttpPort', port: http?.redirectHttpPort ?? null },
    ...(stream ?? []).map((listener, index) => ({ field: `stream.listeners[${index}].listenPort`, port: listener.listenPort })),
    { field: 'statusPort', port: statusPort },
  ];
  const owner = new Map<number, string>();
  for (const { field, port: listenPort } of listeners) {
    if (listenPort === null) continue;
    const earlier = owner.get(listenPort);
    if (earlier !== undefined) {
      throw new NginxSpecError(field, `port ${listenPort} is already used by ${earlier}; every listener needs its own port`);
    }
    owner.set(listenPort, field);
  }
}

function checkIdleTimeout(spec: NginxSpec, idleSeconds: number): void {
  const profiles = mountedProfiles(spec);
  const slowest = profiles.reduce<ServerProfile | null>(
    (max, p) => (max && max.pingIntervalSeconds >= p.pingIntervalSeconds ? max : p),
    null,
  );
  if (slowest && idleSeconds <= slowest.pingIntervalSeconds) {
    throw new NginxSpecError(
      'timeouts.idleSeconds',
      `${idleSeconds} s would cut idle connections between two pings of ${slowest.displayName} (every ${slowest.pingIntervalSeconds} s); ` +
        `allowed: more than ${slowest.pingIntervalSeconds} s (default ${defaultIdleTimeoutSeconds(profiles)} s)`,
    );
  }
}

/** Validates `spec` and resolves it into the model the renderer prints. Throws `NginxSpecError`. */
export function resolveNginxSpec(spec: NginxSpec): ResolvedNginx {
  checkShape(spec);
  if (!spec.http && !spec.stream) {
    throw new NginxSpecError('http', 'neither http (L7) nor stream (L4) is set; allowed: http, stream or both');
  }
  const idleSeconds = resolveIdleTimeoutSeconds(spec);
  checkIdleTimeout(spec, idleSeconds);
  const http = spec.http ? resolveHttp(spec.http) : null;
  const stream = spec.stream ? resolveStream(spec.stream) : null;
  const statusPort = spec.statusPort === undefined ? NGINX_DEFAULTS.statusPort : spec.statusPort;
  checkDistinctPorts(http, stream, statusPort);
  const streamModule = spec.streamModule ?? NGINX_DEFAULTS.streamModule;
  return {
    http,
    stream,
    streamModulePath: stream && streamModule.kind === 'dynamic' ? (streamModule.path ?? NGINX_DEFAULTS.streamModulePath) : null,
    capacity: nginxCapacity(spec),
    workerProcesses: spec.workerProcesses ?? NGINX_DEFAULTS.workerProcesses,
    idleSeconds,
    connectSeconds: spec.timeouts?.connectSeconds ?? NGINX_DEFAULTS.connectSeconds,
    workerShutdownSeconds: spec.timeouts?.workerShutdownSeconds ?? NGINX_DEFAULTS.workerShutdownSeconds,
    statusPort,
    user: spec.user ?? null,
    listenAddress: spec.listenAddress ?? null,
    reuseport: spec.reuseport ?? NGINX_DEFAULTS.reuseport,
    paths: spec.paths,
  };
}

/** Throws `NginxSpecError` when `spec` is invalid (what `renderNginxConf` would throw). */
export function validateNginxSpec(spec: NginxSpec): void {
  resolveNginxSpec(spec);
}

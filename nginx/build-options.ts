/**
 * Inputs of the nginx build, systemd, sysctl, logrotate and apply-config renderers: the defaults
 * (each decided once, here) and their validation.
 */
import { z } from 'zod';
import { NGINX_STABLE_VERSION, PROXY_DEFAULTS } from '../config/proxy-defaults';

// The default release is also the stack's nginxVersion default, so it is decided in the base layer.
export { NGINX_STABLE_VERSION };

export const NGINX_DOWNLOAD_BASE_URL = 'https://nginx.org/download';

/** A public key that signs nginx releases. `url` only supplies key material; trust comes from
 * `fingerprint` alone (the signature's primary-key fingerprint must be one of the pinned ones). */
export interface NginxSigningKey {
  readonly owner: string;
  readonly url: string;
  /** Full 40-hex-digit primary-key fingerprint, as published on nginx.org/en/pgp_keys.html. */
  readonly fingerprint: string;
}

/** The release managers' keys listed on https://nginx.org/en/pgp_keys.html. Releases of the 1.30
 * branch are signed by Roman Arutyunyan (e.g. 1.30.4) and Sergey Kandaurov (e.g. 1.30.5). */
export const NGINX_RELEASE_SIGNING_KEYS: readonly NginxSigningKey[] = [
  { owner: 'Roman Arutyunyan', url: 'https://nginx.org/keys/arut.key', fingerprint: '43387825DDB1BB97EC36BA5D007C8D7C15D87369' },
  { owner: 'Sergey Kandaurov', url: 'https://nginx.org/keys/pluknet.key', fingerprint: 'D6786CE303D9A9022998DC6CC8464D549AF75C0A' },
  { owner: 'Sergey Budnevitch', url: 'https://nginx.org/keys/sb.key', fingerprint: '7338973069ED3F443F4D37DFA64FD5B17ADB39A8' },
  { owner: 'Konstantin Pavlov', url: 'https://nginx.org/keys/thresh.key', fingerprint: '13C82A63B603576156E30A4EA0EA981B66B0D967' },
];

/** Modules realtime-edge relies on: L4 proxying with TLS termination and SNI peeking, L7 TLS and
 * HTTP/2, the loopback status page, and real client addresses behind another balancer. */
export const NGINX_REQUIRED_MODULE_FLAGS: readonly string[] = [
  '--with-stream',
  '--with-stream_ssl_module',
  '--with-stream_ssl_preread_module',
  '--with-http_ssl_module',
  '--with-http_v2_module',
  '--with-http_stub_status_module',
  '--with-http_realip_module',
];

/** Compiler hardening (stack protector, fortified libc calls, read-only relocations), on top of
 * nginx's own `-O`. `-U_FORTIFY_SOURCE` first: Ubuntu's gcc predefines it, and nginx builds with
 * -Werror. */
export const NGINX_HARDENING_FLAGS: readonly string[] = [
  '--with-cc-opt=-fstack-protector-strong -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2',
  '--with-ld-opt=-Wl,-z,relro -Wl,-z,now',
];

/** Default http modules a WebSocket/TCP proxy never uses (SSI, directory listings, gRPC and
 * memcached gateways, ...). Left out by default: less code exposed to clients (a 2026 advisory was
 * in SSI) and a shorter build. Everything the rendered configs use stays: proxy, upstream
 * balancers, map, rewrite, access, limit_*, gzip, realip, and fastcgi/uwsgi/scgi, whose
 * `*_temp_path` directives renderNginxConf sets when it relocates temp files. */
export const NGINX_UNUSED_MODULE_FLAGS: readonly string[] = [
  '--without-http_ssi_module',
  '--without-http_userid_module',
  '--without-http_autoindex_module',
  '--without-http_grpc_module',
  '--without-http_memcached_module',
  '--without-http_empty_gif_module',
  '--without-http_browser_module',
  '--without-http_split_clients_module',
];

/** Where the build puts things. */
export interface NginxInstallPaths {
  /** `--prefix`: nginx's own tree (the sample `html/`, `sbin/` by default). */
  readonly prefix: string;
  readonly sbinPath: string;
  readonly confPath: string;
  readonly pidPath: string;
  readonly errorLogPath: string;
  readonly accessLogPath: string;
  /** Parent of the client-body, proxy, fastcgi, uwsgi and scgi temp directories. */
  readonly tempDir: string;
}

/** Default layout on a host: the binary in nginx's conventional `/usr/local/nginx` prefix (apart
 * from distribution packages, so a distro nginx can never shadow or overwrite it), everything the
 * operator touches at FHS paths: config in /etc/nginx, pid in /run, logs in /var/log/nginx, temp
 * files in /var/cache/nginx. */
export const NGINX_DEFAULT_PREFIX = '/usr/local/nginx';

export function resolveNginxInstallPaths(paths: Partial<NginxInstallPaths> = {}): NginxInstallPaths {
  const prefix = paths.prefix ?? NGINX_DEFAULT_PREFIX;
  return {
    prefix,
    sbinPath: paths.sbinPath ?? `${prefix}/sbin/nginx`,
    confPath: paths.confPath ?? '/etc/nginx/nginx.conf',
    pidPath: paths.pidPath ?? '/run/nginx.pid',
    errorLogPath: paths.errorLogPath ?? '/var/log/nginx/error.log',
    accessLogPath: paths.accessLogPath ?? '/var/log/nginx/access.log',
    tempDir: paths.tempDir ?? '/var/cache/nginx',
  };
}

/** Everything inside one directory, in nginx's own layout (`conf/`, `logs/`, `sbin/`): for
 * unprivileged builds (tests, the local topology) that must not touch /etc, /run or /var. */
export function nginxPathsUnderPrefix(prefix: string): NginxInstallPaths {
  return {
    prefix,
    sbinPath: `${prefix}/sbin/nginx`,
    confPath: `${prefix}/conf/nginx.conf`,
    pidPath: `${prefix}/logs/nginx.pid`,
    errorLogPath: `${prefix}/logs/error.log`,
    accessLogPath: `${prefix}/logs/access.log`,
    tempDir: `${prefix}/temp`,
  };
}

/** Host steps that need root; tests switch them off. */
export interface NginxBuildSteps {
  /** Compiler and libraries via dnf (Amazon Linux 2023) or apt (Debian/Ubuntu). */
  readonly installDependencies: boolean;
  /** The unprivileged system user the workers run as. */
  readonly createUser: boolean;
  /** Install and enable the systemd unit (and start it unless `startService` is false). */
  readonly systemd: boolean;
  readonly sysctl: boolean;
  readonly logrotate: boolean;
}

export const NGINX_BUILD_STEPS_ALL_ON: NginxBuildSteps = {
  installDependencies: true,
  createUser: true,
  systemd: true,
  sysctl: true,
  logrotate: true,
};

export interface NginxSysctlSettings {
  /** `net.core.somaxconn`: accept-queue cap, sized for reconnect storms after a deploy. */
  readonly somaxconn: number;
  /** `net.ipv4.tcp_max_syn_backlog`. */
  readonly tcpMaxSynBacklog: number;
  /** `net.ipv4.ip_local_port_range`: source ports for upstream connections. Every proxied
   * WebSocket holds one per upstream node, so this range bounds sockets per backend node. */
  readonly localPortRange: readonly [number, number];
  /** `fs.file-max`; never lowered below the kernel's current value. */
  readonly fileMax: number;
}

/** Starts above the ports realtime-edge listens on (stub_status 8081, deepstream 6020,
 * Centrifugo 8000), so an outbound connection can never hold a port a listener needs. */
const DEFAULT_LOCAL_PORT_RANGE: readonly [number, number] = [10240, 65535];

export function resolveNginxSysctlSettings(
  limitNofile: number,
  overrides: Partial<NginxSysctlSettings> = {},
): NginxSysctlSettings {
  return {
    somaxconn: overrides.somaxconn ?? PROXY_DEFAULTS.listenBacklog,
    tcpMaxSynBacklog: overrides.tcpMaxSynBacklog ?? PROXY_DEFAULTS.listenBacklog,
    localPortRange: overrides.localPortRange ?? DEFAULT_LOCAL_PORT_RANGE,
    // Several workers each up to limitNofile, plus everything else on the host.
    fileMax: overrides.fileMax ?? Math.max(2_097_152, limitNofile * 4),
  };
}

export interface NginxBuildOptions {
  /** systemd `LimitNOFILE`; must equal the config's `worker_rlimit_nofile`. */
  readonly limitNofile: number;
  /** Default NGINX_STABLE_VERSION. */
  readonly version?: string;
  /** Directory holding `nginx-<version>.tar.gz` and its `.asc`. Default NGINX_DOWNLOAD_BASE_URL. */
  readonly downloadBaseUrl?: string;
  /** Expected sha256 of the tarball; checked in addition to the signature when given. */
  readonly sha256?: string;
  /** Where the script fetches public keys. Default: the URLs of NGINX_RELEASE_SIGNING_KEYS. */
  readonly pgpKeyUrls?: readonly string[];
  /** The only primary-key fingerprints whose signatures are accepted.
   * Default: the fingerprints of NGINX_RELEASE_SIGNING_KEYS. */
  readonly pgpFingerprints?: readonly string[];
  /** Appended to the required module and hardening flags, e.g. `--with-threads`. */
  readonly extraConfigureFlags?: readonly string[];
  /** Build nginx's default http modules that realtime-edge does not use
   * (NGINX_UNUSED_MODULE_FLAGS). Default false. */
  readonly keepUnusedModules?: boolean;
  readonly paths?: Partial<NginxInstallPaths>;
  /** Worker user and group, compiled in as nginx's default `user`. Default `nginx`. */
  readonly user?: string;
  readonly group?: string;
  /** Downloads, sources and the compiler output log. Default /var/tmp/realtime-edge-nginx-build. */
  readonly workDir?: string;
  /** The script's step log is appended here as well as to stderr.
   * Default /var/log/realtime-edge-nginx-build.log. */
  readonly logFile?: string;
  /** Default: all on. */
  readonly steps?: Partial<NginxBuildSteps>;
  /** With the systemd step: start nginx when it is not running. Default true. */
  readonly startService?: boolean;
  readonly sysctl?: Partial<NginxSysctlSettings>;
  /** systemd `TimeoutStopSec` for the graceful (QUIT) stop. Default 60; keep it above the config's
   * `worker_shutdown_timeout`. */
  readonly stopTimeoutSeconds?: number;
  /** Days of rotated logs kept. Default 14. */
  readonly logRetentionDays?: number;
  /** Root under which the system files (/etc/systemd/system, /etc/sysctl.d, /etc/logrotate.d) are
   * written. `/` on a host; a scratch directory in tests. */
  readonly systemRoot?: string;
  /** Read to pick dnf or apt. Default /etc/os-release. */
  readonly osReleasePath?: string;
}

export interface ResolvedNginxBuildOptions {
  readonly limitNofile: number;
  readonly version: string;
  readonly downloadBaseUrl: string;
  readonly sha256: string | undefined;
  readonly pgpKeyUrls: readonly string[];
  readonly pgpFingerprints: readonly string[];
  readonly extraConfigureFlags: readonly string[];
  readonly keepUnusedModules: boolean;
  readonly paths: NginxInstallPaths;
  readonly user: string;
  readonly group: string;
  readonly workDir: string;
  readonly logFile: string;
  readonly steps: NginxBuildSteps;
  readonly startService: boolean;
  readonly sysctl: NginxSysctlSettings;
  readonly stopTimeoutSeconds: number;
  readonly logRetentionDays: number;
  readonly systemRoot: string;
  readonly osReleasePath: string;
}

export const NGINX_SERVICE_NAME = 'nginx.service';
export const NGINX_DEFAULT_STOP_TIMEOUT_SECONDS = 60;
export const NGINX_DEFAULT_LOG_RETENTION_DAYS = 14;

// Configure flags the script sets from `paths`/`user`; passing them again would contradict it.
const MANAGED_CONFIGURE_FLAGS = [
  '--prefix',
  '--sbin-path',
  '--conf-path',
  '--pid-path',
  '--error-log-path',
  '--http-log-path',
  '--http-client-body-temp-path',
  '--http-proxy-temp-path',
  '--http-fastcgi-temp-path',
  '--http-uwsgi-temp-path',
  '--http-scgi-temp-path',
  '--user',
  '--group',
];

// ---------------------------------------------------------------------------------------------
// Validation

// No spaces, quotes or `%`: these paths also land in systemd units and logrotate files, whose
// own quoting rules differ from bash's.
const absolutePath = z
  .string()
  .regex(/^\/[A-Za-z0-9._/+-]*$/, 'expected an absolute path made of letters, digits and . _ / + - (no spaces)');
const httpUrl = z
  .string()
  .regex(/^https?:\/\/[^\s'"`\\]+$/, 'expected an http:// or https:// URL without spaces or quotes');
const systemName = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'expected a system user/group name: lowercase letters, digits, _ and -, at most 32');
const boundedInt = (min: number, max: number) =>
  z.number().int(`expected an integer from ${min} to ${max}`).min(min, `expected an integer from ${min} to ${max}`).max(max, `expected an integer from ${min} to ${max}`);

// fs.nr_open's ceiling in the kernel, and so the largest LimitNOFILE systemd can apply.
const MAX_NOFILE = 1_073_741_816;

const pathsSchema = z.strictObject({
  prefix: absolutePath.optional(),
  sbinPath: absolutePath.optional(),
  confPath: absolutePath.optional(),
  pidPath: absolutePath.optional(),
  errorLogPath: absolutePath.optional(),
  accessLogPath: absolutePath.optional(),
  tempDir: absolutePath.optional(),
});

const fieldSchemas = {
  limitNofile: boundedInt(1024, MAX_NOFILE),
  version: z.string().regex(/^\d+\.\d+\.\d+$/, 'expected an nginx release number like 1.30.6'),
  downloadBaseUrl: httpUrl,
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hexadecimal digits'),
  pgpKeyUrls: z.array(httpUrl).min(1, 'expected at least one key URL'),
  pgpFingerprints: z
    .array(
      z
        .string()
        .refine(
          (value) => /^[0-9A-Fa-f]{40}$/.test(value.replace(/\s+/g, '')),
          'expected a full 40-hex-digit OpenPGP fingerprint (spaces allowed), not a short key id',
        ),
    )
    .min(1, 'expected at least one pinned fingerprint'),
  extraConfigureFlags: z.array(
    z
      .string()
      .regex(/^--[a-z0-9][a-z0-9_-]*(=[^\0\n]*)?$/, 'expected a ./configure flag like --with-threads or --add-module=/path')
      .refine(
        (flag) => !MANAGED_CONFIGURE_FLAGS.includes(flag.split('=')[0]),
        `set by the script from \`paths\`/\`user\`/\`group\`; not allowed here: ${MANAGED_CONFIGURE_FLAGS.join(', ')}`,
      ),
  ),
  keepUnusedModules: z.boolean(),
  paths: pathsSchema,
  user: systemName,
  group: systemName,
  workDir: absolutePath,
  logFile: absolutePath,
  steps: z.strictObject({
    installDependencies: z.boolean().optional(),
    createUser: z.boolean().optional(),
    systemd: z.boolean().optional(),
    sysctl: z.boolean().optional(),
    logrotate: z.boolean().optional(),
  }),
  startService: z.boolean(),
  sysctl: z.strictObject({
    somaxconn: boundedInt(128, 2_147_483_647).optional(),
    tcpMaxSynBacklog: boundedInt(128, 2_147_483_647).optional(),
    localPortRange: z
      .tuple([boundedInt(1024, 65535), boundedInt(1024, 65535)])
      .refine(([low, high]) => low < high, 'expected [low, high] with low < high')
      .optional(),
    fileMax: boundedInt(65536, Number.MAX_SAFE_INTEGER).optional(),
  }),
  stopTimeoutSeconds: boundedInt(1, 3600),
  logRetentionDays: boundedInt(1, 3650),
  systemRoot: absolutePath,
  osReleasePath: absolutePath,
  confPath: absolutePath,
  nginxBinary: absolutePath,
  pidFile: absolutePath,
  reloadCommand: z
    .array(z.string().min(1, 'expected a non-empty word').refine((word) => !word.includes('\0'), 'must not contain NUL'))
    .min(1, 'expected a command as an argument list, e.g. ["systemctl", "reload", "nginx.service"]'),
} as const;

type FieldName = keyof typeof fieldSchemas;

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  return JSON.stringify(value) ?? String(value);
}

/**
 * Validates `input` against the named fields (required ones must be present; unknown keys are
 * refused so a typo cannot silently fall back to a default). Throws one Error listing every
 * problem with the field, the bad value and what is allowed.
 */
export function validateOptions<T>(
  what: string,
  input: unknown,
  required: readonly FieldName[],
  optional: readonly FieldName[],
): T {
  const shape: Record<string, z.ZodType> = {};
  for (const name of required) shape[name] = fieldSchemas[name];
  for (const name of optional) shape[name] = fieldSchemas[name].optional();
  const result = z.strictObject(shape).safeParse(input);
  if (result.success) return input as T;
  const problems = result.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.length > 0 ? `${issue.path.join('.')}.` : '';
      const allowed = issue.path.length > 0 ? '' : ` (allowed: ${[...required, ...optional].join(', ')})`;
      return `unknown option ${issue.keys.map((key) => `\`${where}${key}\``).join(', ')}${allowed}`;
    }
    const field = issue.path.join('.') || '(options)';
    return `\`${field}\` = ${describe(valueAt(input, issue.path))}: ${issue.message}`;
  });
  throw new Error(`Invalid ${what} options:\n  - ${problems.join('\n  - ')}`);
}

export function normalizeFingerprint(fingerprint: string): string {
  return fingerprint.replace(/\s+/g, '').toUpperCase();
}

export function resolveNginxBuildOptions(options: NginxBuildOptions): ResolvedNginxBuildOptions {
  validateOptions<NginxBuildOptions>('nginx build', options, ['limitNofile'], [
    'version',
    'downloadBaseUrl',
    'sha256',
    'pgpKeyUrls',
    'pgpFingerprints',
    'extraConfigureFlags',
    'keepUnusedModules',
    'paths',
    'user',
    'group',
    'workDir',
    'logFile',
    'steps',
    'startService',
    'sysctl',
    'stopTimeoutSeconds',
    'logRetentionDays',
    'systemRoot',
    'osReleasePath',
  ]);
  return {
    limitNofile: options.limitNofile,
    version: options.version ?? NGINX_STABLE_VERSION,
    downloadBaseUrl: (options.downloadBaseUrl ?? NGINX_DOWNLOAD_BASE_URL).replace(/\/+$/, ''),
    sha256: options.sha256?.toLowerCase(),
    pgpKeyUrls: options.pgpKeyUrls ?? NGINX_RELEASE_SIGNING_KEYS.map((key) => key.url),
    pgpFingerprints: (options.pgpFingerprints ?? NGINX_RELEASE_SIGNING_KEYS.map((key) => key.fingerprint)).map(
      normalizeFingerprint,
    ),
    extraConfigureFlags: options.extraConfigureFlags ?? [],
    keepUnusedModules: options.keepUnusedModules ?? false,
    paths: resolveNginxInstallPaths(options.paths),
    user: options.user ?? 'nginx',
    group: options.group ?? options.user ?? 'nginx',
    workDir: options.workDir ?? '/var/tmp/realtime-edge-nginx-build',
    logFile: options.logFile ?? '/var/log/realtime-edge-nginx-build.log',
    steps: { ...NGINX_BUILD_STEPS_ALL_ON, ...options.steps },
    startService: options.startService ?? true,
    sysctl: resolveNginxSysctlSettings(options.limitNofile, options.sysctl),
    stopTimeoutSeconds: options.stopTimeoutSeconds ?? NGINX_DEFAULT_STOP_TIMEOUT_SECONDS,
    logRetentionDays: options.logRetentionDays ?? NGINX_DEFAULT_LOG_RETENTION_DAYS,
    systemRoot: options.systemRoot ?? '/',
    osReleasePath: options.osReleasePath ?? '/etc/os-release',
  };
}

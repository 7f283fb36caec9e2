/**
 * deepstream.io v7 as realtime-edge deploys it: its proxy profile, its `config.yml`,
 * `permissions.yml` and launcher script, and the user data that installs a pinned server from npm
 * and runs it.
 */
import { Document, isMap, Scalar } from 'yaml';
import { z } from 'zod';
import {
  type BootstrapStep,
  renderBootstrapScript,
  renderPackageInstall,
  renderSsmSecretsEnvFileStep,
  SECRETS_DIR,
} from './bootstrap';
import type { NodeRenderInput, RedisEndpoint, RenderedFile, ServerBackend, ServerProfile } from './profile';
import { shellQuote } from './shell';
import { localHealthUrl, openFileLimit, renderStartServiceStep, renderSystemdService, renderSystemUser } from './systemd';
import {
  awsRegionSchema,
  maxConnectionsSchema,
  nodeConfigBaseSchema,
  originSchema,
  parseOrThrow,
  ssmParameterNameSchema,
  versionSchema,
} from './validate';

/** Paths deepstream serves on its single port; the profile and the config both read them here. */
const CLIENT_PATH = '/deepstream';
const API_PATH = '/api';
const HEALTH_PATH = '/health-check';
/** connectionEndpoints[].options.heartbeatInterval's own default (30000 ms). */
const HEARTBEAT_SECONDS = 30;

/** deepstream.io v7: one port serves the WebSocket endpoint, the HTTP API and the health check. */
export const deepstreamProfile: ServerProfile = {
  name: 'deepstream',
  displayName: 'deepstream.io',
  port: 6020,
  routes: [
    { path: CLIENT_PATH, kind: 'websocket' },
    { path: API_PATH, kind: 'http' },
    { path: HEALTH_PATH, kind: 'http', exact: true },
  ],
  healthPath: HEALTH_PATH,
  clientPath: CLIENT_PATH,
  // connectionEndpoints[].options.heartbeatInterval defaults to 30000 ms.
  pingIntervalSeconds: HEARTBEAT_SECONDS,
  // deepstream 7 checks Origin on plain HTTP requests only: proxies enforce it on the WebSocket.
  checksOriginOnUpgrade: false,
};

/** Pinned npm versions: the server and the two Redis plugins known to work with it (cluster
 * messaging and record cache). */
export const DEEPSTREAM_DEFAULT_VERSION = '7.0.2';
export const DEEPSTREAM_CLUSTERNODE_REDIS_VERSION = '1.0.1';
export const DEEPSTREAM_CACHE_REDIS_VERSION = '2.0.9';
/** deepstream 7's package.json `engines.node`. */
const MIN_NODE_MAJOR = 18;

export const DEEPSTREAM_CONFIG_DIR = '/etc/deepstream';
export const DEEPSTREAM_INSTALL_DIR = '/opt/deepstream';
/** Manifest kind of the launcher script among the rendered config files. */
export const DEEPSTREAM_LAUNCHER_KIND = 'deepstream-launcher';
const CONFIG_PATH = `${DEEPSTREAM_CONFIG_DIR}/config.yml`;
const LAUNCHER_PATH = `${DEEPSTREAM_CONFIG_DIR}/deepstream-launcher.js`;
/** The installed `@deepstream/server` package the launcher runs. */
const SERVER_PACKAGE_DIR = `${DEEPSTREAM_INSTALL_DIR}/node_modules/@deepstream/server`;
const SERVICE_USER = 'deepstream';
const UNIT = 'deepstream.service';
const ENV_FILE = `${SECRETS_DIR}/deepstream.env`;

/** Environment variable holding the Redis AUTH token at runtime. deepstream replaces `${NAME}` in
 * the config text before parsing the YAML, and the config puts it between single quotes, so the
 * value must have each `'` doubled: use `deepstreamRedisPasswordEnv` (boot does the same). */
export const DEEPSTREAM_REDIS_PASSWORD_ENV = 'DEEPSTREAM_REDIS_PASSWORD';

/** The environment a deepstream node needs for a Redis AUTH token (for local runs and tests;
 * on EC2 the boot script writes the same from SSM). */
export function deepstreamRedisPasswordEnv(token: string): Record<string, string> {
  return { [DEEPSTREAM_REDIS_PASSWORD_ENV]: token.replace(/'/g, "''") };
}

/** One entry of deepstream's `auth` list. Default: `[{ type: 'none' }]` (anyone may log in;
 * put an `http` webhook or `file` users here to restrict). */
export interface DeepstreamAuthStrategy {
  readonly type: 'none' | 'file' | 'http' | 'storage';
  readonly options?: Readonly<Record<string, unknown>>;
}

/** deepstream's valve permissions (`permissions.yml`): section -> pattern -> action -> rule. */
export type DeepstreamPermissions = Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, boolean | string>>>>>>;

/** Everything open, as deepstream's own sample: any logged-in client may use every feature.
 * Restrict it by passing `permissions` (same shape); rules are deepstream valve expressions. */
export const OPEN_PERMISSIONS: DeepstreamPermissions = {
  presence: { '*': { allow: true } },
  record: { '*': { create: true, write: true, read: true, delete: true, listen: true, notify: true } },
  event: { '*': { publish: true, subscribe: true, listen: true } },
  rpc: { '*': { provide: true, request: true } },
};

export type DeepstreamLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'OFF';

/** Choices that are deepstream's own (not part of the shared node input). */
export interface DeepstreamOptions {
  readonly auth?: readonly DeepstreamAuthStrategy[];
  readonly permissions?: DeepstreamPermissions;
  readonly logLevel?: DeepstreamLogLevel;
}

/** What `config.yml` is rendered from; a `NodeRenderInput` fits. */
export interface DeepstreamConfigSpec extends DeepstreamOptions {
  readonly nodeName: string;
  readonly listenHost?: string;
  readonly listenPort?: number;
  readonly redis: RedisEndpoint;
  /** See `renderDeepstreamConfig` for how deepstream treats origins. */
  readonly allowedOrigins?: readonly string[];
}

const optionsSchema = z.object({
  auth: z
    .array(
      z.object({
        type: z.enum(['none', 'file', 'http', 'storage']),
        options: z.record(z.string(), z.unknown()).optional(),
      }),
    )
    .min(1, 'expected at least one auth strategy')
    .optional(),
  permissions: z.record(z.string(), z.record(z.string(), z.record(z.string(), z.union([z.boolean(), z.string()])))).optional(),
  logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR', 'OFF']).optional(),
});

const configSpecSchema = optionsSchema.extend(nodeConfigBaseSchema.shape).extend({
  allowedOrigins: z.array(originSchema).optional(),
});

const nodeInputSchema = configSpecSchema.extend({
  version: versionSchema,
  region: awsRegionSchema.optional(),
  maxConnections: maxConnectionsSchema.optional(),
  secretParameters: z.record(z.string(), ssmParameterNameSchema).optional(),
});

/** Renders deepstream's `config.yml` for one node.
 *
 * - `serverName` is the node name: cluster messages name their sender, so it must be unique.
 * - The WebSocket (`ws-binary`) and HTTP endpoints and the health check share the node's port,
 *   served by deepstream's `ws`-based `default` HTTP server (uWebSockets.js is not installed).
 * - `clusterNode` and `cache` both go to Redis through ioredis, which receives `options` as they
 *   are: `tls: {}` turns on TLS with the system trust store (ElastiCache in-transit encryption),
 *   and `password` is the AUTH token, read from `DEEPSTREAM_REDIS_PASSWORD` at start so it never
 *   sits in the file.
 * - Origins: deepstream 7 checks `Origin` only on plain HTTP requests, never on WebSocket
 *   upgrades, and the check also answers 403 to health checks (the ALB and nginx send no Origin).
 *   So CORS stays open here and `allowedOrigins` is recorded as a comment; the frontends enforce
 *   it on the WebSocket route (the profile's `checksOriginOnUpgrade: false`).
 */
export function renderDeepstreamConfig(spec: DeepstreamConfigSpec): string {
  parseOrThrow(configSpecSchema, spec, `deepstream config (node ${JSON.stringify(spec.nodeName)})`);
  const redisOptions: Record<string, unknown> = { host: spec.redis.host, port: spec.redis.port };
  if (spec.redis.tls) redisOptions.tls = {};
  if (spec.redis.authTokenParameter) {
    const placeholder = new Scalar(`\${${DEEPSTREAM_REDIS_PASSWORD_ENV}}`);
    placeholder.type = Scalar.QUOTE_SINGLE;
    redisOptions.password = placeholder;
  }
  const config = {
    serverName: spec.nodeName,
    showLogo: false,
    logLevel: spec.logLevel ?? 'INFO',
    // The Redis plugins report every lost connection as fatal. With false, deepstream only emits
    // FATAL_EXCEPTION, and the rendered launcher (not `deepstream start`, which exits on it
    // whatever this says) keeps the node up while ioredis reconnects.
    exitOnFatalError: false,
    telemetry: { type: 'deepstreamIO', options: { enabled: false } },
    httpServer: {
      type: 'default',
      options: {
        host: spec.listenHost ?? '0.0.0.0',
        port: spec.listenPort ?? deepstreamProfile.port,
        healthCheckPath: HEALTH_PATH,
        allowAllOrigins: true,
      },
    },
    connectionEndpoints: [
      { type: 'ws-binary', options: { urlPath: CLIENT_PATH, heartbeatInterval: deepstreamProfile.pingIntervalSeconds * 1000 } },
      { type: 'http', options: { allowAuthData: true, postPath: API_PATH, getPath: API_PATH } },
    ],
    logger: { type: 'default', options: { colors: false } },
    // deepstream's initialiser reads `auth[i].options` unconditionally (reportInvalidParameters when
    // there are several strategies, `settings` in the file and http handlers): a strategy without
    // options would be a TypeError at start.
    auth: (spec.auth ?? [{ type: 'none' }]).map((a) => ({ ...a, options: a.options ?? {} })),
    permission: { type: 'config', options: { permissions: 'fileLoad(permissions.yml)' } },
    clusterNode: { name: 'redis', options: redisOptions },
    cache: { name: 'redis', options: { ...redisOptions } },
  };
  const doc = new Document(config, { aliasDuplicateObjects: false });
  doc.commentBefore = [
    ` deepstream ${spec.nodeName}: rendered by realtime-edge.`,
    ' Redis carries cluster messages (clusterNode) and records (cache) for every node.',
  ].join('\n');
  const origins = spec.allowedOrigins ?? [];
  if (origins.length > 0 && isMap(doc.contents)) {
    const httpServer = doc.contents.get('httpServer', true);
    if (isMap(httpServer)) {
      httpServer.commentBefore =
        ' deepstream checks Origin on HTTP requests only (not WebSocket upgrades) and would refuse\n' +
        ' health checks without one, so CORS is open; the frontends allow WebSockets from:\n' +
        origins.map((o) => ` - ${o}`).join('\n');
    }
  }
  const text = doc.toString({ lineWidth: 0 });
  assertSurvivesDeepstreamPreprocessing(text);
  return text;
}

/** deepstream rewrites config text before parsing it: it cuts every line at its first `#`, and
 * substitutes `${NAME}`, `file(...)` and `fileLoad(...)` anywhere. Refuse a rendered value that
 * those rewrites would change, rather than ship a config that means something else. */
function assertSurvivesDeepstreamPreprocessing(text: string): void {
  for (const line of text.split('\n')) {
    if (line.trimStart().startsWith('#')) continue;
    const allowed = line
      .replace(`'\${${DEEPSTREAM_REDIS_PASSWORD_ENV}}'`, '')
      .replace('fileLoad(permissions.yml)', '');
    const hazard = ['#', '${', 'file(', 'fileLoad('].find((h) => allowed.includes(h));
    if (hazard !== undefined) {
      throw new Error(
        `deepstream config: the line ${JSON.stringify(line.trim())} contains ${JSON.stringify(hazard)}, which deepstream rewrites before parsing; allowed: values without #, \${, file( or fileLoad(`,
      );
    }
  }
}

/** Renders `permissions.yml` (default: `OPEN_PERMISSIONS`). */
export function renderDeepstreamPermissions(permissions: DeepstreamPermissions = OPEN_PERMISSIONS): string {
  parseOrThrow(optionsSchema.shape.permissions.unwrap(), permissions, 'deepstream permissions');
  const doc = new Document(permissions);
  doc.commentBefore = [
    ' deepstream valve permissions, rendered by realtime-edge.',
    permissions === OPEN_PERMISSIONS
      ? ' Default: open. Every client that logs in may use every record, event, RPC and presence;\n pass `permissions` to restrict (see deepstream.io "Valve permissions").'
      : ' Custom rules passed to realtime-edge.',
  ].join('\n');
  const text = doc.toString({ lineWidth: 0 });
  assertSurvivesDeepstreamPreprocessing(text);
  return text;
}

/** The launcher's argv after `node`: the launcher, the node's config.yml and the directory of the
 * `@deepstream/server` package to run. One place decides it for systemd and for local runs. */
export function deepstreamLauncherArgs(paths: { readonly launcher: string; readonly config: string; readonly serverPackageDir: string }): string[] {
  return [paths.launcher, paths.config, paths.serverPackageDir];
}

/** `deepstream-launcher.js`: starts one node through deepstream's library API. See the text. */
export const DEEPSTREAM_LAUNCHER_SCRIPT = `'use strict';
// Rendered by realtime-edge: starts one deepstream node.
//   node deepstream-launcher.js CONFIG_FILE SERVER_PACKAGE_DIR
// SERVER_PACKAGE_DIR is the installed @deepstream/server package (its plugins are resolved from
// there too).
//
// Why not \`deepstream start -c CONFIG_FILE\`: that command calls process.exit(1) on every
// FATAL_EXCEPTION, whatever exitOnFatalError says, and the Redis plugins report each lost Redis
// connection as fatal, so a Redis restart of a few seconds would end every node at once. Here a
// fatal error before the node has started still exits (it never served; the supervisor retries),
// and one after start is logged while the node stays up: ioredis reconnects and resubscribes, and
// cluster messages and the record cache resume without a restart.
const path = require('path');

const [configFile, serverPackageDir] = process.argv.slice(2);
if (!configFile || !serverPackageDir) {
  console.error('usage: node deepstream-launcher.js CONFIG_FILE SERVER_PACKAGE_DIR');
  process.exit(2);
}

const { Deepstream } = require(path.resolve(serverPackageDir));
const server = new Deepstream(path.resolve(configFile));
let started = false;
server.on('started', () => {
  started = true;
});
server.on('FATAL_EXCEPTION', () => {
  if (!started) {
    console.error('deepstream-launcher: fatal error while starting (see above); exiting');
    process.exit(1);
  }
  console.error('deepstream-launcher: fatal error reported (see above); staying up so the plugins can reconnect');
});
server.start();

// Graceful stop on SIGTERM (systemd) and SIGINT; the timer bounds a stop that never completes.
const STOP_GRACE_MS = 3000;
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(0), STOP_GRACE_MS).unref();
    server.on('stopped', () => process.exit(0));
    try {
      server.stop();
    } catch (error) {
      console.error(\`deepstream-launcher: \${error}\`);
      process.exit(0);
    }
  });
}
`;

/** The node's npm project: exact versions, and uWebSockets.js replaced by a local stub.
 * deepstream 7 lists uWebSockets.js as a GitHub dependency that npm cannot always fetch (and that
 * needs a matching prebuilt binary); it is only loaded for the `uws` server type, and realtime-edge
 * runs the `ws`-based `default` server, so an npm override points it at a stub that throws if
 * anything ever loads it. */
function renderNpmProject(version: string): RenderedFile[] {
  const packageJson = {
    name: 'realtime-edge-deepstream-node',
    private: true,
    description: 'deepstream.io server as installed by realtime-edge',
    dependencies: {
      '@deepstream/server': version,
      '@deepstream/clusternode-redis': DEEPSTREAM_CLUSTERNODE_REDIS_VERSION,
      '@deepstream/cache-redis': DEEPSTREAM_CACHE_REDIS_VERSION,
    },
    overrides: { 'uWebSockets.js': 'file:./vendor/uwebsockets-stub' },
  };
  const stubPackageJson = {
    name: 'uWebSockets.js',
    version: '20.19.0-stub',
    description: "Stand-in for deepstream's uWebSockets.js git dependency; realtime-edge runs the ws-based server.",
    main: 'index.js',
    license: 'MIT',
  };
  const stubIndex =
    "'use strict';\n" +
    "throw new Error('uWebSockets.js is not installed: realtime-edge runs deepstream with its ws-based default HTTP server');\n";
  return [
    { path: `${DEEPSTREAM_INSTALL_DIR}/package.json`, content: `${JSON.stringify(packageJson, null, 2)}\n`, mode: '0644', kind: 'deepstream-package' },
    { path: `${DEEPSTREAM_INSTALL_DIR}/vendor/uwebsockets-stub/package.json`, content: `${JSON.stringify(stubPackageJson, null, 2)}\n`, mode: '0644', kind: 'deepstream-package' },
    { path: `${DEEPSTREAM_INSTALL_DIR}/vendor/uwebsockets-stub/index.js`, content: stubIndex, mode: '0644', kind: 'deepstream-package' },
  ];
}

/** Installs Node.js: 20 on Amazon Linux 2023, the distribution's own on Debian/Ubuntu (checked
 * against deepstream's minimum when the packages are installed). */
const INSTALL_NODE_SCRIPT = renderPackageInstall({
  dnf: ['nodejs20', 'nodejs20-npm'],
  dnfFallback: ['nodejs', 'npm'],
  apt: ['nodejs', 'npm', 'curl', 'ca-certificates'],
});

/** Installs the pinned packages into the install dir and links the Node.js binary that runs them,
 * so a later `alternatives` switch of the system's `node` cannot change the server's runtime. */
function npmInstallStep(version: string): BootstrapStep {
  return {
    name: `npm install @deepstream/server@${version} with the Redis plugins`,
    script: [
      `local dir="\${REALTIME_EDGE_ROOT}"${shellQuote(DEEPSTREAM_INSTALL_DIR)} node_bin npm_bin major installed`,
      // AL2023 names the binaries node-20/npm-20 and points node/npm at them through alternatives.
      'if command -v node-20 >/dev/null 2>&1; then',
      '  node_bin="$(command -v node-20)"',
      '  npm_bin="$(command -v npm-20)"',
      'else',
      '  node_bin="$(command -v node)"',
      '  npm_bin="$(command -v npm)"',
      'fi',
      `major="$("$node_bin" -p 'process.versions.node.split(".")[0]')"`,
      `if ((major < ${MIN_NODE_MAJOR})); then`,
      `  realtime_edge_log "Node.js \${major} at \${node_bin} is too old for deepstream (needs ${MIN_NODE_MAJOR}+): use Amazon Linux 2023 or a distribution with Node.js 20"`,
      '  return 1',
      'fi',
      // Same package.json as the last successful install: nothing to do (re-runs stay fast).
      'if [[ -f "$dir/.realtime-edge-installed.json" ]] && cmp -s "$dir/package.json" "$dir/.realtime-edge-installed.json"; then',
      '  realtime_edge_log "deepstream packages already installed"',
      'else',
      // --ignore-scripts: none of these packages needs an install script, and a dependency
      // running code as root at boot is exactly what pinning tries to avoid.
      '  (cd "$dir" && export npm_config_cache="${npm_config_cache:-${REALTIME_EDGE_ROOT}/var/cache/realtime-edge/npm}" && PATH="$(dirname "$node_bin"):$PATH" "$npm_bin" install --omit=dev --ignore-scripts --no-audit --no-fund)',
      '  cp "$dir/package.json" "$dir/.realtime-edge-installed.json"',
      'fi',
      `installed="$("$node_bin" -p "require(process.argv[1]).version" "$dir/node_modules/@deepstream/server/package.json")"`,
      `if [[ $installed != ${shellQuote(version)} ]]; then`,
      `  realtime_edge_log "installed @deepstream/server is \${installed}, expected ${version}"`,
      '  return 1',
      'fi',
      'mkdir -p "$dir/bin"',
      'ln -sfn "$node_bin" "$dir/bin/node"',
      'realtime_edge_log "deepstream ${installed} on Node.js $("$node_bin" --version) (${node_bin})"',
    ].join('\n'),
  };
}

/** Builds the deepstream backend; `deepstreamBackend` is the one with default options. */
export function createDeepstreamBackend(options: DeepstreamOptions = {}): ServerBackend {
  parseOrThrow(optionsSchema, options, 'deepstream options');

  function validate(input: NodeRenderInput): void {
    parseOrThrow(nodeInputSchema, input, `deepstream node ${JSON.stringify(input.nodeName)}`);
  }

  function renderConfigFiles(input: NodeRenderInput): RenderedFile[] {
    validate(input);
    const owner = `root:${SERVICE_USER}`;
    return [
      { path: CONFIG_PATH, content: renderDeepstreamConfig({ ...input, ...options }), mode: '0640', kind: 'deepstream-config', owner },
      { path: `${DEEPSTREAM_CONFIG_DIR}/permissions.yml`, content: renderDeepstreamPermissions(options.permissions), mode: '0640', kind: 'deepstream-config', owner },
      // Next to the config so EC2 and local runs start the node with the very same file.
      { path: LAUNCHER_PATH, content: DEEPSTREAM_LAUNCHER_SCRIPT, mode: '0640', kind: DEEPSTREAM_LAUNCHER_KIND, owner },
    ];
  }

  function renderUserData(input: NodeRenderInput): string {
    const configFiles = renderConfigFiles(input);
    const needsSecrets = input.redis.authTokenParameter !== undefined;
    const unit = renderSystemdService({
      description: `deepstream.io ${input.version} (realtime-edge node ${input.nodeName})`,
      user: SERVICE_USER,
      workingDirectory: DEEPSTREAM_INSTALL_DIR,
      // The launcher keeps the node up through Redis outages; Restart=always is the last resort.
      execStart: [
        `${DEEPSTREAM_INSTALL_DIR}/bin/node`,
        ...deepstreamLauncherArgs({ launcher: LAUNCHER_PATH, config: CONFIG_PATH, serverPackageDir: SERVER_PACKAGE_DIR }),
      ],
      environment: { NODE_ENV: 'production' },
      environmentFiles: needsSecrets ? [ENV_FILE] : [],
      maxConnections: input.maxConnections,
    });
    return renderBootstrapScript({
      description: `deepstream.io ${input.version} node ${input.nodeName} (open files ${openFileLimit(input.maxConnections)})`,
      setupSteps: [
        { name: 'install Node.js', script: INSTALL_NODE_SCRIPT },
        { name: `create the ${SERVICE_USER} system user`, script: renderSystemUser(SERVICE_USER) },
      ],
      files: [
        ...renderNpmProject(input.version),
        ...configFiles,
        { path: `/etc/systemd/system/${UNIT}`, content: unit, mode: '0644', kind: 'systemd-unit' },
      ],
      steps: [
        npmInstallStep(input.version),
        ...(needsSecrets
          ? [
              renderSsmSecretsEnvFileStep({
                envFile: ENV_FILE,
                region: input.region,
                secrets: [
                  { envVar: DEEPSTREAM_REDIS_PASSWORD_ENV, parameterName: input.redis.authTokenParameter as string, encoding: 'yaml-single-quoted' },
                ],
              }),
            ]
          : []),
        renderStartServiceStep({ unit: UNIT, healthUrl: localHealthUrl(input.listenHost, input.listenPort ?? deepstreamProfile.port, HEALTH_PATH) }),
      ],
    });
  }

  return {
    profile: deepstreamProfile,
    defaultVersion: DEEPSTREAM_DEFAULT_VERSION,
    secrets: [],
    verifiesReleaseArchive: false,
    renderConfigFiles,
    renderUserData,
  };
}

export const deepstreamBackend: ServerBackend = createDeepstreamBackend();

/**
 * Centrifugo v6 as realtime-edge deploys it: its proxy profile, its `config.json` (no secrets in
 * it), and the user data that installs a checksum-verified release binary and runs it.
 *
 * Sources for the v6 configuration (v6 nested most v5 top-level keys):
 * - https://centrifugal.dev/docs/server/configuration (sources, env vars, "empty env = unset")
 * - centrifugo v6 source, internal/config/config.go (`Config`: http_server, log, engine, client,
 *   http_api, admin, health, node, usage_stats) and internal/configtypes/*.go (field names),
 *   internal/cli/configdocs/config.md (generated option list, e.g. engine.redis.address is a list
 *   of `redis://` URLs, engine.redis.tls.enabled)
 * - environment names: config.go builds them with envconfig under the prefix `CENTRIFUGO` from the
 *   nested keys, so `client.token.hmac_secret_key` is `CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY`.
 * - internal/cli/checkconfig.go: `centrifugo checkconfig --config FILE --strict` validates the
 *   config (with the environment applied) and fails on unknown keys.
 * - .goreleaser.yml: release assets `centrifugo_<version>_linux_<amd64|arm64>.tar.gz` and
 *   `centrifugo_<version>_checksums.txt` under the tag `v<version>`; no signatures are published.
 */
import { z } from 'zod';
import {
  type BootstrapStep,
  renderBootstrapScript,
  renderPackageInstall,
  renderSsmSecretsEnvFileStep,
  SECRETS_DIR,
  type SsmSecretEnvVar,
} from './bootstrap';
import type { CpuArchitecture, NodeRenderInput, RenderedFile, SecretSpec, ServerBackend, ServerProfile } from './profile';
import { shellQuote } from './shell';
import { localHealthUrl, openFileLimit, renderStartServiceStep, renderSystemdService, renderSystemUser } from './systemd';
import {
  awsRegionSchema,
  maxConnectionsSchema,
  nodeConfigBaseSchema,
  parseOrThrow,
  sha256Schema,
  ssmParameterNameSchema,
  versionSchema,
} from './validate';

/** Centrifugo v6: WebSocket and the other real-time transports under /connection/, the server API,
 * the bidirectional emulation endpoint, the health check and the admin web UI, all on one port. */
export const centrifugoProfile: ServerProfile = {
  name: 'centrifugo',
  displayName: 'Centrifugo',
  port: 8000,
  routes: [
    // Covers /connection/websocket, /connection/http_stream, /connection/sse, /connection/uni_*.
    { path: '/connection/', kind: 'websocket' },
    { path: '/emulation', kind: 'http' },
    { path: '/api', kind: 'http' },
    { path: '/health', kind: 'http', exact: true },
    // Admin web UI and its /admin/ API.
    { path: '/', kind: 'http' },
  ],
  healthPath: '/health',
  clientPath: '/connection/websocket',
  // Centrifugo pings every 25 s by default (client.ping_interval).
  pingIntervalSeconds: 25,
  // client.allowed_origins is checked on every connection, WebSocket handshakes included.
  checksOriginOnUpgrade: true,
};

/** Latest v6 release found when this was written (v6.9.6, centrifugal/centrifugo PR #1233). */
export const CENTRIFUGO_DEFAULT_VERSION = '6.9.6';
/** GitHub release downloads; a mirror with the same layout (`v<version>/<asset>`) may replace it. */
export const CENTRIFUGO_RELEASES_URL = 'https://github.com/centrifugal/centrifugo/releases/download';

export const CENTRIFUGO_CONFIG_PATH = '/etc/centrifugo/config.json';
export const CENTRIFUGO_BINARY_PATH = '/usr/local/bin/centrifugo';
const SERVICE_USER = 'centrifugo';
const UNIT = 'centrifugo.service';
const ENV_FILE = `${SECRETS_DIR}/centrifugo.env`;

/** The environment variable Centrifugo v6 reads for a nested config key. */
export function centrifugoEnvVar(configPath: readonly string[]): string {
  return ['CENTRIFUGO', ...configPath].join('_').toUpperCase();
}

/** A secret Centrifugo needs, and the config key it fills. */
interface CentrifugoSecret extends SecretSpec {
  readonly configPath: readonly string[];
}

const CENTRIFUGO_SECRETS: readonly CentrifugoSecret[] = [
  { key: 'tokenHmacSecretKey', description: 'HMAC key that verifies client connection JWTs (client.token.hmac_secret_key)', length: 64, configPath: ['client', 'token', 'hmac_secret_key'] },
  { key: 'apiKey', description: 'Key of the server HTTP API (http_api.key)', length: 48, configPath: ['http_api', 'key'] },
  { key: 'adminPassword', description: 'Password of the admin web UI (admin.password)', length: 32, configPath: ['admin', 'password'] },
  { key: 'adminSecret', description: 'Secret that signs admin web UI sessions (admin.secret)', length: 64, configPath: ['admin', 'secret'] },
];

/** Redis AUTH token: not generated per cluster (it belongs to Redis), so not in `secrets`. */
const REDIS_PASSWORD_PATH = ['engine', 'redis', 'password'] as const;

/** What `config.json` is rendered from; a `NodeRenderInput` fits. */
export interface CentrifugoConfigSpec {
  readonly nodeName: string;
  readonly listenHost?: string;
  readonly listenPort?: number;
  readonly redis: NodeRenderInput['redis'];
  /** Origin patterns (`*` wildcards allowed); empty or absent = any origin. */
  readonly allowedOrigins?: readonly string[];
  readonly logLevel?: CentrifugoLogLevel;
}

export type CentrifugoLogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'none';

const centrifugoOriginSchema = z
  .string()
  .regex(/^(?:\*|https?:\/\/[A-Za-z0-9*](?:[A-Za-z0-9*.-]*[A-Za-z0-9*])?(?::\d{1,5})?)$/, 'expected "*" or an origin pattern like https://*.example.com[:port]');

const configSpecSchema = nodeConfigBaseSchema.extend({
  allowedOrigins: z.array(centrifugoOriginSchema).optional(),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'none']).optional(),
});

const archPinsSchema = z.object({ x86_64: sha256Schema.optional(), aarch64: sha256Schema.optional() }).strict();

const nodeInputSchema = configSpecSchema.extend({
  version: versionSchema.refine((v) => v.startsWith('6.'), 'expected a Centrifugo 6.x version: the rendered config uses the v6 format'),
  region: awsRegionSchema.optional(),
  maxConnections: maxConnectionsSchema.optional(),
  secretParameters: z.record(z.string(), ssmParameterNameSchema).optional(),
  releaseSha256: archPinsSchema.optional(),
  allowUnpinnedRelease: z.boolean().optional(),
});

/** Renders Centrifugo v6's `config.json` for one node. It holds no secret: the token HMAC key,
 * API key, admin password and secret, and the Redis AUTH token reach Centrifugo as environment
 * variables from a root-only file written at boot (env overrides the file in Centrifugo). */
export function renderCentrifugoConfig(spec: CentrifugoConfigSpec): string {
  parseOrThrow(configSpecSchema, spec, `centrifugo config (node ${JSON.stringify(spec.nodeName)})`);
  const host = spec.redis.host.includes(':') ? `[${spec.redis.host}]` : spec.redis.host;
  const origins = spec.allowedOrigins ?? [];
  const config = {
    node: { name: spec.nodeName },
    http_server: { address: spec.listenHost ?? '0.0.0.0', port: spec.listenPort ?? centrifugoProfile.port },
    log: { level: spec.logLevel ?? 'info' },
    client: {
      // Centrifugo refuses cross-origin browsers unless allowed; realtime-edge's contract is that
      // no list means any origin.
      allowed_origins: origins.length > 0 ? [...origins] : ['*'],
      ping_interval: `${centrifugoProfile.pingIntervalSeconds}s`,
    },
    engine: {
      type: 'redis',
      redis: {
        address: [`redis://${host}:${spec.redis.port}`],
        ...(spec.redis.tls ? { tls: { enabled: true } } : {}),
      },
    },
    health: { enabled: true },
    admin: { enabled: true },
    // No anonymous usage reports from infrastructure nodes.
    usage_stats: { disabled: true },
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** Options that are Centrifugo's own (not part of the shared node input). */
export interface CentrifugoOptions {
  /** Where release archives are downloaded from; default GitHub releases. */
  readonly releasesUrl?: string;
  readonly logLevel?: CentrifugoLogLevel;
}

const optionsSchema = z.object({
  releasesUrl: z.string().regex(/^https:\/\/[A-Za-z0-9.:[\]-]+(?:\/[A-Za-z0-9._~%/-]*)?$/, 'expected an https:// URL without query').optional(),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'none']).optional(),
});

/** Go's names for the EC2 architectures, as used in Centrifugo's asset names. */
const GO_ARCH: Readonly<Record<CpuArchitecture, string>> = { x86_64: 'amd64', aarch64: 'arm64' };

/** Downloads the release for this instance's architecture and installs it only if it verifies.
 *
 * What each check guards against:
 * - HTTPS only (TLS 1.2+, no redirect to http): tampering on the network path.
 * - The sha256 listed in the release's own checksums file: a corrupt, truncated or wrongly served
 *   archive. It does not protect against a replaced release: whoever can replace the archive can
 *   replace the checksums file next to it.
 * - The pinned sha256 (`releaseSha256`, chosen and reviewed when the version was pinned): a release
 *   archive replaced after pinning (compromised account, re-uploaded asset). This is the check
 *   that makes the download trustworthy, so without a pin for the instance's architecture the
 *   install fails, unless `allowUnpinnedRelease` explicitly accepts the checksums file alone.
 * Centrifugo publishes no signatures, so there is nothing stronger to verify. */
function installReleaseStep(version: string, pins: Partial<Record<CpuArchitecture, string>>, allowUnpinned: boolean, releasesUrl: string): BootstrapStep {
  const archCases = (Object.keys(GO_ARCH) as CpuArchitecture[]).map((arch) =>
    [`  ${arch})`, `    goarch=${GO_ARCH[arch]}`, `    pinned=${shellQuote(pins[arch] ?? '')}`, '    ;;'].join('\n'),
  );
  return {
    name: `install Centrifugo ${version} (verified release)`,
    script: [
      `local version=${shellQuote(version)} base=${shellQuote(releasesUrl)} allow_unpinned=${allowUnpinned ? 'yes' : 'no'}`,
      'local arch goarch pinned asset sums work actual published',
      `local binary="\${REALTIME_EDGE_ROOT}"${shellQuote(CENTRIFUGO_BINARY_PATH)}`,
      'local marker="${REALTIME_EDGE_ROOT}/var/lib/realtime-edge/centrifugo.installed"',
      'arch="$(uname -m)"',
      'case "$arch" in',
      ...archCases,
      '  *)',
      '    realtime_edge_log "unsupported CPU architecture ${arch}: Centrifugo nodes run on x86_64 or aarch64"',
      '    return 1',
      '    ;;',
      'esac',
      'asset="centrifugo_${version}_linux_${goarch}.tar.gz"',
      'sums="centrifugo_${version}_checksums.txt"',
      'if [[ -x $binary && -f $marker && "$(cat "$marker")" == "${version} ${asset}" ]]; then',
      '  realtime_edge_log "Centrifugo ${version} already installed"',
      '  return 0',
      'fi',
      'if [[ -z $pinned && $allow_unpinned != yes ]]; then',
      '  realtime_edge_log "no pinned sha256 for ${asset} (${arch}): refusing to install an unverified release; pin releaseSha256.${arch} from ${base}/v${version}/${sums}"',
      '  return 1',
      'fi',
      'work="$(mktemp -d "${TMPDIR:-/tmp}/realtime-edge-centrifugo.XXXXXX")"',
      "curl --proto '=https' --proto-redir '=https' --tlsv1.2 -fsSL --retry 5 --retry-connrefused -o \"${work}/${asset}\" \"${base}/v${version}/${asset}\"",
      "curl --proto '=https' --proto-redir '=https' --tlsv1.2 -fsSL --retry 5 --retry-connrefused -o \"${work}/${sums}\" \"${base}/v${version}/${sums}\"",
      'actual="$(sha256sum "${work}/${asset}" | cut -d " " -f 1)"',
      `published="$(awk -v f="$asset" '$2 == f || $2 == ("*" f) { print $1 }' "\${work}/\${sums}")"`,
      'if [[ -z $published ]]; then',
      '  realtime_edge_log "${sums} does not list ${asset}: refusing to install"',
      '  rm -rf "$work"',
      '  return 1',
      'fi',
      'if [[ $actual != "$published" ]]; then',
      '  realtime_edge_log "sha256 of ${asset} is ${actual}, but ${sums} says ${published}: corrupt or tampered download, refusing to install"',
      '  rm -rf "$work"',
      '  return 1',
      'fi',
      'if [[ -n $pinned && $actual != "$pinned" ]]; then',
      '  realtime_edge_log "sha256 of ${asset} is ${actual}, but the pinned value is ${pinned}: the release differs from the one pinned, refusing to install"',
      '  rm -rf "$work"',
      '  return 1',
      'fi',
      'if [[ -z $pinned ]]; then',
      '  realtime_edge_log "WARNING: ${asset} verified against the published checksums only (allowUnpinnedRelease)"',
      'fi',
      'tar -xzf "${work}/${asset}" -C "$work" centrifugo',
      'install -D -m 0755 "${work}/centrifugo" "$binary"',
      'mkdir -p "$(dirname "$marker")"',
      'printf \'%s %s\\n\' "$version" "$asset" > "$marker"',
      'rm -rf "$work"',
      'realtime_edge_log "installed Centrifugo ${version} (${asset}, sha256 ${actual})"',
    ].join('\n'),
  };
}

/** Runs `centrifugo checkconfig --strict` with the node's secrets applied, so a bad config or a
 * missing secret fails the bootstrap with Centrifugo's own message instead of a restart loop. */
function checkConfigStep(): BootstrapStep {
  return {
    name: 'validate the Centrifugo config (checkconfig --strict)',
    script: [
      '(',
      '  set -a',
      '  # shellcheck source=/dev/null # written at boot by the SSM step',
      `  . ${shellQuote(ENV_FILE)}`,
      '  set +a',
      `  ${shellQuote(CENTRIFUGO_BINARY_PATH)} checkconfig --strict --config ${shellQuote(CENTRIFUGO_CONFIG_PATH)}`,
      ')',
    ].join('\n'),
  };
}

/** Builds the Centrifugo backend; `centrifugoBackend` is the one with default options. */
export function createCentrifugoBackend(options: CentrifugoOptions = {}): ServerBackend {
  parseOrThrow(optionsSchema, options, 'centrifugo options');
  const releasesUrl = options.releasesUrl ?? CENTRIFUGO_RELEASES_URL;

  function validate(input: NodeRenderInput): void {
    parseOrThrow(nodeInputSchema, input, `centrifugo node ${JSON.stringify(input.nodeName)}`);
  }

  function renderConfigFiles(input: NodeRenderInput): RenderedFile[] {
    validate(input);
    return [
      {
        path: CENTRIFUGO_CONFIG_PATH,
        content: renderCentrifugoConfig({ ...input, logLevel: options.logLevel }),
        mode: '0640',
        kind: 'centrifugo-config',
        owner: `root:${SERVICE_USER}`,
      },
    ];
  }

  function secretEnvVars(input: NodeRenderInput): SsmSecretEnvVar[] {
    const parameters = input.secretParameters ?? {};
    const missing = CENTRIFUGO_SECRETS.filter((s) => parameters[s.key] === undefined).map((s) => s.key);
    const unknown = Object.keys(parameters).filter((k) => !CENTRIFUGO_SECRETS.some((s) => s.key === k));
    if (missing.length > 0 || unknown.length > 0) {
      throw new Error(
        `centrifugo node ${JSON.stringify(input.nodeName)}: secretParameters = ${JSON.stringify(parameters)}: ` +
          [missing.length > 0 ? `missing ${missing.join(', ')}` : '', unknown.length > 0 ? `unknown ${unknown.join(', ')}` : ''].filter(Boolean).join(' and ') +
          '; ' +
          `expected exactly the keys ${CENTRIFUGO_SECRETS.map((s) => s.key).join(', ')} (SSM SecureString parameter names)`,
      );
    }
    const vars: SsmSecretEnvVar[] = CENTRIFUGO_SECRETS.map((s) => ({ envVar: centrifugoEnvVar(s.configPath), parameterName: parameters[s.key] as string }));
    if (input.redis.authTokenParameter) {
      vars.push({ envVar: centrifugoEnvVar(REDIS_PASSWORD_PATH), parameterName: input.redis.authTokenParameter });
    }
    return vars;
  }

  function renderUserData(input: NodeRenderInput): string {
    const configFiles = renderConfigFiles(input);
    const pins = input.releaseSha256 ?? {};
    const allowUnpinned = input.allowUnpinnedRelease ?? false;
    if (Object.values(pins).every((p) => p === undefined) && !allowUnpinned) {
      throw new Error(
        `centrifugo node ${JSON.stringify(input.nodeName)}: releaseSha256 is empty; expected the sha256 of ` +
          `centrifugo_${input.version}_linux_amd64.tar.gz (x86_64) and/or _arm64 (aarch64) from ` +
          `${releasesUrl}/v${input.version}/centrifugo_${input.version}_checksums.txt, or allowUnpinnedRelease: true`,
      );
    }
    const secrets = secretEnvVars(input);
    const unit = renderSystemdService({
      description: `Centrifugo ${input.version} (realtime-edge node ${input.nodeName})`,
      user: SERVICE_USER,
      execStart: [CENTRIFUGO_BINARY_PATH, '--config', CENTRIFUGO_CONFIG_PATH],
      environmentFiles: [ENV_FILE],
      maxConnections: input.maxConnections,
    });
    return renderBootstrapScript({
      description: `Centrifugo ${input.version} node ${input.nodeName} (open files ${openFileLimit(input.maxConnections)})`,
      setupSteps: [
        {
          name: 'install download tools',
          // AL2023 ships curl-minimal (installing curl would conflict); it may lack only tar/gzip.
          script: renderPackageInstall({ dnf: ['tar', 'gzip'], apt: ['curl', 'ca-certificates', 'tar', 'gzip'] }),
        },
        { name: `create the ${SERVICE_USER} system user`, script: renderSystemUser(SERVICE_USER) },
      ],
      files: [...configFiles, { path: `/etc/systemd/system/${UNIT}`, content: unit, mode: '0644', kind: 'systemd-unit' }],
      steps: [
        installReleaseStep(input.version, pins, allowUnpinned, releasesUrl),
        renderSsmSecretsEnvFileStep({ envFile: ENV_FILE, region: input.region, secrets }),
        checkConfigStep(),
        renderStartServiceStep({ unit: UNIT, healthUrl: localHealthUrl(input.listenHost, input.listenPort ?? centrifugoProfile.port, centrifugoProfile.healthPath) }),
      ],
    });
  }

  return {
    profile: centrifugoProfile,
    defaultVersion: CENTRIFUGO_DEFAULT_VERSION,
    secrets: CENTRIFUGO_SECRETS.map(({ key, description, length }) => ({ key, description, length })),
    verifiesReleaseArchive: true,
    renderConfigFiles,
    renderUserData,
  };
}

export const centrifugoBackend: ServerBackend = createCentrifugoBackend();

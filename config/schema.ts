/**
 * Every `realtime-edge:` config key: its type, default, allowed values and description. This table
 * is the one place that decides defaults; `Pulumi.yaml`'s `config:` section and the README configuration reference are
 * generated from it (config/docs.ts) and a test keeps them identical.
 *
 * Keys are flat so `pulumi config set realtime-edge:KEY VALUE` works; only `tags` is a map.
 */
import { z } from 'zod';
import { awsRegionSchema, isHost, originSchema, ssmParameterNameSchema } from '../servers/validate';
import { CPU_ARCHITECTURES, proxyEnforcesOrigins, type CpuArchitecture } from '../servers/profile';
import { BACKEND_NAMES, backendCatalog, installsVerifiedReleaseArchive, type BackendName } from './backends';
import { INSTANCE_TYPE_PATTERN } from './instance-types';
import {
  BALANCE_STRATEGIES,
  DEFAULT_IDLE_TIMEOUT_RULE,
  NGINX_STABLE_VERSION,
  PROXY_DEFAULTS,
  defaultIdleTimeoutSeconds,
  type BalanceStrategy,
} from './proxy-defaults';
import {
  FRONTENDS,
  PROXY_MODES,
  REDIS_MODES,
  TLS_SOURCES,
  type Frontend,
  type ProxyMode,
  type RedisMode,
  type TlsSource,
} from './types';
import { checkCidr } from './validators';

export * from './types';
export { BACKEND_NAMES, backendCatalog } from './backends';

/** The project's config namespace (`Pulumi.yaml` name). */
export const CONFIG_NAMESPACE = 'realtime-edge';

/** Used when the stack sets no `aws:region`. */
export const DEFAULT_REGION = 'us-east-1';

/** How a value is written in a stack file; also its type in `Pulumi.yaml` (object has none there). */
export type ConfigValueKind = 'string' | 'integer' | 'boolean' | 'array' | 'object';

export type ConfigGroup =
  | 'Backends'
  | 'Frontend and nginx'
  | 'TLS'
  | 'Network and access'
  | 'Redis'
  | 'Timeouts and limits'
  | 'ALB'
  | 'Tags';

export const CONFIG_GROUPS: readonly ConfigGroup[] = [
  'Backends',
  'Frontend and nginx',
  'TLS',
  'Network and access',
  'Redis',
  'Timeouts and limits',
  'ALB',
  'Tags',
];

export interface ConfigKeySpec<T = unknown> {
  /** Key without the namespace. */
  readonly key: string;
  readonly kind: ConfigValueKind;
  readonly group: ConfigGroup;
  /** Validates the value after string coercion (config/stack.ts). */
  readonly schema: z.ZodType<T>;
  /** Applied when unset. Absent = optional with no value (declared in Pulumi.yaml as empty). */
  readonly default?: T;
  /** Set when the default is not a fixed value but derived by the components from other settings:
   * `default` is then only the stand-in meaning "derive" (Pulumi.yaml needs a default of the key's
   * type), the typed config leaves the setting unset, and this says what it derives to (docs). */
  readonly derivedDefault?: string;
  /** What is allowed, for error messages and docs. */
  readonly allowed: string;
  /** One line; also the Pulumi.yaml description. */
  readonly description: string;
}

function defineKey<T>(spec: ConfigKeySpec<T>): ConfigKeySpec<T> {
  return spec;
}

// ---- value rules ---------------------------------------------------------------------------

const PINNED_VERSION = /^\d+\.\d+\.\d+$/;
const CACHE_NODE_TYPE = /^cache\.[a-z0-9-]+\.[a-z0-9]+$/;
const SUBNET_ID = /^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
const VPC_ID = /^vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
const HOSTNAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
const SECRET_ID = /^(?:arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+|[A-Za-z0-9/_+=.@-]{1,512})$/;
export const ACM_CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate\/[0-9a-f-]{36}$/;
const S3_BUCKET = /^(?=.{3,63}$)[a-z0-9][a-z0-9.-]*[a-z0-9]$/;
const NGINX_HASH_KEY = /^(?:\$[a-z_][a-z0-9_]*|\$\{[a-z_][a-z0-9_]*\}|[A-Za-z0-9_.:-])+$/;
/** `aws:region` is not ours but is validated with the rest. */
export const regionSchema = awsRegionSchema;

/** A string matching `pattern`; the key's `allowed` text explains a mismatch, so no message. */
const matching = (pattern: RegExp) => z.string().refine((value) => pattern.test(value), { message: '' });

const integerIn = (min: number, max: number) => z.number().int().min(min).max(max);

function uniqueList<T extends z.ZodType<string>>(item: T, { min }: { min: number }) {
  return z
    .array(item)
    .min(min)
    .refine((list) => new Set(list).size === list.length, { message: 'duplicate entries' });
}

const cidr = z.string().superRefine((value, ctx) => {
  const check = checkCidr(value);
  if (!check.ok) ctx.addIssue({ code: 'custom', message: check.reason });
});

function majorOf(version: string): string {
  return version.split('.')[0] ?? '';
}

// ---- keys ----------------------------------------------------------------------------------

/** `idleTimeoutSeconds` value (and default) meaning "derive it from the backends' ping intervals":
 * Pulumi.yaml must declare an integer default, and no real idle timeout is 0. */
export const DERIVED_IDLE_TIMEOUT = 0;

/** What a derived idle timeout comes to, per backend, from their profiles. */
function derivedIdleTimeoutText(): string {
  const perBackend = BACKEND_NAMES.map((name) => {
    const { profile } = backendCatalog[name];
    return `${defaultIdleTimeoutSeconds([profile])} s for ${profile.displayName}`;
  });
  return `derived: ${perBackend.join(', ')} (with several, the largest)`;
}

/** Who enforces `allowedOrigins` for which backend, from the profiles' `checksOriginOnUpgrade`. */
function allowedOriginsText(): string {
  const profiles = BACKEND_NAMES.map((name) => backendCatalog[name].profile);
  const own = profiles.filter((p) => !proxyEnforcesOrigins(p)).map((p) => p.displayName);
  const proxied = profiles.filter(proxyEnforcesOrigins).map((p) => p.displayName);
  const parts = [
    own.length > 0 ? `Checked by ${own.join(' and ')} itself.` : '',
    proxied.length > 0
      ? `${proxied.join(' and ')} ${proxied.length > 1 ? 'do' : 'does'} no such check on WebSocket upgrades: for it nginx in http mode and the ALB enforce them (nginx stream mode cannot, so proxyMode stream or both is refused while origins are set).`
      : '',
  ].filter(Boolean);
  return `Browser origins allowed to open WebSocket connections; empty = any origin. ${parts.join(' ')} Requests without an Origin header (non-browser clients) pass.`;
}

export type ReleasePins = Partial<Record<CpuArchitecture, string>>;

export interface BackendKeySpecs {
  readonly nodes: ConfigKeySpec<number>;
  readonly instanceType: ConfigKeySpec<string>;
  readonly version: ConfigKeySpec<string>;
  /** Only for servers installed from a verified release archive. */
  readonly releaseSha256?: ConfigKeySpec<ReleasePins>;
  readonly allowUnpinnedRelease?: ConfigKeySpec<boolean>;
}

const SHA256 = /^[0-9a-fA-F]{64}$/;

const releasePins = z
  .record(z.string(), z.string())
  .superRefine((pins, ctx) => {
    for (const [architecture, sha] of Object.entries(pins)) {
      if (!(CPU_ARCHITECTURES as readonly string[]).includes(architecture)) {
        ctx.addIssue({ code: 'custom', message: `"${architecture}" is not one of ${CPU_ARCHITECTURES.join(', ')}` });
      }
      if (!SHA256.test(sha)) ctx.addIssue({ code: 'custom', message: `${architecture}: not 64 hexadecimal digits` });
    }
  })
  .transform((pins): ReleasePins => Object.fromEntries(Object.entries(pins).map(([arch, sha]) => [arch, sha.toLowerCase()])));

/** `<name>ReleaseSha256` and `<name>AllowUnpinnedRelease`, for servers that download a release. */
function releaseArchiveKeys(name: BackendName): Pick<BackendKeySpecs, 'releaseSha256' | 'allowUnpinnedRelease'> {
  if (!installsVerifiedReleaseArchive[name]) return {};
  const { profile } = backendCatalog[name];
  return {
    releaseSha256: defineKey({
      key: `${name}ReleaseSha256`,
      kind: 'object',
      group: 'Backends',
      schema: releasePins,
      default: {} as ReleasePins,
      allowed: `a map of ${CPU_ARCHITECTURES.join(' / ')} to 64 hexadecimal digits`,
      description: `Pinned sha256 of the ${profile.displayName} release archive per CPU architecture of the node instance type (from the release's checksums file, reviewed when you pin ${name}Version). A node refuses to install a release that does not match.`,
    }),
    allowUnpinnedRelease: defineKey({
      key: `${name}AllowUnpinnedRelease`,
      kind: 'boolean',
      group: 'Backends',
      schema: z.boolean(),
      default: false,
      allowed: 'true or false',
      description: `Without ${name}ReleaseSha256, accept a ${profile.displayName} release checked only against the checksums file published next to it: that catches a corrupt download, not a replaced release.`,
    }),
  };
}

/** `<name>Nodes`, `<name>InstanceType`, `<name>Version` for one registered backend. */
function backendKeys(name: BackendName): BackendKeySpecs {
  const { profile, defaultVersion } = backendCatalog[name];
  const major = majorOf(defaultVersion);
  return {
    nodes: defineKey({
      key: `${name}Nodes`,
      kind: 'integer',
      group: 'Backends',
      schema: integerIn(1, 50),
      default: 2,
      allowed: 'an integer from 1 to 50',
      description: `Number of ${profile.displayName} nodes (when backends includes ${name}); spread over the private subnets in order, so use at least as many nodes as AZs.`,
    }),
    instanceType: defineKey({
      key: `${name}InstanceType`,
      kind: 'string',
      group: 'Backends',
      schema: matching(INSTANCE_TYPE_PATTERN),
      default: 't3.small',
      allowed: 'an EC2 instance type, e.g. t3.small',
      description: `EC2 instance type of the ${profile.displayName} nodes.`,
    }),
    version: defineKey({
      key: `${name}Version`,
      kind: 'string',
      group: 'Backends',
      schema: z
        .string()
        .refine((v) => PINNED_VERSION.test(v), { message: '' })
        .refine((v) => !PINNED_VERSION.test(v) || majorOf(v) === major, {
          message: `realtime-edge renders ${profile.displayName} ${major}.x configuration`,
        }),
      default: defaultVersion,
      allowed: `an exact ${major}.x.y version, e.g. ${defaultVersion}`,
      description: `Pinned ${profile.displayName} version installed on every node (no ranges, so every node and every redeploy runs the same build).`,
    }),
    ...releaseArchiveKeys(name),
  };
}

export const backendKeySpecs = Object.fromEntries(BACKEND_NAMES.map((name) => [name, backendKeys(name)])) as Record<
  BackendName,
  BackendKeySpecs
>;

export const keys = {
  backends: defineKey({
    key: 'backends',
    kind: 'array',
    group: 'Backends',
    schema: uniqueList(z.enum(BACKEND_NAMES as [BackendName, ...BackendName[]]), { min: 1 }),
    default: ['deepstream'] as BackendName[],
    allowed: `a non-empty list of ${BACKEND_NAMES.join(', ')}`,
    description: 'Realtime servers to deploy, each as its own cluster.',
  }),

  frontend: defineKey({
    key: 'frontend',
    kind: 'string',
    group: 'Frontend and nginx',
    schema: z.enum(FRONTENDS as [Frontend, ...Frontend[]]),
    default: 'nginx' as Frontend,
    allowed: FRONTENDS.join(', '),
    description: 'What clients connect to: nginx proxy hosts compiled from source, an AWS Application Load Balancer, or both side by side.',
  }),
  proxyMode: defineKey({
    key: 'proxyMode',
    kind: 'string',
    group: 'Frontend and nginx',
    schema: z.enum(PROXY_MODES as [ProxyMode, ...ProxyMode[]]),
    default: 'http' as ProxyMode,
    allowed: PROXY_MODES.join(', '),
    description: 'nginx mode: http (TLS on 443, path routing to every backend, redirect from 80), stream (a TCP/TLS listener per backend, bytes passed through), or both.',
  }),
  balance: defineKey({
    key: 'balance',
    kind: 'string',
    group: 'Frontend and nginx',
    schema: z.enum(BALANCE_STRATEGIES as [BalanceStrategy, ...BalanceStrategy[]]),
    default: 'least-conn' as BalanceStrategy,
    allowed: BALANCE_STRATEGIES.join(', '),
    description: 'nginx upstream strategy. least-conn suits long-lived WebSockets; ip-hash works in http mode only; hash uses hashKey (consistent hashing).',
  }),
  hashKey: defineKey({
    key: 'hashKey',
    kind: 'string',
    group: 'Frontend and nginx',
    schema: matching(NGINX_HASH_KEY),
    default: '$remote_addr',
    allowed: 'an nginx variable expression such as $remote_addr or $cookie_NAME (http only); only with balance hash',
    description: 'Key for balance hash. Stream mode knows only connection variables ($remote_addr, $server_port, $ssl_*, ...), not cookies or headers.',
  }),
  proxyCount: defineKey({
    key: 'proxyCount',
    kind: 'integer',
    group: 'Frontend and nginx',
    schema: integerIn(1, 10),
    default: 1,
    allowed: 'an integer from 1 to 10',
    description: 'Number of nginx hosts, each with its own Elastic IP, spread over the public subnets. More than 1 removes the single point of failure; spread clients with DNS round robin over the IPs, or put the ALB in front.',
  }),
  proxyInstanceType: defineKey({
    key: 'proxyInstanceType',
    kind: 'string',
    group: 'Frontend and nginx',
    schema: matching(INSTANCE_TYPE_PATTERN),
    default: 't3.small',
    allowed: 'an EC2 instance type, e.g. t3.small',
    description: 'EC2 instance type of the nginx hosts (nginx is compiled on first boot).',
  }),
  nginxVersion: defineKey({
    key: 'nginxVersion',
    kind: 'string',
    group: 'Frontend and nginx',
    schema: matching(PINNED_VERSION),
    default: NGINX_STABLE_VERSION,
    allowed: `an exact nginx version, e.g. ${NGINX_STABLE_VERSION}`,
    description: 'nginx release downloaded from nginx.org and compiled with --with-stream on the proxy hosts; the tarball is verified against the nginx signing keys.',
  }),
  nginxSha256: defineKey({
    key: 'nginxSha256',
    kind: 'string',
    group: 'Frontend and nginx',
    schema: z
      .string()
      .refine((v) => /^[0-9a-fA-F]{64}$/.test(v), { message: '' })
      .transform((v) => v.toLowerCase()),
    allowed: '64 hexadecimal digits (sha256 of nginx-VERSION.tar.gz)',
    description: 'Optional extra pin: the expected sha256 of the nginx source tarball, checked before building.',
  }),

  tlsSource: defineKey({
    key: 'tlsSource',
    kind: 'string',
    group: 'TLS',
    schema: z.enum(TLS_SOURCES as [TlsSource, ...TlsSource[]]),
    default: 'self-signed' as TlsSource,
    allowed: TLS_SOURCES.join(', '),
    description: "Where nginx's certificate comes from: self-signed (generated with @pulumi/tls, for dev), ssm (tlsCertificateParameter + tlsKeyParameter), secrets-manager (tlsSecretId), or acm (TLS ends at the ALB only; frontend alb).",
  }),
  tlsCertificateParameter: defineKey({
    key: 'tlsCertificateParameter',
    kind: 'string',
    group: 'TLS',
    schema: ssmParameterNameSchema,
    allowed: 'an SSM parameter name, e.g. /realtime-edge/prod/tls/fullchain',
    description: 'tlsSource ssm: SecureString parameter holding the PEM certificate chain (leaf first). Read by the proxy host at boot with its instance role.',
  }),
  tlsKeyParameter: defineKey({
    key: 'tlsKeyParameter',
    kind: 'string',
    group: 'TLS',
    schema: ssmParameterNameSchema,
    allowed: 'an SSM parameter name, e.g. /realtime-edge/prod/tls/privkey',
    description: 'tlsSource ssm: SecureString parameter holding the PEM private key.',
  }),
  tlsSecretId: defineKey({
    key: 'tlsSecretId',
    kind: 'string',
    group: 'TLS',
    schema: matching(SECRET_ID),
    allowed: 'a Secrets Manager secret name or ARN',
    description: 'tlsSource secrets-manager: secret whose SecretString is JSON {"certificate": "<PEM chain>", "privateKey": "<PEM key>"}.',
  }),
  acmCertificateArn: defineKey({
    key: 'acmCertificateArn',
    kind: 'string',
    group: 'TLS',
    schema: matching(ACM_CERTIFICATE_ARN),
    allowed: 'an ACM certificate ARN in the stack region, arn:aws:acm:REGION:ACCOUNT:certificate/ID',
    description: "Certificate of the ALB's HTTPS listener; required when frontend is alb or both.",
  }),
  domain: defineKey({
    key: 'domain',
    kind: 'string',
    group: 'TLS',
    schema: matching(HOSTNAME),
    allowed: 'a lowercase DNS name such as rt.example.com',
    description: 'Public host name clients use (server_name, certificate name, output URLs). Required unless tlsSource is self-signed; you point its DNS records at the proxy IPs or the ALB.',
  }),
  hstsMaxAgeSeconds: defineKey({
    key: 'hstsMaxAgeSeconds',
    kind: 'integer',
    group: 'TLS',
    schema: integerIn(0, 63072000),
    default: 31536000,
    allowed: 'an integer from 0 (no HSTS header) to 63072000',
    description: 'Strict-Transport-Security max-age sent by nginx in http mode (browsers ignore it over a certificate error, so it is harmless with self-signed).',
  }),

  allowedCidrs: defineKey({
    key: 'allowedCidrs',
    kind: 'array',
    group: 'Network and access',
    schema: uniqueList(cidr, { min: 1 }),
    default: ['0.0.0.0/0', '::/0'],
    allowed: 'a non-empty list of IPv4/IPv6 CIDRs with host bits zero, e.g. 203.0.113.0/24',
    description: 'Client networks allowed on the public listeners (nginx and ALB security groups). No other inbound port is open: there is no SSH, hosts are reached with SSM Session Manager.',
  }),
  allowedOrigins: defineKey({
    key: 'allowedOrigins',
    kind: 'array',
    group: 'Network and access',
    schema: uniqueList(originSchema, { min: 0 }),
    default: [] as string[],
    allowed: 'a list of origins such as https://app.example.com or https://*.example.com',
    description: allowedOriginsText(),
  }),
  vpcId: defineKey({
    key: 'vpcId',
    kind: 'string',
    group: 'Network and access',
    schema: matching(VPC_ID),
    allowed: 'a VPC id such as vpc-0123456789abcdef0',
    description: "Existing VPC to deploy into; unset = the region's default VPC. Requires publicSubnetIds and privateSubnetIds.",
  }),
  publicSubnetIds: defineKey({
    key: 'publicSubnetIds',
    kind: 'array',
    group: 'Network and access',
    schema: uniqueList(matching(SUBNET_ID), { min: 0 }),
    default: [] as string[],
    allowed: 'a list of subnet ids (at least 2 in different AZs with the ALB)',
    description: 'With vpcId: subnets with an internet gateway route for the nginx hosts and the ALB.',
  }),
  privateSubnetIds: defineKey({
    key: 'privateSubnetIds',
    kind: 'array',
    group: 'Network and access',
    schema: uniqueList(matching(SUBNET_ID), { min: 0 }),
    default: [] as string[],
    allowed: 'a list of subnet ids, ideally one per AZ',
    description: 'With vpcId: subnets for the backend nodes and Redis, with a NAT route (nodes download packages at boot). Nodes are spread over them in order.',
  }),

  redisMode: defineKey({
    key: 'redisMode',
    kind: 'string',
    group: 'Redis',
    schema: z.enum(REDIS_MODES as [RedisMode, ...RedisMode[]]),
    default: 'elasticache' as RedisMode,
    allowed: REDIS_MODES.join(', '),
    description: 'elasticache: a new replication group, always encrypted at rest and in transit, reachable from the nodes only; existing: an endpoint you run (redisHost).',
  }),
  redisNodeType: defineKey({
    key: 'redisNodeType',
    kind: 'string',
    group: 'Redis',
    schema: matching(CACHE_NODE_TYPE),
    default: 'cache.t4g.small',
    allowed: 'an ElastiCache node type, e.g. cache.t4g.small',
    description: 'redisMode elasticache: node type of the primary and replicas.',
  }),
  redisReplicas: defineKey({
    key: 'redisReplicas',
    kind: 'integer',
    group: 'Redis',
    schema: integerIn(0, 5),
    default: 1,
    allowed: 'an integer from 0 to 5 (at least 1 in a production stack)',
    description: 'redisMode elasticache: replicas besides the primary, placed in other AZs. 1 or more (2+ nodes) enables Multi-AZ automatic failover; 0 is a single node for dev.',
  }),
  redisHost: defineKey({
    key: 'redisHost',
    kind: 'string',
    group: 'Redis',
    schema: z.string().refine(isHost, { message: '' }),
    allowed: 'a DNS name or an IPv4/IPv6 address',
    description: 'redisMode existing (required): Redis host the nodes connect to.',
  }),
  redisPort: defineKey({
    key: 'redisPort',
    kind: 'integer',
    group: 'Redis',
    schema: integerIn(1, 65535),
    default: 6379,
    allowed: 'a port from 1 to 65535',
    description: 'redisMode existing: Redis port.',
  }),
  redisTls: defineKey({
    key: 'redisTls',
    kind: 'boolean',
    group: 'Redis',
    schema: z.boolean(),
    default: true,
    allowed: 'true or false',
    description: 'redisMode existing: connect with TLS.',
  }),
  redisAuthTokenParameter: defineKey({
    key: 'redisAuthTokenParameter',
    kind: 'string',
    group: 'Redis',
    schema: ssmParameterNameSchema,
    allowed: 'an SSM parameter name',
    description: 'redisMode existing: SecureString parameter with the Redis AUTH token, read by the nodes at boot; unset = no AUTH.',
  }),

  idleTimeoutSeconds: defineKey({
    key: 'idleTimeoutSeconds',
    kind: 'integer',
    group: 'Timeouts and limits',
    schema: integerIn(0, 4000),
    default: DERIVED_IDLE_TIMEOUT,
    derivedDefault: derivedIdleTimeoutText(),
    allowed: `${DERIVED_IDLE_TIMEOUT} (derived) or an integer from 1 to 4000, above the largest ping interval of the enabled backends`,
    description: `Idle timeout of proxied WebSocket connections (nginx proxy_read/send_timeout and stream proxy_timeout, ALB idle timeout). Must exceed the servers' ping interval or idle sockets are cut between pings (AWS's 60 s default is too close). ${DERIVED_IDLE_TIMEOUT} derives it from the enabled backends: ${DEFAULT_IDLE_TIMEOUT_RULE}.`,
  }),
  connectTimeoutSeconds: defineKey({
    key: 'connectTimeoutSeconds',
    kind: 'integer',
    group: 'Timeouts and limits',
    schema: integerIn(1, 75),
    default: PROXY_DEFAULTS.connectSeconds,
    allowed: 'an integer from 1 to 75',
    description: 'nginx proxy_connect_timeout: how long to wait for a node to accept before trying the next one (every route and stream listener). A node that drops connections costs each handshake that long, so keep it short; 2 s rides out one lost SYN.',
  }),
  maxConnections: defineKey({
    key: 'maxConnections',
    kind: 'integer',
    group: 'Timeouts and limits',
    schema: integerIn(64, PROXY_DEFAULTS.maxConnectionsLimit),
    default: PROXY_DEFAULTS.maxConnections,
    allowed: `an integer from 64 to ${PROXY_DEFAULTS.maxConnectionsLimit}`,
    description: "Concurrent client connections each proxy host is sized for (worker_connections, file limits; EC2 hosts raise LimitNOFILE to match); also the floor of the nodes' LimitNOFILE. The default fits nginx under the 20,000 open-file limit of an unprivileged shell (npm run local); size production hosts explicitly.",
  }),

  albStickiness: defineKey({
    key: 'albStickiness',
    kind: 'boolean',
    group: 'ALB',
    schema: z.boolean(),
    default: false,
    allowed: 'true or false',
    description: 'Load-balancer cookie stickiness on the target groups. A WebSocket stays on its node anyway; this matters for HTTP-streaming/SSE fallbacks and reconnects.',
  }),
  albDeregistrationDelaySeconds: defineKey({
    key: 'albDeregistrationDelaySeconds',
    kind: 'integer',
    group: 'ALB',
    schema: integerIn(0, 3600),
    default: 60,
    allowed: 'an integer from 0 to 3600',
    description: 'How long a deregistering node keeps its connections before the ALB closes them.',
  }),
  albDeletionProtection: defineKey({
    key: 'albDeletionProtection',
    kind: 'boolean',
    group: 'ALB',
    schema: z.boolean(),
    default: false,
    allowed: 'true or false',
    description: 'Refuse to delete the ALB until this is turned off again (turn on for production).',
  }),
  albAccessLogsBucket: defineKey({
    key: 'albAccessLogsBucket',
    kind: 'string',
    group: 'ALB',
    schema: matching(S3_BUCKET),
    allowed: 'an existing S3 bucket name whose policy lets the ALB write',
    description: 'S3 bucket for ALB access logs; unset = access logs off.',
  }),

  tags: defineKey({
    key: 'tags',
    kind: 'object',
    group: 'Tags',
    schema: z
      .record(z.string(), z.string())
      .superRefine((tags, ctx) => {
        for (const [name, value] of Object.entries(tags)) {
          if (name.length < 1 || name.length > 128) ctx.addIssue({ code: 'custom', message: `tag name "${name}" is not 1-128 characters` });
          if (/^aws:/i.test(name)) ctx.addIssue({ code: 'custom', message: `tag name "${name}" uses the reserved aws: prefix` });
          if (value.length > 256) ctx.addIssue({ code: 'custom', message: `tag "${name}" value is longer than 256 characters` });
        }
        if (Object.keys(tags).length > 40) ctx.addIssue({ code: 'custom', message: 'more than 40 tags (AWS allows 50 and realtime-edge adds its own)' });
      }),
    default: {} as Record<string, string>,
    allowed: 'a map of tag names to string values (no aws: prefix)',
    description: 'Tags added to every taggable resource.',
  }),
} as const;

/** Every key in documentation order: backends, then each backend's keys, then the rest by group. */
export const CONFIG_KEYS: readonly ConfigKeySpec[] = (() => {
  const backendSpecs = BACKEND_NAMES.flatMap((name): ConfigKeySpec[] => {
    const specs = backendKeySpecs[name];
    const release = [specs.releaseSha256, specs.allowUnpinnedRelease].filter((spec) => spec !== undefined);
    return [specs.nodes, specs.instanceType, specs.version, ...release] as ConfigKeySpec[];
  });
  const rest: ConfigKeySpec[] = Object.values(keys).filter((spec) => spec !== keys.backends);
  const ordered = [keys.backends, ...backendSpecs, ...rest] as ConfigKeySpec[];
  return CONFIG_GROUPS.flatMap((group) => ordered.filter((spec) => spec.group === group));
})();

export const CONFIG_KEY_NAMES: readonly string[] = CONFIG_KEYS.map((spec) => spec.key);

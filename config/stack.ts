/**
 * Loads and validates stack configuration before any resource exists. Every problem is collected
 * and thrown at once as a `StackConfigError`, one line per key:
 * `realtime-edge:KEY: got VALUE; allowed: ALLOWED (why)`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type * as Pulumi from '@pulumi/pulumi';
import { parse as parseYaml } from 'yaml';
import { maxPingIntervalSeconds, proxyEnforcesOrigins } from '../servers/profile';
import {
  ACM_CERTIFICATE_ARN,
  BACKEND_NAMES,
  CONFIG_KEY_NAMES,
  CONFIG_KEYS,
  CONFIG_NAMESPACE,
  DEFAULT_REGION,
  DERIVED_IDLE_TIMEOUT,
  backendCatalog,
  backendKeySpecs,
  keys,
  regionSchema,
  type BackendName,
  type BackendSettings,
  type ConfigKeySpec,
  type ConfigValueKind,
  type StackConfig,
  type TlsConfig,
} from './schema';
import { cpuArchitectureOfInstanceType } from './instance-types';
import { checkCidr, closestName } from './validators';

export interface StackConfigIssue {
  /** Fully qualified key as typed in `pulumi config set`, e.g. `realtime-edge:proxyCount`. */
  readonly key: string;
  /** The value given (`undefined` when the key is unset). */
  readonly value: unknown;
  readonly allowed: string;
  /** The full line: `KEY: got VALUE; allowed: ALLOWED (why)`. */
  readonly message: string;
}

export class StackConfigError extends Error {
  readonly issues: readonly StackConfigIssue[];

  constructor(issues: readonly StackConfigIssue[], source?: string) {
    const where = source ? ` in ${source}` : '';
    const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
    super(`Invalid realtime-edge stack configuration${where} (${count}):\n${issues.map((i) => `  ${i.message}`).join('\n')}`);
    this.name = 'StackConfigError';
    this.issues = issues;
  }
}

export interface ParseOptions {
  /** `aws:region`; default `DEFAULT_REGION`. */
  readonly region?: unknown;
  /** Stack name; stacks named like `prod`/`production` must have a Redis replica. */
  readonly stackName?: string;
}

// ---- values as Pulumi hands them over --------------------------------------------------------

function showValue(value: unknown): string {
  if (value === undefined || value === null) return '(unset)';
  if (isPlainObject(value) && 'secure' in value) return '[secret]';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(typeof value);
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Unset, including the empty values `Pulumi.yaml` declares as defaults of optional keys. */
function isUnset(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'string' && value.trim() === '');
}

type Coerced = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string };

function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return String(value);
  return undefined;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

/** Turns what Pulumi or a stack file gives (often strings: "3", "true", '["a"]') into the kind the
 * key is declared with. A list may also be a comma-separated string ("a,b"): only our own tools
 * (`npm run local`, `npm run render`) ever see one, since Pulumi refuses a string for a key declared
 * as an array before the program runs, so the docs do not offer that form. */
function coerce(kind: ConfigValueKind, value: unknown): Coerced {
  switch (kind) {
    case 'string': {
      const text = scalarText(value);
      return text === undefined ? { ok: false, reason: 'not a string' } : { ok: true, value: text };
    }
    case 'integer': {
      if (typeof value === 'number') {
        return Number.isSafeInteger(value) ? { ok: true, value } : { ok: false, reason: 'not an integer' };
      }
      if (typeof value === 'string' && /^\s*[+-]?\d{1,15}\s*$/.test(value)) return { ok: true, value: Number(value) };
      return { ok: false, reason: 'not an integer' };
    }
    case 'boolean': {
      if (typeof value === 'boolean') return { ok: true, value };
      const text = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
      if (text === 'true' || text === 'false') return { ok: true, value: text === 'true' };
      return { ok: false, reason: 'not true or false' };
    }
    case 'array': {
      let list: unknown = value;
      if (typeof value === 'string') {
        const text = value.trim();
        if (text.startsWith('[')) {
          const parsed = parseJson(text);
          if (!parsed.ok) return { ok: false, reason: 'not a valid JSON list' };
          list = parsed.value;
        } else {
          list = text.split(',').map((item) => item.trim()).filter((item) => item !== '');
        }
      }
      if (!Array.isArray(list)) return { ok: false, reason: 'not a list' };
      const items: string[] = [];
      for (const [index, item] of list.entries()) {
        const text = scalarText(item);
        if (text === undefined) return { ok: false, reason: `item ${index} is not a string` };
        items.push(text.trim());
      }
      return { ok: true, value: items };
    }
    case 'object': {
      let map: unknown = value;
      if (typeof value === 'string') {
        const parsed = parseJson(value);
        if (!parsed.ok) return { ok: false, reason: 'not a map (YAML mapping or JSON object)' };
        map = parsed.value;
      }
      if (!isPlainObject(map)) return { ok: false, reason: 'not a map (YAML mapping or JSON object)' };
      const entries: [string, string][] = [];
      for (const [name, item] of Object.entries(map)) {
        const text = scalarText(item);
        if (text === undefined) return { ok: false, reason: `value of "${name}" is not a string` };
        entries.push([name, text]);
      }
      return { ok: true, value: Object.fromEntries(entries) };
    }
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

// ---- issues ----------------------------------------------------------------------------------

function issueFor(key: string, value: unknown, allowed: string, reason?: string): StackConfigIssue {
  const message = `${key}: got ${showValue(value)}; allowed: ${allowed}${reason ? ` (${reason})` : ''}`;
  return { key, value, allowed, message };
}

const qualified = (key: string): string => `${CONFIG_NAMESPACE}:${key}`;

/** Per-key results, then the cross-key rules over the keys that were valid on their own. */
class Validation {
  readonly issues: StackConfigIssue[] = [];
  private readonly values = new Map<string, unknown>();
  private readonly invalid = new Set<string>();

  constructor(private readonly raw: Readonly<Record<string, unknown>>) {}

  checkEveryKey(): void {
    const known = new Set(CONFIG_KEY_NAMES);
    for (const key of Object.keys(this.raw)) {
      if (known.has(key)) continue;
      const suggestion = closestName(key, CONFIG_KEY_NAMES);
      this.issues.push(
        issueFor(
          qualified(key),
          this.raw[key],
          'only the keys listed in the README configuration reference',
          suggestion ? `unknown key; did you mean ${qualified(suggestion)}?` : 'unknown key',
        ),
      );
    }
    for (const spec of CONFIG_KEYS) this.checkKey(spec);
  }

  private checkKey(spec: ConfigKeySpec): void {
    const given = this.raw[spec.key];
    if (isUnset(given)) {
      if (spec.default !== undefined) this.values.set(spec.key, spec.default);
      return;
    }
    const coerced = coerce(spec.kind, given);
    if (!coerced.ok) {
      this.fail(spec, given, coerced.reason);
      return;
    }
    const result = spec.schema.safeParse(coerced.value);
    if (!result.success) {
      const reasons = result.error.issues
        .map((issue) => {
          const where = issue.path.length > 0 ? `item ${issue.path.map(String).join('.')}` : '';
          const why = issue.code === 'custom' ? issue.message : '';
          return [where, why].filter(Boolean).join(': ');
        })
        .filter(Boolean);
      this.fail(spec, given, reasons.length > 0 ? [...new Set(reasons)].join('; ') : undefined);
      return;
    }
    this.values.set(spec.key, result.data);
  }

  private fail(spec: ConfigKeySpec, given: unknown, reason?: string): void {
    this.invalid.add(spec.key);
    this.issues.push(issueFor(qualified(spec.key), given, spec.allowed, reason));
  }

  /** The validated value (default applied); `undefined` when unset without default or invalid. */
  get<T>(spec: ConfigKeySpec<T>): T | undefined {
    return this.values.get(spec.key) as T | undefined;
  }

  /** The value of a key with a derived default; `undefined` when it is left to derive (or invalid). */
  derived<T>(spec: ConfigKeySpec<T>): T | undefined {
    const value = this.get(spec);
    return spec.derivedDefault !== undefined && sameValue(value, spec.default) ? undefined : value;
  }

  /** Every given key is valid on its own, so rules over them are meaningful. */
  valid(...specs: ConfigKeySpec[]): boolean {
    return specs.every((spec) => !this.invalid.has(spec.key));
  }

  /** Set to something other than its default (Pulumi fills in declared defaults itself). */
  changed(spec: ConfigKeySpec): boolean {
    return this.values.has(spec.key) && !sameValue(this.values.get(spec.key), spec.default);
  }

  /** A key a rule requires but that is unset. */
  require(spec: ConfigKeySpec, because: string): void {
    if (this.valid(spec) && this.get(spec) === undefined) {
      this.issues.push(issueFor(qualified(spec.key), undefined, spec.allowed, `required because ${because}`));
    }
  }

  /** Shows the value as given: defaults never break a rule (a test checks the defaults parse). */
  reject(spec: ConfigKeySpec, allowed: string, reason?: string): void {
    this.issues.push(issueFor(qualified(spec.key), this.raw[spec.key], allowed, reason));
  }

  /** A key set (to a non-default value) where it has no effect: most likely a mistake. */
  unused(spec: ConfigKeySpec, usedWhen: string): void {
    if (this.valid(spec) && this.changed(spec)) {
      this.reject(spec, `unset (it only applies when ${usedWhen})`);
    }
  }
}

// Variables the stream module knows; http-only ones ($cookie_*, $http_*, $arg_*) are empty there.
const STREAM_HASH_VARIABLE =
  /^\$\{?(?:remote_addr|binary_remote_addr|remote_port|server_addr|server_port|proxy_protocol_addr|proxy_protocol_port|ssl_[a-z_]+|hostname)\}?$/;

function hashKeyVariables(hashKey: string): string[] {
  return hashKey.match(/\$\{?[a-z_][a-z0-9_]*\}?/g) ?? [];
}

function isProductionStack(stackName: string | undefined): boolean {
  return stackName !== undefined && /(^|[^a-z])prod(uction)?($|[^a-z])/i.test(stackName);
}

function checkRegion(region: unknown, issues: StackConfigIssue[]): string {
  if (isUnset(region)) return DEFAULT_REGION;
  if (typeof region === 'string' && regionSchema.safeParse(region).success) return region;
  issues.push(issueFor('aws:region', region, 'an AWS region name such as eu-west-1'));
  return DEFAULT_REGION;
}

function checkCrossKeyRules(v: Validation, region: string, stackName: string | undefined): void {
  const frontend = v.get(keys.frontend);
  const nginxFront = frontend === 'nginx' || frontend === 'both';
  const albFront = frontend === 'alb' || frontend === 'both';
  const frontendValid = v.valid(keys.frontend);

  // ---- frontend-specific keys
  if (frontendValid && !nginxFront) {
    for (const spec of [keys.proxyMode, keys.balance, keys.hashKey, keys.proxyCount, keys.proxyInstanceType, keys.nginxVersion, keys.nginxSha256, keys.hstsMaxAgeSeconds, keys.connectTimeoutSeconds]) {
      v.unused(spec, 'frontend is nginx or both');
    }
  }
  if (frontendValid && !albFront) {
    for (const spec of [keys.acmCertificateArn, keys.albStickiness, keys.albDeregistrationDelaySeconds, keys.albDeletionProtection, keys.albAccessLogsBucket]) {
      v.unused(spec, 'frontend is alb or both');
    }
  }
  if (albFront) v.require(keys.acmCertificateArn, `frontend is ${frontend}`);
  const arn = v.get(keys.acmCertificateArn);
  if (albFront && arn !== undefined) {
    const arnRegion = ACM_CERTIFICATE_ARN.exec(arn)?.[1];
    if (arnRegion !== region) {
      v.reject(keys.acmCertificateArn, keys.acmCertificateArn.allowed, `the certificate is in ${arnRegion}, the stack in ${region}; an ALB can only use a certificate from its own region`);
    }
  }

  // ---- balancing
  const balance = v.get(keys.balance);
  const mode = v.get(keys.proxyMode);
  if (nginxFront && v.valid(keys.balance, keys.proxyMode)) {
    if (balance === 'ip-hash' && mode !== 'http') {
      v.reject(keys.balance, keys.balance.allowed.replace('ip-hash, ', ''), `ip-hash exists only in http mode and proxyMode is ${mode}; use hash with hashKey $remote_addr`);
    }
    if (balance !== 'hash') v.unused(keys.hashKey, 'balance is hash');
    const hashKey = v.get(keys.hashKey);
    if (balance === 'hash' && mode !== 'http' && hashKey !== undefined && v.valid(keys.hashKey)) {
      const httpOnly = hashKeyVariables(hashKey).filter((name) => !STREAM_HASH_VARIABLE.test(name));
      if (httpOnly.length > 0) {
        v.reject(keys.hashKey, 'connection variables only in stream mode: $remote_addr, $binary_remote_addr, $server_port, $ssl_server_name, ...', `${httpOnly.join(', ')} is not available in stream mode (proxyMode ${mode})`);
      }
    }
  }

  // ---- TLS
  const tlsSource = v.get(keys.tlsSource);
  if (v.valid(keys.tlsSource)) {
    if (tlsSource === 'acm' && frontendValid && frontend !== 'alb') {
      v.reject(keys.tlsSource, 'self-signed, ssm, secrets-manager (acm only with frontend alb)', `nginx cannot load an ACM certificate's private key and frontend is ${frontend}`);
    }
    if ((tlsSource === 'ssm' || tlsSource === 'secrets-manager') && frontendValid && !nginxFront) {
      v.reject(keys.tlsSource, 'acm or self-signed with frontend alb', `${tlsSource} provides nginx's certificate and frontend is ${frontend}; the ALB uses acmCertificateArn`);
    }
    if (tlsSource === 'ssm') {
      v.require(keys.tlsCertificateParameter, 'tlsSource is ssm');
      v.require(keys.tlsKeyParameter, 'tlsSource is ssm');
    } else {
      v.unused(keys.tlsCertificateParameter, 'tlsSource is ssm');
      v.unused(keys.tlsKeyParameter, 'tlsSource is ssm');
    }
    if (tlsSource === 'secrets-manager') v.require(keys.tlsSecretId, 'tlsSource is secrets-manager');
    else v.unused(keys.tlsSecretId, 'tlsSource is secrets-manager');
    if (tlsSource !== 'self-signed') v.require(keys.domain, `tlsSource is ${tlsSource}: a real certificate names a domain`);
  }

  // ---- network
  if (v.valid(keys.vpcId, keys.publicSubnetIds, keys.privateSubnetIds)) {
    const publicSubnets = v.get(keys.publicSubnetIds) ?? [];
    const privateSubnets = v.get(keys.privateSubnetIds) ?? [];
    if (v.get(keys.vpcId) !== undefined) {
      const minimumPublic = albFront ? 2 : 1;
      if (publicSubnets.length < minimumPublic) {
        v.reject(keys.publicSubnetIds, albFront ? 'at least 2 subnet ids in different AZs' : 'at least 1 subnet id', `required because vpcId is set${albFront ? ' and an ALB needs subnets in two AZs' : ''}`);
      }
      if (privateSubnets.length < 1) v.reject(keys.privateSubnetIds, 'at least 1 subnet id', 'required because vpcId is set');
      const both = publicSubnets.filter((id) => privateSubnets.includes(id));
      if (both.length > 0) v.reject(keys.privateSubnetIds, 'subnets not listed in publicSubnetIds', `${both.join(', ')} is listed as public and private`);
    } else {
      v.unused(keys.publicSubnetIds, 'vpcId is set (the default VPC brings its own subnets)');
      v.unused(keys.privateSubnetIds, 'vpcId is set (the default VPC brings its own subnets)');
    }
  }

  // ---- Redis
  const redisMode = v.get(keys.redisMode);
  if (v.valid(keys.redisMode)) {
    if (redisMode === 'existing') {
      v.require(keys.redisHost, 'redisMode is existing');
      v.unused(keys.redisNodeType, 'redisMode is elasticache');
      v.unused(keys.redisReplicas, 'redisMode is elasticache');
    } else {
      for (const spec of [keys.redisHost, keys.redisPort, keys.redisTls, keys.redisAuthTokenParameter]) v.unused(spec, 'redisMode is existing');
      const replicas = v.get(keys.redisReplicas);
      if (isProductionStack(stackName) && replicas === 0) {
        v.reject(keys.redisReplicas, 'an integer from 1 to 5 in a production stack', `stack "${stackName}" looks like production and a single Redis node has no automatic failover`);
      }
    }
  }

  // ---- backends
  if (v.valid(keys.backends)) {
    const enabled = new Set(v.get(keys.backends) ?? []);
    for (const name of BACKEND_NAMES) {
      const specs = backendKeySpecs[name];
      if (!enabled.has(name)) {
        for (const spec of Object.values(specs)) v.unused(spec, `backends includes ${name}`);
        continue;
      }
      const { releaseSha256, allowUnpinnedRelease } = specs;
      if (releaseSha256 && allowUnpinnedRelease && v.valid(releaseSha256, allowUnpinnedRelease) && v.get(allowUnpinnedRelease) !== true) {
        const pins = v.get(releaseSha256) ?? {};
        const pinned = Object.keys(pins);
        const release = `${backendCatalog[name].profile.displayName} ${v.get(specs.version) ?? backendCatalog[name].defaultVersion}`;
        const optOut = `or set ${qualified(allowUnpinnedRelease.key)} true`;
        const instanceType = v.valid(specs.instanceType) ? v.get(specs.instanceType) : undefined;
        const architecture = instanceType === undefined ? undefined : cpuArchitectureOfInstanceType(instanceType);
        if (pinned.length === 0) {
          v.reject(releaseSha256, releaseSha256.allowed, `required: nodes verify the ${release} download against it; take the values from the release's checksums file, ${optOut}`);
        } else if (architecture !== undefined && pins[architecture] === undefined) {
          v.reject(
            releaseSha256,
            `a map with an ${architecture} entry, the CPU architecture of ${specs.instanceType.key} ${instanceType}`,
            `only ${pinned.join(', ')} is pinned, so every node would refuse to install ${release} at boot; add the ${architecture} sha256 from the release's checksums file, ${optOut}`,
          );
        }
      }
    }
    const idle = v.derived(keys.idleTimeoutSeconds);
    const profiles = [...enabled].map((name) => backendCatalog[name].profile);
    const unchecked = profiles.filter(proxyEnforcesOrigins).map((p) => p.displayName);
    const origins = v.get(keys.allowedOrigins) ?? [];
    if (nginxFront && mode !== 'http' && unchecked.length > 0 && origins.length > 0 && v.valid(keys.proxyMode, keys.allowedOrigins)) {
      v.reject(
        keys.proxyMode,
        `http while ${keys.allowedOrigins.key} is set`,
        `stream mode passes the WebSocket handshake through unread, so nginx cannot refuse origins outside ${keys.allowedOrigins.key} for ${unchecked.join(' and ')}, which ${unchecked.length > 1 ? 'do' : 'does'} not check Origin on WebSocket upgrades itself; use ${keys.proxyMode.key} http, or an empty ${keys.allowedOrigins.key} to accept any origin`,
      );
    }
    const ping = maxPingIntervalSeconds(profiles);
    if (idle !== undefined && v.valid(keys.idleTimeoutSeconds) && idle <= ping) {
      const slowest = profiles.find((p) => p.pingIntervalSeconds === ping);
      v.reject(keys.idleTimeoutSeconds, `${DERIVED_IDLE_TIMEOUT} (derived) or an integer from ${ping + 1} to 4000`, `${slowest?.displayName} pings every ${ping} s; a shorter idle timeout cuts idle sockets between pings`);
    }
  }
}

function splitCidrs(cidrs: readonly string[]): StackConfig['allowedCidrs'] {
  const ipv4 = cidrs.filter((cidr) => {
    const check = checkCidr(cidr);
    return check.ok && check.family === 4;
  });
  return { ipv4, ipv6: cidrs.filter((cidr) => !ipv4.includes(cidr)) };
}

/** Builds the typed config from values that passed every rule. */
function normalize(v: Validation, region: string): StackConfig {
  const need = <T>(spec: ConfigKeySpec<T>): T => {
    const value = v.get(spec);
    if (value === undefined) throw new Error(`internal: ${spec.key} has no value after validation`);
    return value;
  };
  // Left unset for the components: nginx and the ALB derive it from the backends they front.
  const idleSeconds = v.derived(keys.idleTimeoutSeconds);
  const enabled = new Set(need(keys.backends));
  const backends: Partial<Record<BackendName, BackendSettings>> = {};
  for (const name of BACKEND_NAMES) {
    if (!enabled.has(name)) continue;
    const specs = backendKeySpecs[name];
    backends[name] = {
      nodes: need(specs.nodes),
      instanceType: need(specs.instanceType),
      version: need(specs.version),
      ...(specs.releaseSha256 ? { releaseSha256: need(specs.releaseSha256) } : {}),
      ...(specs.allowUnpinnedRelease ? { allowUnpinnedRelease: need(specs.allowUnpinnedRelease) } : {}),
    };
  }

  const frontend = need(keys.frontend);
  const balance = need(keys.balance);
  const nginxSha256 = v.get(keys.nginxSha256);
  const nginx: StackConfig['nginx'] =
    frontend === 'alb'
      ? undefined
      : {
          count: need(keys.proxyCount),
          instanceType: need(keys.proxyInstanceType),
          mode: need(keys.proxyMode),
          balance: balance === 'hash' ? { strategy: balance, hashKey: need(keys.hashKey) } : { strategy: balance },
          version: need(keys.nginxVersion),
          ...(nginxSha256 !== undefined ? { sha256: nginxSha256 } : {}),
        };
  const accessLogsBucket = v.get(keys.albAccessLogsBucket);
  const alb: StackConfig['alb'] =
    frontend === 'nginx'
      ? undefined
      : {
          certificateArn: need(keys.acmCertificateArn),
          stickiness: need(keys.albStickiness),
          deregistrationDelaySeconds: need(keys.albDeregistrationDelaySeconds),
          deletionProtection: need(keys.albDeletionProtection),
          ...(accessLogsBucket !== undefined ? { accessLogsBucket } : {}),
        };

  const hstsMaxAgeSeconds = need(keys.hstsMaxAgeSeconds);
  const domain = v.get(keys.domain);
  const tlsSource = need(keys.tlsSource);
  let tls: TlsConfig;
  switch (tlsSource) {
    case 'self-signed':
      tls = { source: tlsSource, hstsMaxAgeSeconds, ...(domain !== undefined ? { domain } : {}) };
      break;
    case 'ssm':
      tls = {
        source: tlsSource,
        hstsMaxAgeSeconds,
        domain: need(keys.domain),
        certificateParameter: need(keys.tlsCertificateParameter),
        keyParameter: need(keys.tlsKeyParameter),
      };
      break;
    case 'secrets-manager':
      tls = { source: tlsSource, hstsMaxAgeSeconds, domain: need(keys.domain), secretId: need(keys.tlsSecretId) };
      break;
    case 'acm':
      tls = { source: tlsSource, hstsMaxAgeSeconds, domain: need(keys.domain) };
      break;
  }

  const vpcId = v.get(keys.vpcId);
  const redisMode = need(keys.redisMode);
  const authTokenParameter = v.get(keys.redisAuthTokenParameter);
  const replicas = need(keys.redisReplicas);

  return {
    region,
    backends,
    frontend,
    ...(nginx ? { nginx } : {}),
    ...(alb ? { alb } : {}),
    tls,
    allowedCidrs: splitCidrs(need(keys.allowedCidrs)),
    allowedOrigins: need(keys.allowedOrigins),
    ...(vpcId !== undefined
      ? { vpc: { vpcId, publicSubnetIds: need(keys.publicSubnetIds), privateSubnetIds: need(keys.privateSubnetIds) } }
      : {}),
    redis:
      redisMode === 'elasticache'
        ? { mode: redisMode, nodeType: need(keys.redisNodeType), replicas, automaticFailover: replicas >= 1 }
        : {
            mode: redisMode,
            host: need(keys.redisHost),
            port: need(keys.redisPort),
            tls: need(keys.redisTls),
            ...(authTokenParameter !== undefined ? { authTokenParameter } : {}),
          },
    timeouts: { ...(idleSeconds !== undefined ? { idleSeconds } : {}), connectSeconds: need(keys.connectTimeoutSeconds) },
    maxConnections: need(keys.maxConnections),
    tags: need(keys.tags),
  };
}

const KEY_ORDER = new Map(CONFIG_KEY_NAMES.map((key, index) => [qualified(key), index]));

/**
 * Validates `realtime-edge:` config (keys without the namespace; values as Pulumi or YAML give
 * them) and returns the typed config. Throws `StackConfigError` listing every bad key.
 */
export function parseStackConfig(raw: Readonly<Record<string, unknown>>, options: ParseOptions = {}): StackConfig {
  const issues: StackConfigIssue[] = [];
  const region = checkRegion(options.region, issues);
  const validation = new Validation(raw);
  validation.checkEveryKey();
  checkCrossKeyRules(validation, region, options.stackName);
  issues.push(...validation.issues);
  if (issues.length > 0) {
    const order = (issue: StackConfigIssue) => KEY_ORDER.get(issue.key) ?? -1;
    throw new StackConfigError([...issues].sort((a, b) => order(a) - order(b)), options.stackName && `stack "${options.stackName}"`);
  }
  return normalize(validation, region);
}

/** Splits a stack file's `config:` map: our namespace, `aws:region`, and nothing else. */
export function splitStackConfig(config: Readonly<Record<string, unknown>>): { raw: Record<string, unknown>; region?: unknown } {
  const raw: Record<string, unknown> = {};
  let region: unknown;
  for (const [fullKey, value] of Object.entries(config)) {
    const colon = fullKey.indexOf(':');
    // Pulumi reads an unqualified key as the project's own namespace.
    const namespace = colon < 0 ? CONFIG_NAMESPACE : fullKey.slice(0, colon);
    const key = colon < 0 ? fullKey : fullKey.slice(colon + 1);
    if (namespace === CONFIG_NAMESPACE) raw[key] = value;
    else if (namespace === 'aws' && key === 'region') region = value;
  }
  return region === undefined ? { raw } : { raw, region };
}

/** The stack name of `Pulumi.<stack>.yaml`. */
export function stackNameOf(path: string): string | undefined {
  return /^Pulumi\.(.+)\.ya?ml$/.exec(basename(path))?.[1];
}

/** `dev` -> `<projectDir>/Pulumi.dev.yaml`; an existing path or a `.yaml` name is used as is. */
export function resolveStackFile(stackOrPath: string, projectDir: string = process.cwd()): string {
  if (/\.ya?ml$/.test(stackOrPath) || existsSync(stackOrPath)) return stackOrPath;
  return join(projectDir, `Pulumi.${stackOrPath}.yaml`);
}

/** Reads and validates a `Pulumi.<stack>.yaml` file. */
export function loadStackFile(path: string): StackConfig {
  const text = readFileSync(path, 'utf8');
  const stackName = stackNameOf(path);
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new StackConfigError([issueFor(path, '(file)', 'a YAML stack file', reason)], path);
  }
  if (document !== null && document !== undefined && !isPlainObject(document)) {
    throw new StackConfigError([issueFor(path, document, 'a YAML mapping with a config: section')], path);
  }
  const config = document?.config ?? {};
  if (!isPlainObject(config)) {
    throw new StackConfigError([issueFor(`${path} config`, config, 'a mapping of KEY: VALUE')], path);
  }
  const { raw, region } = splitStackConfig(config);
  return parseStackConfig(raw, { region, ...(stackName !== undefined ? { stackName } : {}) });
}

/**
 * The config of the running Pulumi program (or of a mocked run: `pulumi.runtime.setAllConfig`).
 * Reads the whole config map so unknown `realtime-edge:` keys are reported too.
 */
export function readPulumiConfig(): StackConfig {
  // Loaded here, not at the top: @pulumi/pulumi takes seconds to load, and only a Pulumi program
  // calls this (`npm run local` and the render tool read stack files without it).
  const pulumi = require('@pulumi/pulumi') as typeof Pulumi;
  const { raw, region } = splitStackConfig(pulumi.runtime.allConfig());
  return parseStackConfig(raw, {
    region: region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION,
    stackName: pulumi.getStack(),
  });
}

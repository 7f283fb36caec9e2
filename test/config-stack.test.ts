import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { parse as parseYaml } from 'yaml';
import { NGINX_STABLE_VERSION } from '../nginx/build';
import { NGINX_DEFAULTS } from '../nginx/conf';
import { BACKEND_NAMES, CONFIG_KEYS, DEFAULT_REGION, backendCatalog, backendKeySpecs, keys, type StackConfig } from '../config/schema';
import {
  StackConfigError,
  loadStackFile,
  parseStackConfig,
  readPulumiConfig,
  resolveStackFile,
  type ParseOptions,
  type StackConfigIssue,
} from '../config/stack';

const root = join(__dirname, '..');
/** The release-archive keys of a backend that has them. */
function keys0(name: (typeof BACKEND_NAMES)[number]) {
  const { releaseSha256, allowUnpinnedRelease } = backendKeySpecs[name];
  if (!releaseSha256 || !allowUnpinnedRelease) throw new Error(`${name} has no release-archive keys`);
  return { releaseSha256, allowUnpinnedRelease };
}

const ARN = 'arn:aws:acm:eu-west-1:123456789012:certificate/3f1c9a52-7b4e-4d8a-9c61-0e2f5b7a8d94';

/** The issues a config produces (fails the test when it parses). */
function issuesOf(raw: Record<string, unknown>, options: ParseOptions = { region: 'eu-west-1' }): StackConfigIssue[] {
  try {
    parseStackConfig(raw, options);
  } catch (error) {
    expect(error).toBeInstanceOf(StackConfigError);
    const configError = error as StackConfigError;
    // The message lists every issue, one per line.
    for (const issue of configError.issues) expect(configError.message).toContain(issue.message);
    return [...configError.issues];
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be rejected`);
}

function onlyIssue(raw: Record<string, unknown>, options?: ParseOptions): StackConfigIssue {
  const issues = issuesOf(raw, options);
  expect(issues.map((i) => i.message)).toHaveLength(1);
  return issues[0]!;
}

describe('example stacks', () => {
  it('Pulumi.dev.yaml is the cheap topology', () => {
    const dev = loadStackFile(join(root, 'Pulumi.dev.yaml'));
    expect(Object.keys(dev.backends)).toEqual(['deepstream']);
    expect(dev.backends.deepstream).toEqual({ nodes: 2, instanceType: 't3.micro', version: backendCatalog.deepstream.defaultVersion });
    expect(dev.frontend).toBe('nginx');
    expect(dev.alb).toBeUndefined();
    expect(dev.nginx).toMatchObject({ count: 1, mode: 'both' });
    expect(dev.tls.source).toBe('self-signed');
    expect(dev.redis).toEqual({ mode: 'elasticache', nodeType: 'cache.t4g.micro', replicas: 0, automaticFailover: false });
    expect(dev.vpc).toBeUndefined();
  });

  it('Pulumi.prod.yaml runs both backends on 3 nodes over several subnets, nginx and ALB, replicated Redis, real certificates', () => {
    const prod = loadStackFile(join(root, 'Pulumi.prod.yaml'));
    expect(prod.region).toBe('eu-west-1');
    expect(Object.keys(prod.backends)).toEqual(['deepstream', 'centrifugo']);
    for (const name of BACKEND_NAMES) expect(prod.backends[name]?.nodes).toBe(3);
    expect(prod.vpc?.privateSubnetIds.length).toBeGreaterThanOrEqual(2);
    expect(prod.vpc?.publicSubnetIds.length).toBeGreaterThanOrEqual(2);
    expect(prod.frontend).toBe('both');
    expect(prod.nginx?.count).toBe(2);
    expect(prod.alb).toMatchObject({ certificateArn: expect.stringMatching(/^arn:aws:acm:eu-west-1:/), deletionProtection: true });
    expect(prod.tls).toMatchObject({ source: 'ssm', domain: 'rt.example.com' });
    expect(prod.redis).toMatchObject({ mode: 'elasticache', automaticFailover: true });
    if (prod.redis.mode === 'elasticache') expect(prod.redis.replicas).toBeGreaterThanOrEqual(2);
    expect(prod.tags).toMatchObject({ environment: 'prod', 'cost-center': '4711' });
  });

  it('resolves a stack name or a path to its stack file', () => {
    expect(resolveStackFile('dev', root)).toBe(join(root, 'Pulumi.dev.yaml'));
    expect(resolveStackFile('/some/where/Pulumi.x.yaml', root)).toBe('/some/where/Pulumi.x.yaml');
  });
});

describe('defaults', () => {
  const config = parseStackConfig({});

  it('come from the key table, with pinned versions from the backend registry and the nginx build', () => {
    expect(config.region).toBe(DEFAULT_REGION);
    expect(Object.keys(config.backends)).toEqual(keys.backends.default);
    expect(config.backends.deepstream).toEqual({
      nodes: 2,
      instanceType: 't3.small',
      version: backendCatalog.deepstream.defaultVersion,
    });
    expect(config.frontend).toBe(keys.frontend.default);
    expect(config.nginx).toEqual({
      count: keys.proxyCount.default,
      instanceType: keys.proxyInstanceType.default,
      mode: keys.proxyMode.default,
      balance: { strategy: keys.balance.default },
      version: NGINX_STABLE_VERSION,
    });
    expect(config.alb).toBeUndefined();
    expect(config.tls).toEqual({ source: 'self-signed', hstsMaxAgeSeconds: keys.hstsMaxAgeSeconds.default });
    expect(config.allowedCidrs).toEqual({ ipv4: ['0.0.0.0/0'], ipv6: ['::/0'] });
    expect(config.allowedOrigins).toEqual([]);
    expect(config.redis).toEqual({ mode: 'elasticache', nodeType: keys.redisNodeType.default, replicas: 1, automaticFailover: true });
    // No idle timeout: nginx and the ALB derive it from the backends they front.
    expect(config.timeouts).toEqual({ connectSeconds: keys.connectTimeoutSeconds.default });
    expect(config.maxConnections).toBe(keys.maxConnections.default);
    expect(config.tags).toEqual({});
  });

  it('are the nginx renderer\'s own defaults, so an unset key and an unset spec field render alike', () => {
    expect(keys.connectTimeoutSeconds.default).toBe(NGINX_DEFAULTS.connectSeconds);
    expect(keys.maxConnections.default).toBe(NGINX_DEFAULTS.maxConnections);
  });

  it('leave the idle timeout to be derived, whether unset or 0, and pass an explicit one through', () => {
    for (const name of BACKEND_NAMES) {
      const raw = { backends: [name], ...(backendKeySpecs[name].allowUnpinnedRelease ? { [`${name}AllowUnpinnedRelease`]: true } : {}) };
      expect(parseStackConfig(raw).timeouts.idleSeconds).toBeUndefined();
      expect(parseStackConfig({ ...raw, idleTimeoutSeconds: 0 }).timeouts.idleSeconds).toBeUndefined();
      expect(parseStackConfig({ ...raw, idleTimeoutSeconds: '120' }).timeouts.idleSeconds).toBe(120);
    }
    expect(keys.idleTimeoutSeconds.derivedDefault).toMatch(/75 s for deepstream\.io, 65 s for Centrifugo/);
  });

  it('treat the empty values Pulumi.yaml declares for optional keys as unset', () => {
    expect(parseStackConfig({ vpcId: '', nginxSha256: '', publicSubnetIds: [], tags: {}, domain: '' })).toEqual(config);
  });
});

describe('string coercion (values as `pulumi config set` stores them)', () => {
  it('reads integers, booleans, JSON lists, comma lists and JSON maps from strings', () => {
    const fromStrings = parseStackConfig({
      backends: 'deepstream, centrifugo',
      deepstreamNodes: ' 3 ',
      centrifugoNodes: '+4',
      centrifugoReleaseSha256: JSON.stringify({ x86_64: 'f'.repeat(64) }),
      frontend: 'both',
      acmCertificateArn: ARN,
      albStickiness: 'TRUE',
      albDeletionProtection: 'false',
      allowedCidrs: '["10.0.0.0/8", "2001:db8::/32"]',
      tags: '{"team": "rt", "tier": 1}',
    }, { region: 'eu-west-1' });
    expect(fromStrings.backends.deepstream?.nodes).toBe(3);
    expect(fromStrings.backends.centrifugo).toMatchObject({ nodes: 4, releaseSha256: { x86_64: 'f'.repeat(64) } });
    expect(fromStrings.alb).toMatchObject({ stickiness: true, deletionProtection: false });
    expect(fromStrings.allowedCidrs).toEqual({ ipv4: ['10.0.0.0/8'], ipv6: ['2001:db8::/32'] });
    expect(fromStrings.tags).toEqual({ team: 'rt', tier: '1' });
  });

  it('gives the same result for a typed YAML value and its string form', () => {
    const typed = parseStackConfig({ proxyCount: 3, redisReplicas: 2, albStickiness: true, frontend: 'both', acmCertificateArn: ARN }, { region: 'eu-west-1' });
    const strings = parseStackConfig({ proxyCount: '3', redisReplicas: '2', albStickiness: 'true', frontend: 'both', acmCertificateArn: ARN }, { region: 'eu-west-1' });
    expect(strings).toEqual(typed);
  });

  it('normalizes a sha256 to lowercase', () => {
    const sha = 'AB'.repeat(32);
    expect(parseStackConfig({ nginxSha256: sha }).nginx?.sha256).toBe(sha.toLowerCase());
  });

  it('rejects numbers that are not integers, in either form', () => {
    for (const bad of ['3.5', '1e3', '0x10', 3.5, 'three', true]) {
      const issue = onlyIssue({ proxyCount: bad });
      expect(issue.message).toBe(`realtime-edge:proxyCount: got ${JSON.stringify(bad)}; allowed: ${keys.proxyCount.allowed} (not an integer)`);
    }
  });
});

describe('the running Pulumi program', () => {
  afterEach(() => pulumi.runtime.setAllConfig({}));

  // Pulumi hands the program every declared key (filling in Pulumi.yaml defaults) as strings, with
  // lists and maps JSON-encoded; the program must read the same config as the stack file gives.
  it('reads the same config from Pulumi-style string values with the declared defaults filled in', () => {
    const projectConfig = (parseYaml(require('node:fs').readFileSync(join(root, 'Pulumi.yaml'), 'utf8')) as {
      config: Record<string, { default: unknown }>;
    }).config;
    for (const stack of ['dev', 'prod']) {
      const stackConfig = (parseYaml(require('node:fs').readFileSync(join(root, `Pulumi.${stack}.yaml`), 'utf8')) as {
        config: Record<string, unknown>;
      }).config;
      const merged: Record<string, unknown> = {};
      for (const [key, declaration] of Object.entries(projectConfig)) merged[`realtime-edge:${key}`] = declaration.default;
      Object.assign(merged, stackConfig);
      const asPulumiGivesThem = Object.fromEntries(
        Object.entries(merged).map(([key, value]) => [key, typeof value === 'object' ? JSON.stringify(value) : String(value)]),
      );
      pulumi.runtime.setMocks({ newResource: (a) => ({ id: a.name, state: a.inputs }), call: (a) => a.inputs }, 'realtime-edge', stack, false);
      pulumi.runtime.setAllConfig(asPulumiGivesThem);
      expect(readPulumiConfig()).toEqual(loadStackFile(join(root, `Pulumi.${stack}.yaml`)));
    }
  });

  it('reports unknown keys of our namespace and ignores other namespaces', () => {
    pulumi.runtime.setAllConfig({ 'realtime-edge:proxyCout': '2', 'aws:profile': 'x', 'other:key': 'y', 'aws:region': 'eu-west-1' });
    expect(() => readPulumiConfig()).toThrow(/realtime-edge:proxyCout: got "2".*did you mean realtime-edge:proxyCount\?/);
  });
});

describe('stack files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'realtime-edge-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function stackFile(name: string, text: string): string {
    const path = join(dir, `Pulumi.${name}.yaml`);
    writeFileSync(path, text);
    return path;
  }

  it('reads aws:region, treats unqualified keys as ours and ignores other namespaces', () => {
    const path = stackFile('a', 'config:\n  aws:region: ap-southeast-2\n  aws:profile: ops\n  other:x: 1\n  proxyCount: 2\n');
    const config: StackConfig = loadStackFile(path);
    expect(config.region).toBe('ap-southeast-2');
    expect(config.nginx?.count).toBe(2);
  });

  it('accepts a stack file without config', () => {
    expect(loadStackFile(stackFile('empty', '')).region).toBe(DEFAULT_REGION);
  });

  it('reports a bad region with the other problems', () => {
    const error = (() => {
      try {
        loadStackFile(stackFile('b', 'config:\n  aws:region: mars-1\n  realtime-edge:frontend: nginxx\n'));
      } catch (e) {
        return e as StackConfigError;
      }
      throw new Error('expected an error');
    })();
    expect(error).toBeInstanceOf(StackConfigError);
    expect(error.issues.map((i) => i.message)).toEqual([
      'aws:region: got "mars-1"; allowed: an AWS region name such as eu-west-1',
      'realtime-edge:frontend: got "nginxx"; allowed: nginx, alb, both',
    ]);
    expect(error.message).toContain('stack "b"');
  });

  it('shows an encrypted value as [secret], never its ciphertext', () => {
    const path = stackFile('c', 'config:\n  realtime-edge:domain:\n    secure: v1:AAAAciphertext\n');
    expect(() => loadStackFile(path)).toThrow(/realtime-edge:domain: got \[secret\]; allowed: /);
    expect(() => loadStackFile(path)).not.toThrow(/ciphertext/);
  });

  it('turns a YAML syntax error into a StackConfigError naming the file', () => {
    const path = stackFile('d', 'config:\n  realtime-edge:proxyCount: [1,\n');
    expect(() => loadStackFile(path)).toThrow(StackConfigError);
    expect(() => loadStackFile(path)).toThrow(path);
  });

  it('rejects a config section that is not a mapping', () => {
    expect(() => loadStackFile(stackFile('e', 'config:\n  - a\n'))).toThrow(StackConfigError);
  });
});

interface RuleCase {
  readonly name: string;
  readonly raw: Record<string, unknown>;
  readonly options?: ParseOptions;
  /** The exact issue line expected. */
  readonly message: string;
}

const centrifugoUnpinned = { backends: 'centrifugo', centrifugoAllowUnpinnedRelease: true };
const sslBase = { tlsSource: 'ssm', domain: 'rt.example.com', tlsCertificateParameter: '/c', tlsKeyParameter: '/k' };

const ruleCases: readonly RuleCase[] = [
  {
    name: 'an unknown key, with a suggestion',
    raw: { proxyCout: 2 },
    message: 'realtime-edge:proxyCout: got 2; allowed: only the keys listed in the README configuration reference (unknown key; did you mean realtime-edge:proxyCount?)',
  },
  {
    name: 'an unknown key differing only in case',
    raw: { ProxyMode: 'http' },
    message: 'realtime-edge:ProxyMode: got "http"; allowed: only the keys listed in the README configuration reference (unknown key; did you mean realtime-edge:proxyMode?)',
  },
  {
    name: 'an unknown key far from any known one',
    raw: { sshCidr: '10.0.0.0/8' },
    message: 'realtime-edge:sshCidr: got "10.0.0.0/8"; allowed: only the keys listed in the README configuration reference (unknown key)',
  },
  {
    name: 'an unknown backend',
    raw: { backends: ['deepstream', 'socketio'] },
    message: `realtime-edge:backends: got ["deepstream","socketio"]; allowed: ${keys.backends.allowed} (item 1)`,
  },
  {
    name: 'no backend',
    raw: { backends: [] },
    message: `realtime-edge:backends: got []; allowed: ${keys.backends.allowed}`,
  },
  {
    name: 'a backend listed twice',
    raw: { backends: 'deepstream,deepstream' },
    message: `realtime-edge:backends: got "deepstream,deepstream"; allowed: ${keys.backends.allowed} (duplicate entries)`,
  },
  {
    name: 'a version range instead of a pinned version',
    raw: { deepstreamVersion: '^7.0.0' },
    message: 'realtime-edge:deepstreamVersion: got "^7.0.0"; allowed: an exact 7.x.y version, e.g. 7.0.2',
  },
  {
    name: 'another major version than the renderer writes config for',
    raw: { ...centrifugoUnpinned, centrifugoVersion: '5.4.9' },
    message: `realtime-edge:centrifugoVersion: got "5.4.9"; allowed: an exact 6.x.y version, e.g. ${backendCatalog.centrifugo.defaultVersion} (realtime-edge renders Centrifugo 6.x configuration)`,
  },
  {
    name: 'a node count of zero',
    raw: { deepstreamNodes: 0 },
    message: 'realtime-edge:deepstreamNodes: got 0; allowed: an integer from 1 to 50',
  },
  {
    name: 'settings of a backend that is not enabled',
    raw: { centrifugoNodes: 5 },
    message: 'realtime-edge:centrifugoNodes: got 5; allowed: unset (it only applies when backends includes centrifugo)',
  },
  {
    name: 'a release-archive backend without a pinned checksum',
    raw: { backends: 'centrifugo' },
    message: `realtime-edge:centrifugoReleaseSha256: got (unset); allowed: ${keys0('centrifugo').releaseSha256.allowed} (required: nodes verify the Centrifugo ${backendCatalog.centrifugo.defaultVersion} download against it; take the values from the release's checksums file, or set realtime-edge:centrifugoAllowUnpinnedRelease true)`,
  },
  {
    name: 'a Graviton instance type with only an x86_64 checksum',
    raw: { backends: 'centrifugo', centrifugoInstanceType: 'c7g.large', centrifugoReleaseSha256: { x86_64: 'a'.repeat(64) } },
    message: `realtime-edge:centrifugoReleaseSha256: got {"x86_64":"${'a'.repeat(64)}"}; allowed: a map with an aarch64 entry, the CPU architecture of centrifugoInstanceType c7g.large (only x86_64 is pinned, so every node would refuse to install Centrifugo ${backendCatalog.centrifugo.defaultVersion} at boot; add the aarch64 sha256 from the release's checksums file, or set realtime-edge:centrifugoAllowUnpinnedRelease true)`,
  },
  {
    name: 'an x86 instance type with only an aarch64 checksum',
    raw: { backends: 'centrifugo', centrifugoReleaseSha256: { aarch64: 'a'.repeat(64) } },
    message: `realtime-edge:centrifugoReleaseSha256: got {"aarch64":"${'a'.repeat(64)}"}; allowed: a map with an x86_64 entry, the CPU architecture of centrifugoInstanceType t3.small (only aarch64 is pinned, so every node would refuse to install Centrifugo ${backendCatalog.centrifugo.defaultVersion} at boot; add the x86_64 sha256 from the release's checksums file, or set realtime-edge:centrifugoAllowUnpinnedRelease true)`,
  },
  {
    name: 'a checksum for an unknown architecture',
    raw: { backends: 'centrifugo', centrifugoReleaseSha256: { amd64: 'a'.repeat(64) } },
    message: `realtime-edge:centrifugoReleaseSha256: got {"amd64":"${'a'.repeat(64)}"}; allowed: ${keys0('centrifugo').releaseSha256.allowed} ("amd64" is not one of x86_64, aarch64)`,
  },
  {
    name: 'an opt-out of pinning written as a word',
    raw: { backends: 'centrifugo', centrifugoAllowUnpinnedRelease: 'yes' },
    message: 'realtime-edge:centrifugoAllowUnpinnedRelease: got "yes"; allowed: true or false (not true or false)',
  },
  {
    name: 'a bad instance type',
    raw: { proxyInstanceType: 't3-small' },
    message: `realtime-edge:proxyInstanceType: got "t3-small"; allowed: ${keys.proxyInstanceType.allowed}`,
  },
  {
    name: 'an unknown frontend',
    raw: { frontend: 'haproxy' },
    message: 'realtime-edge:frontend: got "haproxy"; allowed: nginx, alb, both',
  },
  {
    name: 'an unknown proxy mode',
    raw: { proxyMode: 'tcp' },
    message: 'realtime-edge:proxyMode: got "tcp"; allowed: http, stream, both',
  },
  {
    name: 'an unknown balancing strategy',
    raw: { balance: 'least_conn' },
    message: 'realtime-edge:balance: got "least_conn"; allowed: round-robin, least-conn, ip-hash, hash, random-two-least-conn',
  },
  {
    name: 'ip-hash in stream mode',
    raw: { balance: 'ip-hash', proxyMode: 'stream' },
    message: 'realtime-edge:balance: got "ip-hash"; allowed: round-robin, least-conn, hash, random-two-least-conn (ip-hash exists only in http mode and proxyMode is stream; use hash with hashKey $remote_addr)',
  },
  {
    name: 'a cookie hash key in stream mode',
    raw: { balance: 'hash', hashKey: '$cookie_session', proxyMode: 'both' },
    message: 'realtime-edge:hashKey: got "$cookie_session"; allowed: connection variables only in stream mode: $remote_addr, $binary_remote_addr, $server_port, $ssl_server_name, ... ($cookie_session is not available in stream mode (proxyMode both))',
  },
  {
    name: 'allowed origins with nginx stream listeners in front of deepstream',
    raw: { proxyMode: 'both', allowedOrigins: ['https://app.example.com'] },
    message: 'realtime-edge:proxyMode: got "both"; allowed: http while allowedOrigins is set (stream mode passes the WebSocket handshake through unread, so nginx cannot refuse origins outside allowedOrigins for deepstream.io, which does not check Origin on WebSocket upgrades itself; use proxyMode http, or an empty allowedOrigins to accept any origin)',
  },
  {
    name: 'allowed origins with nginx stream mode beside an ALB, deepstream among the backends',
    raw: { ...centrifugoUnpinned, backends: ['centrifugo', 'deepstream'], frontend: 'both', acmCertificateArn: ARN, proxyMode: 'stream', allowedOrigins: ['https://app.example.com'] },
    message: 'realtime-edge:proxyMode: got "stream"; allowed: http while allowedOrigins is set (stream mode passes the WebSocket handshake through unread, so nginx cannot refuse origins outside allowedOrigins for deepstream.io, which does not check Origin on WebSocket upgrades itself; use proxyMode http, or an empty allowedOrigins to accept any origin)',
  },
  {
    name: 'a hash key without balance hash',
    raw: { hashKey: '$cookie_session' },
    message: 'realtime-edge:hashKey: got "$cookie_session"; allowed: unset (it only applies when balance is hash)',
  },
  {
    name: 'a hash key that could inject nginx config',
    raw: { balance: 'hash', hashKey: '$remote_addr; include /etc/passwd' },
    message: `realtime-edge:hashKey: got "$remote_addr; include /etc/passwd"; allowed: ${keys.hashKey.allowed}`,
  },
  {
    name: 'no proxy host',
    raw: { proxyCount: 0 },
    message: `realtime-edge:proxyCount: got 0; allowed: ${keys.proxyCount.allowed}`,
  },
  {
    name: 'a floating nginx version',
    raw: { nginxVersion: 'stable' },
    message: `realtime-edge:nginxVersion: got "stable"; allowed: an exact nginx version, e.g. ${NGINX_STABLE_VERSION}`,
  },
  {
    name: 'a truncated sha256',
    raw: { nginxSha256: 'abc123' },
    message: 'realtime-edge:nginxSha256: got "abc123"; allowed: 64 hexadecimal digits (sha256 of nginx-VERSION.tar.gz)',
  },
  {
    name: 'nginx settings without nginx',
    raw: { frontend: 'alb', acmCertificateArn: ARN, tlsSource: 'acm', domain: 'rt.example.com', proxyCount: 3 },
    message: 'realtime-edge:proxyCount: got 3; allowed: unset (it only applies when frontend is nginx or both)',
  },
  {
    name: 'an ALB without certificate',
    raw: { frontend: 'both' },
    message: `realtime-edge:acmCertificateArn: got (unset); allowed: ${keys.acmCertificateArn.allowed} (required because frontend is both)`,
  },
  {
    name: 'an ACM certificate from another region',
    raw: { frontend: 'both', acmCertificateArn: ARN.replace('eu-west-1', 'us-east-1') },
    message: `realtime-edge:acmCertificateArn: got "${ARN.replace('eu-west-1', 'us-east-1')}"; allowed: ${keys.acmCertificateArn.allowed} (the certificate is in us-east-1, the stack in eu-west-1; an ALB can only use a certificate from its own region)`,
  },
  {
    name: 'a malformed ACM ARN',
    raw: { frontend: 'alb', acmCertificateArn: 'arn:aws:iam::123456789012:server-certificate/x' },
    message: `realtime-edge:acmCertificateArn: got "arn:aws:iam::123456789012:server-certificate/x"; allowed: ${keys.acmCertificateArn.allowed}`,
  },
  {
    name: 'ALB settings without an ALB',
    raw: { albDeletionProtection: true },
    message: 'realtime-edge:albDeletionProtection: got true; allowed: unset (it only applies when frontend is alb or both)',
  },
  {
    name: 'an unknown TLS source',
    raw: { tlsSource: 'letsencrypt' },
    message: 'realtime-edge:tlsSource: got "letsencrypt"; allowed: self-signed, ssm, secrets-manager, acm',
  },
  {
    name: 'ssm without the key parameter',
    raw: { tlsSource: 'ssm', domain: 'rt.example.com', tlsCertificateParameter: '/tls/cert' },
    message: `realtime-edge:tlsKeyParameter: got (unset); allowed: ${keys.tlsKeyParameter.allowed} (required because tlsSource is ssm)`,
  },
  {
    name: 'secrets-manager without a secret',
    raw: { tlsSource: 'secrets-manager', domain: 'rt.example.com' },
    message: `realtime-edge:tlsSecretId: got (unset); allowed: ${keys.tlsSecretId.allowed} (required because tlsSource is secrets-manager)`,
  },
  {
    name: 'a real certificate without a domain',
    raw: { tlsSource: 'secrets-manager', tlsSecretId: 'prod/tls' },
    message: `realtime-edge:domain: got (unset); allowed: ${keys.domain.allowed} (required because tlsSource is secrets-manager: a real certificate names a domain)`,
  },
  {
    name: 'acm for nginx',
    raw: { tlsSource: 'acm', domain: 'rt.example.com' },
    message: 'realtime-edge:tlsSource: got "acm"; allowed: self-signed, ssm, secrets-manager (acm only with frontend alb) (nginx cannot load an ACM certificate\'s private key and frontend is nginx)',
  },
  {
    name: 'an nginx certificate source without nginx',
    raw: { ...sslBase, frontend: 'alb', acmCertificateArn: ARN },
    message: 'realtime-edge:tlsSource: got "ssm"; allowed: acm or self-signed with frontend alb (ssm provides nginx\'s certificate and frontend is alb; the ALB uses acmCertificateArn)',
  },
  {
    name: 'a secret id with another TLS source',
    raw: { ...sslBase, tlsSecretId: 'prod/tls' },
    message: 'realtime-edge:tlsSecretId: got "prod/tls"; allowed: unset (it only applies when tlsSource is secrets-manager)',
  },
  {
    name: 'an SSM parameter name with spaces',
    raw: { ...sslBase, tlsKeyParameter: '/tls/my key' },
    message: `realtime-edge:tlsKeyParameter: got "/tls/my key"; allowed: ${keys.tlsKeyParameter.allowed}`,
  },
  {
    name: 'a domain with a scheme',
    raw: { domain: 'https://rt.example.com' },
    message: `realtime-edge:domain: got "https://rt.example.com"; allowed: ${keys.domain.allowed}`,
  },
  {
    name: 'a negative HSTS max-age',
    raw: { hstsMaxAgeSeconds: -1 },
    message: `realtime-edge:hstsMaxAgeSeconds: got -1; allowed: ${keys.hstsMaxAgeSeconds.allowed}`,
  },
  {
    name: 'a CIDR with host bits',
    raw: { allowedCidrs: ['203.0.113.7/24'] },
    message: `realtime-edge:allowedCidrs: got ["203.0.113.7/24"]; allowed: ${keys.allowedCidrs.allowed} (item 0: "203.0.113.7/24" has host bits set; did you mean 203.0.113.0/24?)`,
  },
  {
    name: 'an IPv6 CIDR with host bits',
    raw: { allowedCidrs: '2001:db8::1/64' },
    message: `realtime-edge:allowedCidrs: got "2001:db8::1/64"; allowed: ${keys.allowedCidrs.allowed} (item 0: "2001:db8::1/64" has host bits set; did you mean 2001:db8::/64?)`,
  },
  {
    name: 'an address without prefix',
    raw: { allowedCidrs: ['0.0.0.0/0', '10.1.2.3'] },
    message: `realtime-edge:allowedCidrs: got ["0.0.0.0/0","10.1.2.3"]; allowed: ${keys.allowedCidrs.allowed} (item 1: "10.1.2.3" is not ADDRESS/PREFIX)`,
  },
  {
    name: 'no allowed network at all',
    raw: { allowedCidrs: [] },
    message: `realtime-edge:allowedCidrs: got []; allowed: ${keys.allowedCidrs.allowed}`,
  },
  {
    name: 'an origin with a path',
    raw: { allowedOrigins: ['https://app.example.com/login'] },
    message: `realtime-edge:allowedOrigins: got ["https://app.example.com/login"]; allowed: ${keys.allowedOrigins.allowed} (item 0)`,
  },
  {
    name: 'an origin with a port out of range',
    raw: { allowedOrigins: ['https://app.example.com', 'https://app.example.com:99999'] },
    message: `realtime-edge:allowedOrigins: got ["https://app.example.com","https://app.example.com:99999"]; allowed: ${keys.allowedOrigins.allowed} (item 1: expected a port 1-65535)`,
  },
  {
    name: 'a VPC without subnets',
    raw: { vpcId: 'vpc-0a1b2c3d4e5f60718', privateSubnetIds: ['subnet-0dd1b2c3d4e5f6074'] },
    message: 'realtime-edge:publicSubnetIds: got (unset); allowed: at least 1 subnet id (required because vpcId is set)',
  },
  {
    name: 'an ALB in a single public subnet',
    raw: {
      vpcId: 'vpc-0a1b2c3d4e5f60718',
      frontend: 'alb',
      tlsSource: 'acm',
      domain: 'rt.example.com',
      acmCertificateArn: ARN,
      publicSubnetIds: 'subnet-0aa1b2c3d4e5f6071',
      privateSubnetIds: 'subnet-0dd1b2c3d4e5f6074',
    },
    message: 'realtime-edge:publicSubnetIds: got "subnet-0aa1b2c3d4e5f6071"; allowed: at least 2 subnet ids in different AZs (required because vpcId is set and an ALB needs subnets in two AZs)',
  },
  {
    name: 'subnets without a VPC',
    raw: { privateSubnetIds: ['subnet-0dd1b2c3d4e5f6074'] },
    message: 'realtime-edge:privateSubnetIds: got ["subnet-0dd1b2c3d4e5f6074"]; allowed: unset (it only applies when vpcId is set (the default VPC brings its own subnets))',
  },
  {
    name: 'a subnet both public and private',
    raw: { vpcId: 'vpc-0a1b2c3d', publicSubnetIds: 'subnet-0aa1b2c3', privateSubnetIds: 'subnet-0aa1b2c3' },
    message: 'realtime-edge:privateSubnetIds: got "subnet-0aa1b2c3"; allowed: subnets not listed in publicSubnetIds (subnet-0aa1b2c3 is listed as public and private)',
  },
  {
    name: 'a malformed subnet id',
    raw: { vpcId: 'vpc-0a1b2c3d', publicSubnetIds: 'subnet-0aa1b2c3', privateSubnetIds: 'sn-123' },
    message: `realtime-edge:privateSubnetIds: got "sn-123"; allowed: ${keys.privateSubnetIds.allowed} (item 0)`,
  },
  {
    name: 'an existing Redis without host',
    raw: { redisMode: 'existing' },
    message: `realtime-edge:redisHost: got (unset); allowed: ${keys.redisHost.allowed} (required because redisMode is existing)`,
  },
  {
    name: 'a Redis host that is neither a DNS name nor an IP address',
    raw: { redisMode: 'existing', redisHost: ':' },
    message: `realtime-edge:redisHost: got ":"; allowed: ${keys.redisHost.allowed}`,
  },
  {
    name: 'a Redis host that is an IPv4 address out of range',
    raw: { redisMode: 'existing', redisHost: '999.999.999.999' },
    message: `realtime-edge:redisHost: got "999.999.999.999"; allowed: ${keys.redisHost.allowed}`,
  },
  {
    name: 'ElastiCache settings with an existing Redis',
    raw: { redisMode: 'existing', redisHost: 'redis.internal', redisReplicas: 2 },
    message: 'realtime-edge:redisReplicas: got 2; allowed: unset (it only applies when redisMode is elasticache)',
  },
  {
    name: 'existing-endpoint settings with ElastiCache',
    raw: { redisHost: 'redis.internal' },
    message: 'realtime-edge:redisHost: got "redis.internal"; allowed: unset (it only applies when redisMode is existing)',
  },
  {
    name: 'a single Redis node in a production stack',
    raw: { redisReplicas: 0 },
    options: { region: 'eu-west-1', stackName: 'prod' },
    message: 'realtime-edge:redisReplicas: got 0; allowed: an integer from 1 to 5 in a production stack (stack "prod" looks like production and a single Redis node has no automatic failover)',
  },
  {
    name: 'more replicas than ElastiCache allows',
    raw: { redisReplicas: 6 },
    message: `realtime-edge:redisReplicas: got 6; allowed: ${keys.redisReplicas.allowed}`,
  },
  {
    name: 'a bad ElastiCache node type',
    raw: { redisNodeType: 't4g.micro' },
    message: `realtime-edge:redisNodeType: got "t4g.micro"; allowed: ${keys.redisNodeType.allowed}`,
  },
  {
    name: 'a port out of range',
    raw: { redisMode: 'existing', redisHost: '10.0.0.5', redisPort: 70000 },
    message: `realtime-edge:redisPort: got 70000; allowed: ${keys.redisPort.allowed}`,
  },
  {
    name: 'a boolean written as yes',
    raw: { redisMode: 'existing', redisHost: '10.0.0.5', redisTls: 'yes' },
    message: 'realtime-edge:redisTls: got "yes"; allowed: true or false (not true or false)',
  },
  {
    name: 'an SSM parameter name for the Redis token with a space',
    raw: { redisMode: 'existing', redisHost: '10.0.0.5', redisAuthTokenParameter: 'redis token' },
    message: `realtime-edge:redisAuthTokenParameter: got "redis token"; allowed: ${keys.redisAuthTokenParameter.allowed}`,
  },
  {
    name: 'stickiness written as a word',
    raw: { frontend: 'both', acmCertificateArn: ARN, albStickiness: 'sticky' },
    message: 'realtime-edge:albStickiness: got "sticky"; allowed: true or false (not true or false)',
  },
  {
    name: 'an idle timeout below the deepstream ping interval',
    raw: { idleTimeoutSeconds: 30 },
    message: 'realtime-edge:idleTimeoutSeconds: got 30; allowed: 0 (derived) or an integer from 31 to 4000 (deepstream.io pings every 30 s; a shorter idle timeout cuts idle sockets between pings)',
  },
  {
    name: 'an idle timeout below the Centrifugo ping interval',
    raw: { ...centrifugoUnpinned, idleTimeoutSeconds: '25' },
    message: 'realtime-edge:idleTimeoutSeconds: got "25"; allowed: 0 (derived) or an integer from 26 to 4000 (Centrifugo pings every 25 s; a shorter idle timeout cuts idle sockets between pings)',
  },
  {
    name: 'a connect timeout nginx cannot honour',
    raw: { connectTimeoutSeconds: 120 },
    message: `realtime-edge:connectTimeoutSeconds: got 120; allowed: ${keys.connectTimeoutSeconds.allowed}`,
  },
  {
    // The nginx renderer would refuse it mid-deploy (worker_rlimit_nofile above fs.nr_open).
    name: 'a connection target above what one nginx can be sized for',
    raw: { maxConnections: 600000 },
    message: 'realtime-edge:maxConnections: got 600000; allowed: an integer from 64 to 500000',
  },
  {
    name: 'a tiny connection target',
    raw: { maxConnections: 10 },
    message: `realtime-edge:maxConnections: got 10; allowed: ${keys.maxConnections.allowed}`,
  },
  {
    name: 'a bucket name with capitals',
    raw: { frontend: 'both', acmCertificateArn: ARN, albAccessLogsBucket: 'My-Logs' },
    message: `realtime-edge:albAccessLogsBucket: got "My-Logs"; allowed: ${keys.albAccessLogsBucket.allowed}`,
  },
  {
    name: 'a deregistration delay above the AWS limit',
    raw: { frontend: 'both', acmCertificateArn: ARN, albDeregistrationDelaySeconds: 3601 },
    message: `realtime-edge:albDeregistrationDelaySeconds: got 3601; allowed: ${keys.albDeregistrationDelaySeconds.allowed}`,
  },
  {
    name: 'a reserved tag name',
    raw: { tags: { 'aws:owner': 'me' } },
    message: `realtime-edge:tags: got {"aws:owner":"me"}; allowed: ${keys.tags.allowed} (tag name "aws:owner" uses the reserved aws: prefix)`,
  },
  {
    name: 'tags as a list',
    raw: { tags: ['a=b'] },
    message: `realtime-edge:tags: got ["a=b"]; allowed: ${keys.tags.allowed} (not a map (YAML mapping or JSON object))`,
  },
  {
    name: 'a nested tag value',
    raw: { tags: { team: { name: 'rt' } } },
    message: `realtime-edge:tags: got {"team":{"name":"rt"}}; allowed: ${keys.tags.allowed} (value of "team" is not a string)`,
  },
  {
    name: 'a bad region',
    raw: {},
    options: { region: 'Europe' },
    message: 'aws:region: got "Europe"; allowed: an AWS region name such as eu-west-1',
  },
];

describe('validation rules', () => {
  it.each(ruleCases.map((c) => [c.name, c] as const))('rejects %s, naming key, value and what is allowed', (_name, rule) => {
    const issue = onlyIssue(rule.raw, rule.options ?? { region: 'eu-west-1' });
    expect(issue.message).toBe(rule.message);
    expect(rule.message.startsWith(`${issue.key}: got `)).toBe(true);
  });

  it('covers every key with at least one rule case', () => {
    const covered = new Set(ruleCases.flatMap((c) => [...Object.keys(c.raw), c.message.split(':')[1]!]));
    const uncovered = CONFIG_KEYS.map((spec) => spec.key).filter((key) => !covered.has(key) && !/InstanceType$|Nodes$|Version$/.test(key));
    expect(uncovered).toEqual([]);
  });

  it('reports every bad key at once, in documentation order', () => {
    const issues = issuesOf(
      {
        tags: 'x',
        proxyCout: 1,
        frontend: 'alb',
        deepstreamNodes: -1,
        redisMode: 'existing',
        allowedCidrs: '10.0.0.0/33',
        tlsSource: 'ssm',
      },
      { region: 'eu-west-1', stackName: 'dev' },
    );
    expect(issues.map((i) => i.key)).toEqual([
      'realtime-edge:proxyCout',
      'realtime-edge:deepstreamNodes',
      'realtime-edge:tlsSource',
      'realtime-edge:tlsCertificateParameter',
      'realtime-edge:tlsKeyParameter',
      'realtime-edge:acmCertificateArn',
      'realtime-edge:domain',
      'realtime-edge:allowedCidrs',
      'realtime-edge:redisHost',
      'realtime-edge:tags',
    ]);
  });

  it('accepts the combinations the rules allow', () => {
    const albOnly = parseStackConfig(
      { frontend: 'alb', tlsSource: 'acm', domain: 'rt.example.com', acmCertificateArn: ARN, albStickiness: true },
      { region: 'eu-west-1', stackName: 'production' },
    );
    expect(albOnly.nginx).toBeUndefined();
    expect(albOnly.tls).toEqual({ source: 'acm', domain: 'rt.example.com', hstsMaxAgeSeconds: 31536000 });
    const hashed = parseStackConfig({ balance: 'hash', hashKey: '$ssl_server_name', proxyMode: 'stream' });
    expect(hashed.nginx?.balance).toEqual({ strategy: 'hash', hashKey: '$ssl_server_name' });
    const existing = parseStackConfig({ redisMode: 'existing', redisHost: 'redis.internal', redisTls: 'false', redisAuthTokenParameter: '/redis/auth' });
    expect(existing.redis).toEqual({ mode: 'existing', host: 'redis.internal', port: 6379, tls: false, authTokenParameter: '/redis/auth' });
    const pinned = parseStackConfig({ backends: 'centrifugo', centrifugoInstanceType: 'c7g.large', centrifugoReleaseSha256: '{"aarch64": "' + 'AB'.repeat(32) + '"}' });
    expect(pinned.backends.centrifugo).toMatchObject({ releaseSha256: { aarch64: 'ab'.repeat(32) }, allowUnpinnedRelease: false });
    const partlyPinned = parseStackConfig({ backends: 'centrifugo', centrifugoReleaseSha256: { aarch64: 'a'.repeat(64) }, centrifugoAllowUnpinnedRelease: true });
    expect(partlyPinned.backends.centrifugo).toMatchObject({ releaseSha256: { aarch64: 'a'.repeat(64) }, allowUnpinnedRelease: true });
    const unpinned = parseStackConfig({ backends: 'centrifugo', centrifugoAllowUnpinnedRelease: 'true' });
    expect(unpinned.backends.centrifugo).toMatchObject({ releaseSha256: {}, allowUnpinnedRelease: true });
    expect(parseStackConfig({}).backends.deepstream).not.toHaveProperty('releaseSha256');
    // Origins need no reading proxy where every enabled backend checks them itself, where nginx
    // runs in http mode, or where only the ALB fronts the backends.
    const origins = { allowedOrigins: ['https://app.example.com'] };
    expect(parseStackConfig({ ...centrifugoUnpinned, ...origins, proxyMode: 'stream' }).allowedOrigins).toEqual(origins.allowedOrigins);
    expect(parseStackConfig({ ...origins, proxyMode: 'http' }).nginx?.mode).toBe('http');
    expect(parseStackConfig({ ...origins, frontend: 'alb', tlsSource: 'acm', domain: 'rt.example.com', acmCertificateArn: ARN }, { region: 'eu-west-1' }).nginx).toBeUndefined();
    expect(parseStackConfig({ proxyMode: 'stream', allowedOrigins: [] }).nginx?.mode).toBe('stream');
  });

  it('refuses origins in stream mode for whichever backend its profile says does not check them', () => {
    const raw = { ...centrifugoUnpinned, allowedOrigins: ['https://app.example.com'], proxyMode: 'stream' };
    expect(parseStackConfig(raw).allowedOrigins).toEqual(raw.allowedOrigins);
    const profile = backendCatalog.centrifugo.profile;
    const replaced = jest.replaceProperty(profile, 'checksOriginOnUpgrade', false);
    try {
      expect(onlyIssue(raw).message).toContain(`so nginx cannot refuse origins outside allowedOrigins for ${profile.displayName}, which`);
    } finally {
      replaced.restore();
    }
    const secretsManager = parseStackConfig({ tlsSource: 'secrets-manager', tlsSecretId: 'prod/rt/tls', domain: 'rt.example.com' });
    expect(secretsManager.tls).toEqual({ source: 'secrets-manager', secretId: 'prod/rt/tls', domain: 'rt.example.com', hstsMaxAgeSeconds: 31536000 });
  });
});

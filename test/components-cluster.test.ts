/**
 * The shared cluster mechanism with a backend that is neither deepstream nor Centrifugo (a third
 * server is one profile, no code path), the classes that fix a backend, Redis passthrough, and the
 * pure helpers of components/.
 */
import { gzipSync } from 'node:zlib';
import { AlbFrontend, albRoutes } from '../components/albFrontend';
import { CentrifugoCluster, DeepstreamCluster, ServerCluster } from '../components/cluster';
import { USER_DATA_LIMIT_BYTES, architectureOfInstanceType, decodeUserData, encodeUserData } from '../components/host';
import { NginxProxy } from '../components/nginxProxy';
import { Redis, replicationGroupId } from '../components/redis';
import { renderNginxConf } from '../nginx/conf';
import { proxyListenerPorts } from '../nginx/proxy-spec';
import { serverBackends } from '../servers';
import { renderBootstrapScript } from '../servers/bootstrap';
import type { NodeRenderInput, RenderedFile, ServerBackend } from '../servers/profile';
import { checkNginxConf, makeNginxPrefix } from './helpers/nginx';
import { MOCK_SECRET_MARKER, Registry, TYPES, runWithMocks, unwrapSecret, valueOf } from './helpers/pulumi-mocks';

/** A made-up third server: one profile and two renderers, nothing else. */
const echoBackend: ServerBackend = {
  profile: {
    name: 'echo',
    displayName: 'Echo',
    port: 7000,
    routes: [
      { path: '/ws', kind: 'websocket' },
      { path: '/healthz', kind: 'http', exact: true },
    ],
    healthPath: '/healthz',
    clientPath: '/ws',
    pingIntervalSeconds: 20,
  },
  defaultVersion: '1.2.3',
  secrets: [{ key: 'apiToken', description: 'API token', length: 40 }],
  renderConfigFiles(input: NodeRenderInput): RenderedFile[] {
    const config = { node: input.nodeName, version: input.version, redis: input.redis, secrets: input.secretParameters, origins: input.allowedOrigins };
    return [{ path: '/etc/echo/echo.json', content: `${JSON.stringify(config, null, 2)}\n`, mode: '0644', kind: 'echo-config' }];
  },
  renderUserData(input: NodeRenderInput): string {
    return renderBootstrapScript({ description: `echo node ${input.nodeName}`, files: this.renderConfigFiles(input) });
  },
};

const SUBNETS = ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'];

let registry: Registry;
let cluster: ServerCluster;
let proxy: NginxProxy;

beforeAll(async () => {
  const run = await runWithMocks(() => {
    const redis = new Redis('redis', {
      mode: 'existing',
      endpoint: { host: 'redis.internal.example', port: 6380, tls: true, authTokenParameter: '/shared/redis-token' },
    });
    const echo = new ServerCluster('echo', {
      backend: echoBackend,
      nodeCount: 5,
      instanceType: 'm7g.medium',
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: SUBNETS,
      redis: redis.clientArgs,
      allowedOrigins: ['https://app.example.com'],
    });
    const nginx = new NginxProxy('proxy', {
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: ['subnet-0ccccccccccccccc3'],
      backends: [{ profile: echoBackend.profile, nodeAddresses: echo.privateIps, securityGroupId: echo.securityGroupId }],
      tls: { source: 'secrets-manager', secretId: 'edge/tls' },
      mode: 'both',
      domain: 'echo.example.com',
    });
    echo.allowClientsFrom('proxy', nginx.securityGroupId);
    const alb = new AlbFrontend('alb', {
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: SUBNETS,
      allowedCidrs: { ipv4: ['203.0.113.0/24'], ipv6: [] },
      certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000',
      // Echo is not in the server registry, so it names its own rule priority block.
      backends: [{ profile: echoBackend.profile, nodes: echo.nodes, securityGroupId: echo.securityGroupId, rulePriorityBlock: 3 }],
    });
    echo.allowClientsFrom('alb', alb.securityGroupId);
    new DeepstreamCluster('ds', { nodeCount: 1, instanceType: 't3.small', vpcId: 'vpc-0123456789abcdef0', subnetIds: SUBNETS, redis: redis.clientArgs });
    new CentrifugoCluster('cf', {
      nodeCount: 1,
      instanceType: 't3.small',
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: SUBNETS,
      redis: redis.clientArgs,
      allowUnpinnedRelease: true,
    });
    return { echo, nginx };
  });
  registry = new Registry(run.mocks);
  cluster = run.result.echo;
  proxy = run.result.nginx;
  await valueOf(cluster.artifacts);
  await valueOf(proxy.artifacts);
});

describe('ServerCluster with any backend', () => {
  test('nodes are spread round robin over the subnets and named uniquely', () => {
    const nodes = [0, 1, 2, 3, 4].map((i) => registry.named(TYPES.instance, `echo-${i}`));
    expect(nodes.map((n) => n.inputs.subnetId)).toEqual([0, 1, 0, 1, 0].map((i) => SUBNETS[i]));
    expect(nodes.map((n) => (n.inputs.tags as Record<string, string>).Name)).toEqual(['echo-0', 'echo-1', 'echo-2', 'echo-3', 'echo-4']);
  });

  test("each boot script is the backend renderer output and holds that node's rendered config", async () => {
    const region = 'us-east-1';
    const parameterName = '/realtime-edge/test/echo/apiToken';
    for (let i = 0; i < 5; i++) {
      const input: NodeRenderInput = {
        nodeName: `echo-${i}`,
        version: '1.2.3',
        redis: { host: 'redis.internal.example', port: 6380, tls: true, authTokenParameter: '/shared/redis-token' },
        allowedOrigins: ['https://app.example.com'],
        secretParameters: { apiToken: parameterName },
        region,
        maxConnections: undefined,
      };
      const userData = registry.userDataOf(registry.named(TYPES.instance, `echo-${i}`));
      expect(userData).toBe(echoBackend.renderUserData(input));
      expect(userData).toContain(echoBackend.renderConfigFiles(input)[0].content.trimEnd());
    }
    const artifacts = await valueOf(cluster.artifacts);
    expect(artifacts.filter((a) => a.kind === 'echo-config').map((a) => a.resource)).toEqual(['echo-0', 'echo-1', 'echo-2', 'echo-3', 'echo-4']);
  });

  test("the backend's secrets: random, secret, SecureString, readable by the node role alone", () => {
    const [password] = registry.ofType(TYPES.randomPassword).filter((p) => p.name === 'echo-apiToken');
    expect(password.inputs).toMatchObject({ length: 40, special: false });
    const parameter = registry.named(TYPES.parameter, 'echo-apiToken');
    expect(parameter.inputs).toMatchObject({ name: '/realtime-edge/test/echo/apiToken', type: 'SecureString' });
    // The parameter holds this backend's generated password (secrecy is @pulumi/aws's own wrapping).
    expect(unwrapSecret(parameter.inputs.value)).toBe(unwrapSecret(password.state.result));
    expect(unwrapSecret(parameter.inputs.value)).toMatch(new RegExp(`^${MOCK_SECRET_MARKER}\\w{30}$`));
    const policy = JSON.parse(registry.named(TYPES.rolePolicy, 'echo-nodes-boot-secrets').inputs.policy as string);
    expect(policy.Statement).toEqual([
      {
        Sid: 'ReadBootParameters',
        Effect: 'Allow',
        Action: ['ssm:GetParameter', 'ssm:GetParameters'],
        Resource: [parameter.state.arn, 'arn:aws:ssm:us-east-1:123456789012:parameter/shared/redis-token'],
      },
    ]);
    for (let i = 0; i < 5; i++) {
      expect(registry.userDataOf(registry.named(TYPES.instance, `echo-${i}`))).not.toContain(MOCK_SECRET_MARKER);
    }
  });

  test('the node port admits the proxy and the ALB by security group; egress only HTTPS and Redis', () => {
    const group = registry.named(TYPES.securityGroup, 'echo-sg');
    const ingress = registry.ofType(TYPES.ingress).filter((r) => r.inputs.securityGroupId === group.id);
    expect(ingress.map((r) => [r.name, r.inputs.fromPort, registry.byId(r.inputs.referencedSecurityGroupId)?.name])).toEqual([
      ['echo-from-proxy', 7000, 'proxy-sg'],
      ['echo-from-alb', 7000, 'alb-sg'],
    ]);
    const egress = registry.ofType(TYPES.egress).filter((r) => r.inputs.securityGroupId === group.id);
    // An existing Redis has no security group of ours, so its port goes to any address.
    expect(egress.map((r) => [r.inputs.fromPort, r.inputs.cidrIpv4])).toEqual([
      [443, '0.0.0.0/0'],
      [6380, '0.0.0.0/0'],
    ]);
  });

  test('an existing Redis is passed through: no ElastiCache, no security group', async () => {
    expect(registry.ofType(TYPES.replicationGroup)).toHaveLength(0);
    expect(registry.ofType(TYPES.securityGroup).map((g) => g.name)).not.toContain('redis-sg');
  });

  test('the ALB health-checks the profile path and routes its paths', () => {
    const [group] = registry.ofType(TYPES.targetGroup);
    expect(group.inputs).toMatchObject({ port: 7000, healthCheck: { path: '/healthz', matcher: '200' } });
    const patterns = registry.ofType(TYPES.listenerRule).map((r) => (r.inputs.conditions as { pathPattern: { values: string[] } }[])[0].pathPattern.values[0]);
    expect(patterns).toEqual(['/healthz', '/ws*']);
    // Twice the ping interval plus 15 s.
    expect(registry.ofType(TYPES.loadBalancer)[0].inputs.idleTimeout).toBe(55);
    const ingress = registry.ofType(TYPES.ingress).filter((r) => registry.byId(r.inputs.securityGroupId)?.name === 'alb-sg');
    expect(ingress.map((r) => [r.inputs.fromPort, r.inputs.cidrIpv4])).toEqual([
      [443, '203.0.113.0/24'],
      [80, '203.0.113.0/24'],
    ]);
  });

  test('the proxy config for it passes nginx -t; its TLS comes from Secrets Manager', async () => {
    const spec = await valueOf(proxy.nginxSpec);
    const prefix = makeNginxPrefix('echo');
    try {
      const tls = { certificatePath: prefix.tls.certificatePath, keyPath: prefix.tls.keyPath };
      const local = renderNginxConf({
        ...spec,
        streamModule: { kind: 'dynamic' },
        user: undefined,
        paths: prefix.paths,
        http: { ...spec.http!, tls: { ...spec.http!.tls!, ...tls } },
        stream: { listeners: spec.stream!.listeners.map((l) => ({ ...l, tls })) },
      });
      const result = await checkNginxConf(local, { addStreamModule: false });
      expect(result.output).toContain('test is successful');
    } finally {
      prefix.cleanup();
    }
    const parameters = registry.named(TYPES.association, 'proxy-apply').inputs.parameters as Record<string, string>;
    expect(parameters).toMatchObject({ tlsSource: 'secrets-manager', tlsCertificate: 'edge/tls', tlsKey: '-' });
    const policy = JSON.parse(registry.named(TYPES.rolePolicy, 'proxy-hosts-boot-secrets').inputs.policy as string);
    expect(policy.Statement).toEqual([
      {
        Sid: 'ReadBootSecrets',
        Effect: 'Allow',
        Action: 'secretsmanager:GetSecretValue',
        Resource: ['arn:aws:secretsmanager:us-east-1:123456789012:secret:edge/tls-??????'],
      },
    ]);
    expect(registry.ofType(TYPES.privateKey)).toHaveLength(0);
  });

  test('AMI architecture follows the instance type', () => {
    const amiLookups = registry.mocks.invokes.filter((i) => i.token === 'aws:ec2/getAmi:getAmi');
    const architectures = amiLookups.map((i) => (i.inputs.filters as { name: string; values: string[] }[]).find((f) => f.name === 'architecture')!.values[0]);
    expect(architectures.sort()).toEqual(['arm64', 'x86_64', 'x86_64', 'x86_64']);
  });
});

describe('classes that fix the backend', () => {
  test('register their own type tokens and the backend secrets', () => {
    const types = registry.resources.filter((r) => !r.custom).map((r) => `${r.type} ${r.name}`);
    expect(types).toEqual(
      expect.arrayContaining([
        'realtime-edge:cluster:ServerCluster echo',
        'realtime-edge:cluster:DeepstreamCluster ds',
        'realtime-edge:cluster:CentrifugoCluster cf',
        'realtime-edge:redis:Redis redis',
        'realtime-edge:nginx:NginxProxy proxy',
        'realtime-edge:alb:AlbFrontend alb',
      ]),
    );
    const secretsOf = (prefix: string) => registry.ofType(TYPES.parameter).filter((p) => p.name.startsWith(`${prefix}-`)).map((p) => p.name.slice(prefix.length + 1));
    expect(secretsOf('ds')).toEqual([]);
    expect(secretsOf('cf').sort()).toEqual(serverBackends.centrifugo.secrets.map((s) => s.key).sort());
  });
});

describe('pure helpers', () => {
  test.each([
    ['t3.small', 'x86_64'],
    ['c7i.large', 'x86_64'],
    ['g5.xlarge', 'x86_64'],
    ['g4dn.xlarge', 'x86_64'],
    ['t4g.small', 'arm64'],
    ['m7g.medium', 'arm64'],
    ['c6gn.large', 'arm64'],
    ['im4gn.large', 'arm64'],
    ['x2gd.medium', 'arm64'],
    ['a1.large', 'arm64'],
  ])('%s runs %s', (instanceType, architecture) => {
    expect(architectureOfInstanceType(instanceType)).toBe(architecture);
  });

  test('a bad instance type is refused with the value and the expected shape', () => {
    expect(() => architectureOfInstanceType('large')).toThrow(/instanceType: "large" .* FAMILY\.SIZE/);
  });

  test('user data over 16 KB is gzipped and decodes back exactly; too large even compressed is refused', () => {
    const small = '#!/bin/bash\necho hi\n';
    expect(encodeUserData(small)).toEqual({ userData: small });
    const large = `#!/bin/bash\n${Array.from({ length: 2000 }, (_, i) => `echo line ${i}`).join('\n')}\n`;
    expect(Buffer.byteLength(large)).toBeGreaterThan(USER_DATA_LIMIT_BYTES);
    const encoded = encodeUserData(large);
    expect(encoded.userData).toBeUndefined();
    expect(Buffer.from(encoded.userDataBase64!, 'base64').length).toBeLessThanOrEqual(USER_DATA_LIMIT_BYTES);
    expect(decodeUserData(encoded)).toBe(large);
    // Stable: the same script always encodes to the same bytes (no diff, no replacement).
    expect(encodeUserData(large)).toEqual(encoded);
    const incompressible = Array.from({ length: 40_000 }, (_, i) => ((i * 7919) % 65521).toString(36)).join('');
    expect(gzipSync(incompressible).length).toBeGreaterThan(USER_DATA_LIMIT_BYTES);
    expect(() => encodeUserData(incompressible)).toThrow(/even gzip-compressed/);
  });

  test('ALB routes of two backends on one path are refused', () => {
    expect(() => albRoutes([{ profile: serverBackends.deepstream.profile }, { profile: serverBackends.centrifugo.profile }])).toThrow(
      /"\/api\*" is claimed by both deepstream and centrifugo/,
    );
  });

  test('stream listeners on one port are refused', () => {
    expect(() =>
      proxyListenerPorts('stream', [
        { profile: serverBackends.deepstream.profile },
        { profile: serverBackends.centrifugo.profile, streamPort: 6020 },
      ]),
    ).toThrow(/port 6020 is used twice/);
  });

  test('ElastiCache ids are sanitized', () => {
    expect(replicationGroupId('Prod_Stack-edge-redis')).toBe('prod-stack-edge-redis');
    expect(replicationGroupId('1-x'.repeat(20))).toMatch(/^x[a-z0-9-]{0,39}$/);
  });
});

describe('settings are checked when the component is constructed, not later inside an apply', () => {
  test('a cookie hash key with a stream listener is refused up front, naming the key', () => {
    expect(
      () =>
        new NginxProxy('bad-proxy', {
          vpcId: 'vpc-0123456789abcdef0',
          subnetIds: SUBNETS,
          backends: [{ profile: echoBackend.profile, nodeAddresses: [], securityGroupId: 'sg-0123456789abcdef0' }],
          tls: { source: 'self-signed' },
          mode: 'stream',
          balance: { strategy: 'hash', hashKey: '$cookie_sid' },
        }),
    ).toThrow(/\$cookie_sid.*stream/);
  });
});

/**
 * The security defaults of everything RealtimeEdge registers, for both example stacks, checked on
 * the inputs the engine receives (mocked providers, real component code).
 */
import { ALB_TLS_POLICY } from '../components/albFrontend';
import type { RealtimeEdge } from '../components/realtimeEdge';
import { serverBackends } from '../servers';
import {
  MOCK_SECRET_MARKER,
  Registry,
  TYPES,
  isSecretValue,
  runEdge,
  stackConfig,
  stringsIn,
  unwrapSecret,
  valueOf,
  type RecordedResource,
} from './helpers/pulumi-mocks';

/** Strings in a value that are not wrapped as Pulumi secrets. */
function plainStrings(value: unknown): string[] {
  if (isSecretValue(value)) return [];
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(plainStrings);
  if (value && typeof value === 'object') return Object.values(value).flatMap(plainStrings);
  return [];
}

const runs: Record<'dev' | 'prod', { edge: RealtimeEdge; registry: Registry }> = {} as never;

beforeAll(async () => {
  // One file, two programs in a row: each run installs fresh mocks.
  runs.dev = await runEdge(stackConfig('dev'), 'dev');
  runs.prod = await runEdge(stackConfig('prod'), 'prod');
});

describe.each(['dev', 'prod'] as const)('%s stack', (stack) => {
  const registry = () => runs[stack].registry;
  const sgName = (id: unknown) => registry().byId(id)?.name;
  /** The value the program generated for the SSM parameter registered as `parameterName`: the
   * nginx self-signed key and certificate, or the RandomPassword of the same name. */
  const generatedValue = (parameterName: string) => {
    const [type, name, output] = parameterName.endsWith('-tls-private-key')
      ? [TYPES.privateKey, parameterName.replace(/-private-key$/, '-key'), 'privateKeyPem']
      : parameterName.endsWith('-tls-certificate')
        ? [TYPES.selfSignedCert, parameterName.replace(/-certificate$/, '-cert'), 'certPem']
        : [TYPES.randomPassword, parameterName, 'result'];
    return unwrapSecret(registry().named(type, name).state[output]);
  };

  test('every instance requires IMDSv2, has an encrypted gp3 root volume, no key pair and an SSM role', () => {
    const instances = registry().ofType(TYPES.instance);
    expect(instances.length).toBeGreaterThanOrEqual(3);
    for (const instance of instances) {
      expect(instance.inputs.metadataOptions).toEqual({ httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 1 });
      expect(instance.inputs.rootBlockDevice).toMatchObject({ encrypted: true, volumeType: 'gp3', deleteOnTermination: true });
      expect(instance.inputs.keyName).toBeUndefined();
      expect(instance.inputs.userDataReplaceOnChange).toBe(true);
      expect(typeof instance.inputs.iamInstanceProfile).toBe('string');
    }
    for (const attachment of registry().ofType('aws:iam/rolePolicyAttachment:RolePolicyAttachment')) {
      expect(attachment.inputs.policyArn).toBe('arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore');
    }
    expect(registry().ofType('aws:iam/rolePolicyAttachment:RolePolicyAttachment')).toHaveLength(
      registry().ofType(TYPES.role).length,
    );
  });

  test('no rule opens port 22 or a port range; every rule names one TCP port', () => {
    const rules = [...registry().ofType(TYPES.ingress), ...registry().ofType(TYPES.egress)];
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) {
      expect(rule.inputs.ipProtocol).toBe('tcp');
      expect(rule.inputs.fromPort).toBe(rule.inputs.toPort);
      expect(rule.inputs.fromPort).not.toBe(22);
    }
    for (const group of registry().ofType(TYPES.securityGroup)) {
      expect(group.inputs.ingress).toBeUndefined();
    }
  });

  test('node ports admit only the proxy and ALB security groups, never a CIDR', () => {
    const config = stackConfig(stack);
    const frontends = registry()
      .ofType(TYPES.securityGroup)
      .filter((g) => /-(proxy|alb)-sg$/.test(g.name))
      .map((g) => g.id);
    expect(frontends).toHaveLength(config.frontend === 'both' ? 2 : 1);
    for (const backendName of Object.keys(config.backends)) {
      const nodesGroup = registry().named(TYPES.securityGroup, `edge-${backendName}-sg`);
      const rules = registry()
        .ofType(TYPES.ingress)
        .filter((r) => r.inputs.securityGroupId === nodesGroup.id);
      expect(rules.map((r) => r.inputs.referencedSecurityGroupId).sort()).toEqual([...frontends].sort());
      for (const rule of rules) {
        expect(rule.inputs.cidrIpv4).toBeUndefined();
        expect(rule.inputs.cidrIpv6).toBeUndefined();
        expect(rule.inputs.fromPort).toBe(serverBackends[backendName as keyof typeof serverBackends].profile.port);
      }
    }
  });

  test('Redis admits only the cluster nodes on 6379', () => {
    const redisGroup = registry().named(TYPES.securityGroup, 'edge-redis-sg');
    const rules = registry()
      .ofType(TYPES.ingress)
      .filter((r) => r.inputs.securityGroupId === redisGroup.id);
    const config = stackConfig(stack);
    expect(rules.map((r) => sgName(r.inputs.referencedSecurityGroupId)).sort()).toEqual(
      Object.keys(config.backends).map((b) => `edge-${b}-sg`).sort(),
    );
    for (const rule of rules) expect(rule.inputs.fromPort).toBe(6379);
  });

  test('the proxy opens only its listener ports, to the allowed CIDRs', () => {
    const config = stackConfig(stack);
    const proxyGroup = registry().named(TYPES.securityGroup, 'edge-proxy-sg');
    const rules = registry()
      .ofType(TYPES.ingress)
      .filter((r) => r.inputs.securityGroupId === proxyGroup.id);
    const mode = config.nginx!.mode;
    const expectedPorts = [
      ...(mode !== 'stream' ? [443, 80] : []),
      ...(mode !== 'http' ? Object.keys(config.backends).map((b) => serverBackends[b as keyof typeof serverBackends].profile.port) : []),
    ].sort();
    expect([...new Set(rules.map((r) => r.inputs.fromPort as number))].sort()).toEqual(expectedPorts);
    for (const rule of rules) {
      const cidr = (rule.inputs.cidrIpv4 ?? rule.inputs.cidrIpv6) as string;
      expect([...config.allowedCidrs.ipv4, ...config.allowedCidrs.ipv6]).toContain(cidr);
      expect(rule.inputs.referencedSecurityGroupId).toBeUndefined();
    }
  });

  test('each SSM parameter holds its own generated value as a SecureString; nodes get parameter names only', () => {
    const parameters = registry().ofType(TYPES.parameter);
    expect(parameters.length).toBeGreaterThan(0);
    // Secrecy itself is @pulumi/aws's doing (it wraps these inputs); what the code decides is
    // which value goes where: each parameter gets the value generated for it.
    for (const parameter of parameters) {
      expect(parameter.inputs.type).toBe('SecureString');
      expect({ parameter: parameter.name, value: unwrapSecret(parameter.inputs.value) }).toEqual({
        parameter: parameter.name,
        value: generatedValue(parameter.name),
      });
    }
    for (const group of registry().ofType(TYPES.replicationGroup)) {
      expect(unwrapSecret(group.inputs.authToken)).toBe(generatedValue('edge-redis-auth-token'));
    }
    expect(registry().mocks.secretValues.size).toBeGreaterThan(0);
    for (const instance of registry().ofType(TYPES.instance)) {
      const userData = registry().userDataOf(instance);
      expect(userData).not.toContain(MOCK_SECRET_MARKER);
      for (const secret of registry().mocks.secretValues) expect(userData).not.toContain(secret);
    }
  });

  test("each node group's Redis egress goes to the Redis security group only", () => {
    const redisGroup = registry().named(TYPES.securityGroup, 'edge-redis-sg');
    for (const backendName of Object.keys(stackConfig(stack).backends)) {
      const rule = registry().named(TYPES.egress, `edge-${backendName}-egress-redis`);
      expect(rule.inputs).toMatchObject({
        securityGroupId: registry().named(TYPES.securityGroup, `edge-${backendName}-sg`).id,
        referencedSecurityGroupId: redisGroup.id,
        fromPort: 6379,
        toPort: 6379,
      });
      expect(rule.inputs.cidrIpv4).toBeUndefined();
    }
  });

  test('no generated secret value appears in any non-secret input of any resource', () => {
    const secrets = [...registry().mocks.secretValues];
    const leaks = registry().resources.flatMap((resource: RecordedResource) =>
      plainStrings(resource.inputs)
        .filter((text) => secrets.some((secret) => text.includes(secret)))
        .map(() => `${resource.type} ${resource.name}`),
    );
    expect(leaks).toEqual([]);
    // The search itself works: the secrets are there, inside secret wrappers.
    const wrapped = registry().resources.flatMap((r) => stringsIn(r.inputs)).filter((t) => secrets.some((s) => t.includes(s)));
    expect(wrapped.length).toBeGreaterThan(0);
  });

  test('each host role reads exactly the parameters its hosts fetch', async () => {
    const config = stackConfig(stack);
    const policies = registry().ofType(TYPES.rolePolicy);
    for (const policy of policies) {
      const document = JSON.parse(policy.inputs.policy as string) as { Statement: { Resource: string | string[] }[] };
      for (const statement of document.Statement) {
        for (const resource of [statement.Resource].flat()) expect(resource).not.toContain('*');
      }
    }
    const resourcesOf = (name: string) =>
      (JSON.parse(registry().named(TYPES.rolePolicy, name).inputs.policy as string).Statement as { Resource: string[] }[]).flatMap(
        (s) => s.Resource,
      );
    const arnOf = (parameterName: string) => registry().ofType(TYPES.parameter).find((p) => p.inputs.name === parameterName)!.state.arn;
    const redisToken = `/realtime-edge/${stack}/edge-redis/auth-token`;
    for (const backendName of Object.keys(config.backends)) {
      const cluster = runs[stack].edge.clusters[backendName as keyof typeof serverBackends]!;
      const names = Object.values(await valueOf(cluster.secretParameterNames));
      expect(resourcesOf(`edge-${backendName}-nodes-boot-secrets`).sort()).toEqual([...names, redisToken].map(arnOf).sort());
    }
  });

  test('nodes are spread round robin over the private subnets', () => {
    const config = stackConfig(stack);
    const privateSubnets = config.vpc ? config.vpc.privateSubnetIds : registry().mocks.world.subnets.map((s) => s.id).sort();
    for (const [backendName, settings] of Object.entries(config.backends)) {
      const subnets = Array.from({ length: settings!.nodes }, (_, i) => registry().named(TYPES.instance, `edge-${backendName}-${i}`).inputs.subnetId);
      expect(subnets).toEqual(subnets.map((_, i) => privateSubnets[i % privateSubnets.length]));
      expect(new Set(subnets).size).toBe(Math.min(settings!.nodes, privateSubnets.length));
    }
  });

  test('Redis is encrypted at rest and in transit; failover with replicas only', () => {
    const config = stackConfig(stack);
    const [group] = registry().ofType(TYPES.replicationGroup);
    const replicas = config.redis.mode === 'elasticache' ? config.redis.replicas : 0;
    expect(group.inputs).toMatchObject({
      atRestEncryptionEnabled: true,
      transitEncryptionEnabled: true,
      numCacheClusters: 1 + replicas,
      automaticFailoverEnabled: replicas > 0,
      multiAzEnabled: replicas > 0,
    });
  });
});

describe('prod ALB', () => {
  const registry = () => runs.prod.registry;

  test('one health-checked target group per backend, every node attached', () => {
    const groups = registry().ofType(TYPES.targetGroup);
    const byName = Object.fromEntries(groups.map((g) => [g.name, g.inputs]));
    expect(byName['edge-alb-deepstream'].healthCheck).toMatchObject({ path: '/health-check', matcher: '200', protocol: 'HTTP' });
    expect(byName['edge-alb-deepstream'].port).toBe(6020);
    expect(byName['edge-alb-centrifugo'].healthCheck).toMatchObject({ path: '/health', matcher: '200', protocol: 'HTTP' });
    expect(byName['edge-alb-centrifugo'].port).toBe(8000);
    for (const group of groups) expect(group.inputs.deregistrationDelay).toBe(120);
    const attachments = registry().ofType(TYPES.targetGroupAttachment);
    expect(attachments).toHaveLength(6);
    for (const attachment of attachments) {
      const instance = registry().byId(attachment.inputs.targetId)!;
      const group = groups.find((g) => g.state.arn === attachment.inputs.targetGroupArn)!;
      expect(group.name.replace('edge-alb-', '')).toBe(instance.name.replace(/^edge-|-\d+$/g, ''));
    }
  });

  test('HTTPS with an explicit TLS 1.3 policy, HTTP redirects, idle timeout above the pings', () => {
    const listeners = Object.fromEntries(registry().ofType(TYPES.listener).map((l) => [l.name, l.inputs]));
    expect(listeners['edge-alb-https']).toMatchObject({ protocol: 'HTTPS', port: 443, sslPolicy: ALB_TLS_POLICY });
    expect(ALB_TLS_POLICY).toBe('ELBSecurityPolicy-TLS13-1-2-2021-06');
    expect(listeners['edge-alb-https'].certificateArn).toBe(stackConfig('prod').alb!.certificateArn);
    expect(listeners['edge-alb-http']).toMatchObject({
      protocol: 'HTTP',
      port: 80,
      defaultActions: [{ type: 'redirect', redirect: { protocol: 'HTTPS', port: '443', statusCode: 'HTTP_301' } }],
    });
    const [alb] = registry().ofType(TYPES.loadBalancer);
    expect(alb.inputs).toMatchObject({ idleTimeout: 120, enableDeletionProtection: true, dropInvalidHeaderFields: true, internal: false });
    expect(alb.inputs.accessLogs).toMatchObject({ bucket: 'example-prod-alb-access-logs', enabled: true });
  });

  test('path rules send each route to its backend, the mounted one with its prefix rewritten away', () => {
    const rules = registry().ofType(TYPES.listenerRule);
    const groups = registry().ofType(TYPES.targetGroup);
    // A rule's target group, or its action type when it answers itself (refused origins).
    const target = (rule: RecordedResource) => {
      const [action] = rule.inputs.actions as { type: string; targetGroupArn?: string }[];
      return action.type === 'forward' ? groups.find((g) => g.state.arn === action.targetGroupArn)!.name : action.type;
    };
    const table = rules
      .map((r) => ({
        priority: r.inputs.priority as number,
        patterns: (r.inputs.conditions as { pathPattern: { values: string[] } }[])[0].pathPattern.values,
        target: target(r),
        rewrite: (r.inputs.transforms as { urlRewriteConfig: { rewrite: { regex: string } } }[] | undefined)?.[0]?.urlRewriteConfig.rewrite.regex,
      }))
      .sort((a, b) => a.priority - b.priority);
    expect(table.find((r) => r.patterns.includes('/deepstream*'))).toMatchObject({ target: 'edge-alb-deepstream', rewrite: undefined });
    expect(table.find((r) => r.patterns.includes('/centrifugo/connection/*'))).toMatchObject({
      target: 'edge-alb-centrifugo',
      rewrite: '^/centrifugo/(.*)$',
    });
    // The catch-all of the mounted backend comes after every more specific rule.
    const catchAll = table.findIndex((r) => r.patterns.includes('/centrifugo/*'));
    expect(table.slice(catchAll + 1).every((r) => !r.patterns[0].startsWith('/centrifugo/'))).toBe(true);
  });
});

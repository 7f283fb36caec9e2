/**
 * AlbFrontend listener rules as the engine receives them (mocked providers, real component code):
 * priorities that survive adding a backend, and the routing they produce.
 */
import { ALB_RULE_PRIORITIES, AlbFrontend, albRoutes, type AlbBackendArgs, type AlbFrontendArgs } from '../components/albFrontend';
import { serverBackends } from '../servers';
import type { ServerProfile } from '../servers/profile';
import { Registry, TYPES, runWithMocks, type RecordedResource } from './helpers/pulumi-mocks';

const deepstream = serverBackends.deepstream.profile;
const centrifugo = serverBackends.centrifugo.profile;

function backend(profile: ServerProfile, prefix?: string): AlbBackendArgs {
  return {
    profile,
    nodes: [{ name: `${profile.name}-0`, instanceId: `i-0${profile.name}` }],
    securityGroupId: `sg-0${profile.name}`,
    ...(prefix ? { prefix } : {}),
  };
}

function albArgs(overrides: Partial<AlbFrontendArgs>): AlbFrontendArgs {
  return {
    vpcId: 'vpc-0123456789abcdef0',
    subnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
    allowedCidrs: { ipv4: ['203.0.113.0/24'], ipv6: [] },
    certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000',
    backends: [backend(deepstream)],
    ...overrides,
  };
}

async function listenerRules(args: AlbFrontendArgs): Promise<RecordedResource[]> {
  const { mocks } = await runWithMocks(() => new AlbFrontend('alb', args));
  return new Registry(mocks).ofType(TYPES.listenerRule);
}

/** name -> priority of each listener rule. */
function priorities(rules: readonly RecordedResource[]): Record<string, number> {
  return Object.fromEntries(rules.map((rule) => [rule.name, rule.inputs.priority as number]));
}

describe('listener rule priorities', () => {
  test('adding a backend leaves every existing rule with its name and priority', async () => {
    const before = priorities(await listenerRules(albArgs({ backends: [backend(deepstream)] })));
    const after = priorities(await listenerRules(albArgs({ backends: [backend(deepstream), backend(centrifugo, '/centrifugo')] })));
    expect(Object.keys(before).sort()).toEqual(['alb-deepstream-api', 'alb-deepstream-deepstream', 'alb-deepstream-health-check']);
    for (const [name, priority] of Object.entries(before)) expect({ name, priority: after[name] }).toEqual({ name, priority });
    // No two rules share a priority (AWS would refuse the second).
    expect(new Set(Object.values(after)).size).toBe(Object.keys(after).length);
  });

  test("each backend's rules sit in its own block, by registry position; ranks inside follow specificity", () => {
    const routes = albRoutes([{ profile: deepstream }, { profile: centrifugo, prefix: '/centrifugo' }]);
    const table = routes.map((r) => [r.backend, r.pathPatterns[0], r.priority]);
    expect(table).toEqual([
      ['deepstream', '/health-check', 1090],
      ['deepstream', '/deepstream*', 1190],
      ['deepstream', '/api*', 1290],
      ['centrifugo', '/centrifugo/health', 2090],
      ['centrifugo', '/centrifugo/connection/*', 2190],
      ['centrifugo', '/centrifugo/emulation*', 2290],
      ['centrifugo', '/centrifugo/api*', 2390],
      ['centrifugo', '/centrifugo/*', 2490],
    ]);
  });

  test('the root catch-all sits after every block, so specific paths of any backend win', () => {
    const echo: ServerProfile = { ...deepstream, name: 'echo', routes: [{ path: '/echo', kind: 'websocket' }] };
    const routes = albRoutes([{ profile: centrifugo }, { profile: echo, rulePriorityBlock: 5 }]);
    const catchAll = routes.find((r) => r.pathPatterns[0] === '/*')!;
    expect(catchAll.priority).toBe(ALB_RULE_PRIORITIES.catchAllStart + 2 * ALB_RULE_PRIORITIES.routeSlotSize + ALB_RULE_PRIORITIES.pathRuleOffset);
    expect(routes[routes.length - 1]).toBe(catchAll);
    expect(routes.find((r) => r.pathPatterns[0] === '/echo*')!.priority).toBe(5090);
  });

  test('a rule that would take the requests of a more specific rule of another backend is refused', () => {
    const wide: ServerProfile = { ...deepstream, name: 'wide', routes: [{ path: '/c', kind: 'http' }] };
    expect(() => albRoutes([{ profile: wide, rulePriorityBlock: 1 }, { profile: centrifugo, prefix: '/centrifugo' }])).toThrow(
      /"\/c\*" of wide \(priority 1090\) would take requests for the more specific "\/centrifugo\/health" of centrifugo/,
    );
  });

  test('a backend outside the registry must name its block; blocks are not shared', () => {
    const echo: ServerProfile = { ...deepstream, name: 'echo', routes: [{ path: '/echo', kind: 'websocket' }] };
    expect(() => albRoutes([{ profile: echo }])).toThrow(/backend echo is not in serverBackends; give it rulePriorityBlock/);
    expect(() => albRoutes([{ profile: deepstream }, { profile: echo, rulePriorityBlock: 1 }])).toThrow(
      /block 1 is claimed by both deepstream and echo/,
    );
    expect(() => albRoutes([{ profile: echo, rulePriorityBlock: 40 }])).toThrow(/rulePriorityBlock 40 of backend echo .* from 1 to 39/);
  });
});

describe('HTTPS security policy', () => {
  test.each(['ELBSecurityPolicy-TLS13-1-3-2021-06', 'ELBSecurityPolicy-TLS13-1-2-Res-2021-06', 'ELBSecurityPolicy-FS-1-2-Res-2020-10', 'ELBSecurityPolicy-TLS-1-2-Ext-2018-06'])(
    '%s (TLS 1.2+) reaches the listener',
    async (sslPolicy) => {
      const { mocks } = await runWithMocks(() => new AlbFrontend('alb', albArgs({ sslPolicy })));
      expect(new Registry(mocks).named(TYPES.listener, 'alb-https').inputs.sslPolicy).toBe(sslPolicy);
    },
  );

  test.each(['ELBSecurityPolicy-2016-08', 'ELBSecurityPolicy-FS-2018-06', 'ELBSecurityPolicy-TLS13-1-0-2021-06', 'ELBSecurityPolicy-TLS-1-1-2017-01', 'ELBSecurityPolicy-FS-1-1-2019-08', 'ELBSecurityPolicy-TLS13-1-2-'])(
    '%s is refused, naming the arg and the allowed patterns',
    (sslPolicy) => {
      expect(() => new AlbFrontend('alb', albArgs({ sslPolicy }))).toThrow(
        `sslPolicy: "${sslPolicy}" is not a TLS 1.2+ ALB security policy; expected a name matching ELBSecurityPolicy-TLS13-1-2-*, ELBSecurityPolicy-TLS13-1-3-*, ELBSecurityPolicy-TLS-1-2-*, ELBSecurityPolicy-FS-1-2-*`,
      );
    },
  );
});

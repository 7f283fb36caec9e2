/**
 * AlbFrontend listener rules as the engine receives them (mocked providers, real component code):
 * priorities that survive adding a backend, the TLS policy, and the origins a WebSocket route admits.
 */
import { ALB_RULE_PRIORITIES, AlbFrontend, albOriginRules, albRoutes, type AlbBackendArgs, type AlbFrontendArgs } from '../components/albFrontend';
import { serverBackends } from '../servers';
import type { ServerProfile } from '../servers/profile';
import { Registry, TYPES, runEdge, runWithMocks, stackConfig, type RecordedResource } from './helpers/pulumi-mocks';

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

describe('allowed origins on WebSocket routes of servers that do not check Origin', () => {
  const ORIGINS = ['https://app.example.com', 'https://admin.example.com', 'https://*.example.org', 'https://four.example.com'];
  const pathOf = (rule: RecordedResource) => (rule.inputs.conditions as { pathPattern?: { values: string[] } }[])[0].pathPattern!.values;
  const originsOf = (rule: RecordedResource) =>
    (rule.inputs.conditions as { httpHeader?: { httpHeaderName: string; values: string[] } }[]).find((c) => c.httpHeader)?.httpHeader;

  test("deepstream's WebSocket path: allowed origins forward, any other Origin gets 403, no Origin falls to the path rule", async () => {
    const rules = await listenerRules(albArgs({ backends: [backend(deepstream), backend(centrifugo, '/centrifugo')], allowedOrigins: ORIGINS }));
    const table = rules
      .filter((r) => pathOf(r)[0] === '/deepstream*')
      .sort((a, b) => (a.inputs.priority as number) - (b.inputs.priority as number))
      .map((r) => ({ name: r.name, priority: r.inputs.priority, origin: originsOf(r), actions: r.inputs.actions }));
    // deepstream's target group (the mocks name it alb-deepstream-<hash>).
    const forward = [{ type: 'forward', targetGroupArn: expect.stringMatching(/:targetgroup\/alb-deepstream-[0-9a-f]+\//) }];
    expect(table).toEqual([
      // Three values per condition at most (ALB), so four origins take two rules.
      { name: 'alb-deepstream-deepstream-origin-0', priority: 1100, origin: { httpHeaderName: 'Origin', values: ORIGINS.slice(0, 3) }, actions: forward },
      { name: 'alb-deepstream-deepstream-origin-1', priority: 1101, origin: { httpHeaderName: 'Origin', values: ORIGINS.slice(3) }, actions: forward },
      {
        name: 'alb-deepstream-deepstream-foreign-origin',
        priority: 1180,
        origin: { httpHeaderName: 'Origin', values: ['*'] },
        actions: [{ type: 'fixed-response', fixedResponse: { statusCode: '403', contentType: 'text/plain', messageBody: 'origin not allowed' } }],
      },
      { name: 'alb-deepstream-deepstream', priority: 1190, origin: undefined, actions: forward },
    ]);
    // Centrifugo checks Origin itself, and HTTP routes carry no handshake: no origin rules there.
    expect(rules.filter((r) => originsOf(r)).map((r) => r.name).sort()).toEqual(table.filter((r) => r.origin).map((r) => r.name).sort());
  });

  test('a mounted backend keeps its prefix rewrite on the origin rules that forward', async () => {
    const rules = await listenerRules(albArgs({ backends: [backend(centrifugo), backend(deepstream, '/deepstream')], allowedOrigins: ORIGINS.slice(0, 1) }));
    const allowed = rules.find((r) => r.name === 'alb-deepstream-deepstream-deepstream-origin-0')!;
    expect(pathOf(allowed)).toEqual(['/deepstream/deepstream*']);
    expect(allowed.inputs.transforms).toEqual([
      { type: 'url-rewrite', urlRewriteConfig: { rewrite: { regex: '^/deepstream/(.*)$', replace: '/$1' } } },
    ]);
  });

  test('without allowed origins there are no origin rules', async () => {
    const rules = await listenerRules(albArgs({ backends: [backend(deepstream)] }));
    expect(rules.map((r) => r.name).sort()).toEqual(['alb-deepstream-api', 'alb-deepstream-deepstream', 'alb-deepstream-health-check']);
  });

  test('origins are chunked within the wildcard budget of a rule (five, path pattern included)', () => {
    const [route] = albRoutes([{ profile: deepstream }]).filter((r) => r.kind === 'websocket');
    const doubleWildcards = ['https://*.*.a.example', 'https://*.*.b.example', 'https://*.*.c.example'];
    expect(albOriginRules(route, doubleWildcards).allowed.map((r) => r.origins)).toEqual([doubleWildcards.slice(0, 2), doubleWildcards.slice(2)]);
  });

  test('the stack key allowedOrigins reaches the ALB (prod stack)', async () => {
    const { registry } = await runEdge(stackConfig('prod'), 'prod');
    const allowed = registry.named(TYPES.listenerRule, 'edge-alb-deepstream-deepstream-origin-0');
    expect(originsOf(allowed)).toEqual({ httpHeaderName: 'Origin', values: [...stackConfig('prod').allowedOrigins] });
  });

  test('an origin with a path is refused, naming the arg', () => {
    expect(() => new AlbFrontend('alb', albArgs({ allowedOrigins: ['https://app.example.com/app'] }))).toThrow(
      /allowedOrigins: "https:\/\/app.example.com\/app" is not allowed: expected an origin like https:\/\/app.example.com\[:port\] \(no path\)/,
    );
    // Browsers never send the default port, so such an entry would refuse every handshake.
    expect(() => new AlbFrontend('alb', albArgs({ allowedOrigins: ['https://app.example.com:443'] }))).toThrow(/expected no default port/);
  });
});

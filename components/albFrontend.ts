/**
 * The managed alternative to the nginx hosts: an Application Load Balancer terminating TLS with an
 * ACM certificate, one target group per backend (health-checked on the profile's health path),
 * path rules from the backend profiles, and an idle timeout above the servers' ping interval.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { defaultIdleTimeoutSeconds } from '../config/proxy-defaults';
import { keys as configKeys } from '../config/schema';
import { SERVER_BACKEND_NAMES } from '../servers';
import { proxyEnforcesOrigins, type ProxyRoute, type RouteKind, type ServerProfile } from '../servers/profile';
import { originSchema } from '../servers/validate';
import { clientFacingSecurityGroup, type CidrLists } from './network';
import { clientUrl } from './urls';

/** TLS 1.3 and 1.2 only (no 1.0/1.1), set explicitly rather than trusting the changing default. */
export const ALB_TLS_POLICY = 'ELBSecurityPolicy-TLS13-1-2-2021-06';

/** The ALB security-policy families that offer nothing below TLS 1.2 (AWS names each policy
 * `ELBSecurityPolicy-<family>-<variant and date>`, e.g. `-TLS13-1-2-Res-2021-06`, `-FS-1-2-Res-2020-10`).
 * Left out: `-2016-08` (the API default), `-FS-2018-06`, `-TLS13-1-0/1-1-*`, `-TLS-1-0/1-1-*`, `-FS-1-1-*`. */
export const ALB_TLS12_POLICY_PATTERNS = [
  'ELBSecurityPolicy-TLS13-1-2-*',
  'ELBSecurityPolicy-TLS13-1-3-*',
  'ELBSecurityPolicy-TLS-1-2-*',
  'ELBSecurityPolicy-FS-1-2-*',
] as const;

/** `policy`, when it is one of the TLS 1.2+ families; an error naming the allowed patterns otherwise. */
export function checkAlbSslPolicy(policy: string): string {
  const allowed = ALB_TLS12_POLICY_PATTERNS.some((pattern) => {
    const family = pattern.slice(0, -1);
    return policy.startsWith(family) && /^[A-Za-z0-9][A-Za-z0-9-]*$/.test(policy.slice(family.length));
  });
  if (!allowed) {
    throw new Error(
      `sslPolicy: ${JSON.stringify(policy)} is not a TLS 1.2+ ALB security policy; expected a name matching ${ALB_TLS12_POLICY_PATTERNS.join(', ')}`,
    );
  }
  return policy;
}

export const ALB_DEFAULTS = {
  sslPolicy: ALB_TLS_POLICY,
  stickiness: configKeys.albStickiness.default as boolean,
  stickinessCookieSeconds: 86400,
  deregistrationDelaySeconds: configKeys.albDeregistrationDelaySeconds.default as number,
  deletionProtection: configKeys.albDeletionProtection.default as boolean,
  healthCheck: { intervalSeconds: 10, timeoutSeconds: 5, healthyThreshold: 2, unhealthyThreshold: 3, matcher: '200' },
} as const;

export interface AlbBackendArgs {
  readonly profile: ServerProfile;
  /** The nodes registered as targets (instance id, on the profile's port). */
  readonly nodes: readonly { readonly name: string; readonly instanceId: pulumi.Input<string> }[];
  /** The nodes' security group: the ALB may send to it on the profile's port, nothing else. */
  readonly securityGroupId: pulumi.Input<string>;
  /** Mount the backend's routes under this path prefix, removed by a URL rewrite before
   * forwarding. @default undefined (routes at the root) */
  readonly prefix?: string;
  /** Listener-rule priority block of this backend (see ALB_RULE_PRIORITIES); fixed per backend so
   * adding or removing another backend never renumbers this one's rules. Required for a profile
   * outside `serverBackends`. @default the backend's position in SERVER_BACKEND_NAMES, from 1 */
  readonly rulePriorityBlock?: number;
}

export interface AlbFrontendArgs {
  readonly vpcId: pulumi.Input<string>;
  /** Public subnets in at least two AZs (an ALB requirement). */
  readonly subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  /** Client networks allowed on 443 and 80. */
  readonly allowedCidrs: CidrLists;
  /** ACM certificate of the HTTPS listener. */
  readonly certificateArn: pulumi.Input<string>;
  readonly backends: readonly AlbBackendArgs[];
  /** Host name in the output URLs (point it at `dnsName`). @default the ALB's DNS name */
  readonly domain?: string;
  /** Seconds an idle connection stays open. AWS's own default of 60 s sits too close to the
   * servers' pings. @default defaultIdleTimeoutSeconds(profiles): twice the largest ping interval + 15 s */
  readonly idleTimeoutSeconds?: number;
  /** Load-balancer cookie stickiness. @default ALB_DEFAULTS.stickiness (false) */
  readonly stickiness?: boolean;
  /** @default ALB_DEFAULTS.deregistrationDelaySeconds (60) */
  readonly deregistrationDelaySeconds?: number;
  /** @default ALB_DEFAULTS.deletionProtection (false) */
  readonly deletionProtection?: boolean;
  /** S3 bucket for access logs. @default undefined (off) */
  readonly accessLogsBucket?: string;
  /** HTTPS listener security policy; one of ALB_TLS12_POLICY_PATTERNS, anything admitting TLS 1.0
   * or 1.1 is refused. @default ALB_TLS_POLICY */
  readonly sslPolicy?: string;
  /** Browser origins (`https://app.example.com`, `*` wildcards allowed) that may open WebSockets to
   * backends that do not check Origin themselves (`proxyEnforcesOrigins`). On those backends'
   * `websocket` routes the ALB answers 403 to a handshake whose Origin header is present and not
   * listed; requests without an Origin header (non-browser clients) pass. A plain list, not an
   * Input: the number of listener rules depends on it. @default [] (any origin) */
  readonly allowedOrigins?: readonly string[];
  readonly tags?: Readonly<Record<string, string>>;
}

/**
 * Where listener rules sit. AWS refuses a priority another rule still holds (PriorityInUse), and
 * Pulumi does not order the updates of sibling rules (pulumi/pulumi-aws#175), so no rule's
 * priority may depend on another backend's routes: renumbering on `pulumi up` can fail halfway.
 * Each backend owns a fixed block (from its place in the server registry), each of its routes a
 * fixed slot in that block by rank among the backend's own routes, and the one root catch-all
 * (`/*`) sits past every block so any specific path of any backend wins over it.
 */
export const ALB_RULE_PRIORITIES = {
  /** Backend block n (1-based) covers n * blockSize up to the next block. */
  blockSize: 1000,
  /** Priorities per route: its path rule and the rules that must match before it on the same path. */
  routeSlotSize: 100,
  /** Rules admitting the allowed origins fill the slot from its start, up to this offset. */
  originRefusedOffset: 80,
  /** The path rule's place in its slot, after the origin checks on the same path. */
  pathRuleOffset: 90,
  /** Slot of block n's root catch-all: catchAllStart + n * routeSlotSize. */
  catchAllStart: 40000,
  /** Highest block number: the catch-alls must stay below ALB's largest priority, 50000. */
  maxBlock: 39,
} as const;

/** A backend's priority block: `rulePriorityBlock`, or its position in `SERVER_BACKEND_NAMES`
 * counted from 1 (so the registry's order is load-bearing: append new servers, never reorder). */
export function albPriorityBlock(backend: Pick<AlbBackendArgs, 'profile' | 'rulePriorityBlock'>): number {
  const { profile } = backend;
  const registryPosition = (SERVER_BACKEND_NAMES as readonly string[]).indexOf(profile.name) + 1;
  const block = backend.rulePriorityBlock ?? registryPosition;
  if (block === 0) {
    throw new Error(
      `ALB routes: backend ${profile.name} is not in serverBackends; give it rulePriorityBlock ` +
        `(an integer from 1 to ${ALB_RULE_PRIORITIES.maxBlock} that no other backend uses)`,
    );
  }
  if (!Number.isInteger(block) || block < 1 || block > ALB_RULE_PRIORITIES.maxBlock) {
    throw new Error(
      `ALB routes: rulePriorityBlock ${JSON.stringify(block)} of backend ${profile.name} is not allowed; ` +
        `expected an integer from 1 to ${ALB_RULE_PRIORITIES.maxBlock}`,
    );
  }
  return block;
}

/** One listener rule: a backend route, as ALB path patterns. */
export interface AlbRoute {
  readonly backend: string;
  readonly kind: RouteKind;
  readonly pathPatterns: string[];
  /** First priority of the route's slot (see ALB_RULE_PRIORITIES). */
  readonly slotStart: number;
  /** Priority of the rule forwarding the path: slotStart + pathRuleOffset. */
  readonly priority: number;
  /** Regex and replacement removing the mount prefix, when there is one. */
  readonly rewrite?: { readonly regex: string; readonly replace: string };
}

/** The listener rules for the given backends in priority order (ALB stops at the first match).
 * nginx prefix semantics carry over: `/deepstream` matches `/deepstream*`, and a more specific
 * path wins; a layout in which a rule would hide a more specific one of another backend is
 * refused rather than deployed. */
export function albRoutes(backends: readonly Pick<AlbBackendArgs, 'profile' | 'prefix' | 'rulePriorityBlock'>[]): AlbRoute[] {
  const blockOwners = new Map<number, string>();
  const routes = backends.flatMap((backend) => {
    const { profile, prefix = '' } = backend;
    const block = albPriorityBlock(backend);
    const owner = blockOwners.get(block);
    if (owner !== undefined) {
      throw new Error(`ALB routes: rule priority block ${block} is claimed by both ${owner} and ${profile.name}; give one of them another rulePriorityBlock`);
    }
    blockOwners.set(block, profile.name);
    const mounted = profile.routes
      .map((route: ProxyRoute) => ({ route, literal: `${prefix}${route.path}`, exact: route.exact === true }))
      .map((entry) => ({ ...entry, catchAll: !entry.exact && entry.literal === '/' }))
      .sort((a, b) => Number(b.exact) - Number(a.exact) || b.literal.length - a.literal.length);
    const ranked = mounted.filter((entry) => !entry.catchAll);
    const slotsPerBlock = ALB_RULE_PRIORITIES.blockSize / ALB_RULE_PRIORITIES.routeSlotSize;
    if (ranked.length > slotsPerBlock) {
      throw new Error(`ALB routes: backend ${profile.name} has ${ranked.length} routes; a priority block holds at most ${slotsPerBlock}`);
    }
    return mounted.map(({ route, literal, exact, catchAll }) => {
      const slotStart = catchAll
        ? ALB_RULE_PRIORITIES.catchAllStart + block * ALB_RULE_PRIORITIES.routeSlotSize
        : block * ALB_RULE_PRIORITIES.blockSize + ranked.findIndex((entry) => entry.route === route) * ALB_RULE_PRIORITIES.routeSlotSize;
      return {
        backend: profile.name,
        kind: route.kind,
        pathPatterns: [exact ? literal : `${literal}*`],
        slotStart,
        priority: slotStart + ALB_RULE_PRIORITIES.pathRuleOffset,
        literal,
        exact,
        ...(prefix ? { rewrite: { regex: `^${escapeRegex(prefix)}/(.*)$`, replace: '/$1' } } : {}),
      };
    });
  });
  const seen = new Map<string, string>();
  for (const route of routes) {
    const pattern = route.pathPatterns[0];
    const owner = seen.get(pattern);
    if (owner !== undefined) {
      throw new Error(
        `ALB routes: path pattern "${pattern}" is claimed by both ${owner} and ${route.backend}; mount one of them under a prefix`,
      );
    }
    seen.set(pattern, route.backend);
  }
  const ordered = routes.sort((a, b) => a.priority - b.priority);
  ordered.forEach((earlier, index) => {
    const hidden = earlier.exact ? undefined : ordered.slice(index + 1).find((later) => later.literal.startsWith(earlier.literal));
    if (hidden) {
      throw new Error(
        `ALB routes: "${earlier.pathPatterns[0]}" of ${earlier.backend} (priority ${earlier.priority}) would take requests for the more ` +
          `specific "${hidden.pathPatterns[0]}" of ${hidden.backend} (priority ${hidden.priority}); mount one of them under a prefix`,
      );
    }
  });
  return ordered.map(({ literal: _literal, exact: _exact, ...route }) => route);
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** What ALB allows in one rule (rule-condition-types): at most three values per condition and five
 * wildcard characters (`*`, `?`) across the rule, path pattern included. */
const ALB_RULE_CONDITION_LIMITS = { valuesPerCondition: 3, wildcardsPerRule: 5 } as const;

/** Body of the 403 a refused handshake gets. */
export const ORIGIN_REFUSED_MESSAGE = 'origin not allowed';

/** The rules enforcing allowed origins on one WebSocket route, all before its path rule. */
export interface AlbOriginRules {
  /** Path + `Origin` in these values -> forward; the origins spread over as many rules as the
   * condition limits need, from the route's slot start. */
  readonly allowed: readonly { readonly priority: number; readonly origins: readonly string[] }[];
  /** Path + any `Origin` (`*`) -> 403. A request without the header has no value for an
   * http-header condition to match, so it falls through to the path rule. */
  readonly refusedPriority: number;
}

function wildcardCount(value: string): number {
  return (value.match(/[*?]/g) ?? []).length;
}

/** The origin rules of `route` for `allowedOrigins` (checked origins, at least one). */
export function albOriginRules(route: AlbRoute, allowedOrigins: readonly string[]): AlbOriginRules {
  const budget = ALB_RULE_CONDITION_LIMITS.wildcardsPerRule - route.pathPatterns.reduce((n, p) => n + wildcardCount(p), 0);
  const chunks: string[][] = [];
  for (const origin of allowedOrigins) {
    if (wildcardCount(origin) > budget) {
      throw new Error(`allowedOrigins: "${origin}" has more wildcards than an ALB rule on "${route.pathPatterns[0]}" can hold (${budget})`);
    }
    const current = chunks[chunks.length - 1];
    const fits =
      current !== undefined &&
      current.length < ALB_RULE_CONDITION_LIMITS.valuesPerCondition &&
      current.reduce((n, o) => n + wildcardCount(o), 0) + wildcardCount(origin) <= budget;
    if (fits) current.push(origin);
    else chunks.push([origin]);
  }
  if (chunks.length > ALB_RULE_PRIORITIES.originRefusedOffset) {
    throw new Error(
      `allowedOrigins: ${allowedOrigins.length} origins need ${chunks.length} ALB rules per WebSocket route; at most ${ALB_RULE_PRIORITIES.originRefusedOffset} fit`,
    );
  }
  return {
    allowed: chunks.map((origins, index) => ({ priority: route.slotStart + index, origins })),
    refusedPriority: route.slotStart + ALB_RULE_PRIORITIES.originRefusedOffset,
  };
}

/** Origins checked as the stack config checks them (at most 128 characters, what an ALB compares). */
function checkAllowedOrigins(origins: readonly string[]): readonly string[] {
  for (const origin of origins) {
    const checked = originSchema.safeParse(origin);
    if (!checked.success) {
      throw new Error(`allowedOrigins: "${origin}" is not allowed: ${checked.error.issues.map((issue) => issue.message).join('; ')}`);
    }
  }
  return origins;
}

/** Type token `realtime-edge:alb:AlbFrontend`. */
export class AlbFrontend extends pulumi.ComponentResource {
  readonly loadBalancer: aws.lb.LoadBalancer;
  readonly dnsName: pulumi.Output<string>;
  readonly zoneId: pulumi.Output<string>;
  readonly securityGroupId: pulumi.Output<string>;
  /** Target group ARN per backend name. */
  readonly targetGroupArns: Record<string, pulumi.Output<string>>;
  /** Client URL per backend name. */
  readonly urls: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: AlbFrontendArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-edge:alb:AlbFrontend', name, {}, opts);
    const parent = { parent: this };
    const tags = { ...args.tags, 'realtime-edge:component': name };
    const profiles = args.backends.map((b) => b.profile);
    if (profiles.length === 0) throw new Error(`${name}: backends is empty; expected at least one backend`);
    const sslPolicy = checkAlbSslPolicy(args.sslPolicy ?? ALB_DEFAULTS.sslPolicy);
    const allowedOrigins = checkAllowedOrigins(args.allowedOrigins ?? []);
    const routes = albRoutes(args.backends);

    const securityGroup = clientFacingSecurityGroup(
      name,
      {
        vpcId: args.vpcId,
        description: 'realtime-edge ALB: 443 and 80 from the allowed client networks',
        nameTag: `${name}-alb`,
        cidrs: args.allowedCidrs,
        listeners: [
          { port: 443, purpose: 'HTTPS and WSS clients' },
          { port: 80, purpose: 'redirect to HTTPS' },
        ],
        targets: args.backends.map((backend) => ({
          name: backend.profile.name,
          port: backend.profile.port,
          securityGroupId: backend.securityGroupId,
          description: `${backend.profile.displayName} nodes and their health checks`,
        })),
        tags,
      },
      parent,
    );
    this.securityGroupId = securityGroup.id;

    this.loadBalancer = new aws.lb.LoadBalancer(
      name,
      {
        loadBalancerType: 'application',
        internal: false,
        subnets: args.subnetIds,
        securityGroups: [securityGroup.id],
        idleTimeout: args.idleTimeoutSeconds ?? defaultIdleTimeoutSeconds(profiles),
        enableDeletionProtection: args.deletionProtection ?? ALB_DEFAULTS.deletionProtection,
        // Requests with header names nginx or the servers would reject never reach them.
        dropInvalidHeaderFields: true,
        accessLogs: args.accessLogsBucket
          ? { bucket: args.accessLogsBucket, enabled: true, prefix: `realtime-edge/${pulumi.getStack()}` }
          : undefined,
        tags,
      },
      parent,
    );
    this.dnsName = this.loadBalancer.dnsName;
    this.zoneId = this.loadBalancer.zoneId;

    const stickiness = args.stickiness ?? ALB_DEFAULTS.stickiness;
    this.targetGroupArns = {};
    for (const backend of args.backends) {
      const { profile } = backend;
      const targetGroup = new aws.lb.TargetGroup(
        `${name}-${profile.name}`,
        {
          vpcId: args.vpcId,
          targetType: 'instance',
          protocol: 'HTTP',
          port: profile.port,
          deregistrationDelay: args.deregistrationDelaySeconds ?? ALB_DEFAULTS.deregistrationDelaySeconds,
          healthCheck: {
            enabled: true,
            protocol: 'HTTP',
            port: 'traffic-port',
            path: profile.healthPath,
            matcher: ALB_DEFAULTS.healthCheck.matcher,
            interval: ALB_DEFAULTS.healthCheck.intervalSeconds,
            timeout: ALB_DEFAULTS.healthCheck.timeoutSeconds,
            healthyThreshold: ALB_DEFAULTS.healthCheck.healthyThreshold,
            unhealthyThreshold: ALB_DEFAULTS.healthCheck.unhealthyThreshold,
          },
          stickiness: { type: 'lb_cookie', enabled: stickiness, cookieDuration: ALB_DEFAULTS.stickinessCookieSeconds },
          tags,
        },
        parent,
      );
      this.targetGroupArns[profile.name] = targetGroup.arn;
      for (const node of backend.nodes) {
        new aws.lb.TargetGroupAttachment(
          `${name}-${node.name}`,
          { targetGroupArn: targetGroup.arn, targetId: node.instanceId, port: profile.port },
          parent,
        );
      }
    }

    new aws.lb.Listener(
      `${name}-http`,
      {
        loadBalancerArn: this.loadBalancer.arn,
        port: 80,
        protocol: 'HTTP',
        defaultActions: [{ type: 'redirect', redirect: { protocol: 'HTTPS', port: '443', statusCode: 'HTTP_301' } }],
        tags,
      },
      parent,
    );
    const https = new aws.lb.Listener(
      `${name}-https`,
      {
        loadBalancerArn: this.loadBalancer.arn,
        port: 443,
        protocol: 'HTTPS',
        sslPolicy,
        certificateArn: args.certificateArn,
        defaultActions: [
          { type: 'fixed-response', fixedResponse: { statusCode: '404', contentType: 'text/plain', messageBody: 'no route' } },
        ],
        tags,
      },
      parent,
    );
    const profileOf = Object.fromEntries(profiles.map((profile) => [profile.name, profile]));
    for (const route of routes) {
      // Named by what they match, so a rule keeps its resource whatever the other backends do.
      const slug = route.pathPatterns[0].replace(/[^A-Za-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'root';
      const ruleName = `${name}-${route.backend}-${slug}`;
      const path = { pathPattern: { values: route.pathPatterns } };
      const forward = {
        actions: [{ type: 'forward', targetGroupArn: this.targetGroupArns[route.backend] }],
        transforms: route.rewrite
          ? [{ type: 'url-rewrite', urlRewriteConfig: { rewrite: { regex: route.rewrite.regex, replace: route.rewrite.replace } } }]
          : undefined,
      };
      const rule = (suffix: string, priority: number, spec: Pick<aws.lb.ListenerRuleArgs, 'conditions' | 'actions' | 'transforms'>) =>
        new aws.lb.ListenerRule(`${ruleName}${suffix}`, { listenerArn: https.arn, priority, ...spec, tags }, parent);

      if (allowedOrigins.length > 0 && route.kind === 'websocket' && proxyEnforcesOrigins(profileOf[route.backend])) {
        // The server accepts any Origin on the upgrade, so the ALB turns foreign browser origins away.
        const originRules = albOriginRules(route, allowedOrigins);
        originRules.allowed.forEach(({ priority, origins }, index) =>
          rule(`-origin-${index}`, priority, { conditions: [path, { httpHeader: { httpHeaderName: 'Origin', values: [...origins] } }], ...forward }),
        );
        rule('-foreign-origin', originRules.refusedPriority, {
          conditions: [path, { httpHeader: { httpHeaderName: 'Origin', values: ['*'] } }],
          actions: [
            { type: 'fixed-response', fixedResponse: { statusCode: '403', contentType: 'text/plain', messageBody: ORIGIN_REFUSED_MESSAGE } },
          ],
        });
      }
      rule('', route.priority, { conditions: [path], ...forward });
    }

    this.urls = this.dnsName.apply((dnsName) =>
      Object.fromEntries(
        args.backends.map((b) => [b.profile.name, clientUrl(args.domain ?? dnsName, b.profile, { prefix: b.prefix })]),
      ),
    );
    this.registerOutputs({
      dnsName: this.dnsName,
      securityGroupId: this.securityGroupId,
      targetGroupArns: this.targetGroupArns,
      urls: this.urls,
    });
  }
}

/**
 * The managed alternative to the nginx hosts: an Application Load Balancer terminating TLS with an
 * ACM certificate, one target group per backend (health-checked on the profile's health path),
 * path rules from the backend profiles, and an idle timeout above the servers' ping interval.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { defaultIdleTimeoutSeconds } from '../config/proxy-defaults';
import { keys as configKeys } from '../config/schema';
import type { ProxyRoute, ServerProfile } from '../servers/profile';
import { clientFacingSecurityGroup, type CidrLists } from './network';
import { clientUrl } from './urls';

/** TLS 1.3 and 1.2 only (no 1.0/1.1), set explicitly rather than trusting the changing default. */
export const ALB_TLS_POLICY = 'ELBSecurityPolicy-TLS13-1-2-2021-06';

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
  /** @default ALB_TLS_POLICY */
  readonly sslPolicy?: string;
  readonly tags?: Readonly<Record<string, string>>;
}

/** One listener rule: a backend route, as ALB path patterns. */
export interface AlbRoute {
  readonly backend: string;
  readonly pathPatterns: string[];
  /** Regex and replacement removing the mount prefix, when there is one. */
  readonly rewrite?: { readonly regex: string; readonly replace: string };
}

/** The listener rules for the given backends, most specific first (ALB stops at the first match,
 * in priority order). nginx prefix semantics carry over: `/deepstream` matches `/deepstream*`. */
export function albRoutes(backends: readonly Pick<AlbBackendArgs, 'profile' | 'prefix'>[]): AlbRoute[] {
  const routes = backends.flatMap(({ profile, prefix = '' }) =>
    profile.routes.map((route: ProxyRoute) => {
      const literal = `${prefix}${route.path}`;
      const pattern = route.exact ? literal : `${literal}*`;
      return {
        backend: profile.name,
        pathPatterns: [pattern],
        exact: route.exact === true,
        literalLength: literal.length,
        ...(prefix ? { rewrite: { regex: `^${escapeRegex(prefix)}/(.*)$`, replace: '/$1' } } : {}),
      };
    }),
  );
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
  return routes
    .sort((a, b) => Number(b.exact) - Number(a.exact) || b.literalLength - a.literalLength)
    .map(({ backend, pathPatterns, rewrite }) => ({ backend, pathPatterns, ...(rewrite ? { rewrite } : {}) }));
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
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
        sslPolicy: args.sslPolicy ?? ALB_DEFAULTS.sslPolicy,
        certificateArn: args.certificateArn,
        defaultActions: [
          { type: 'fixed-response', fixedResponse: { statusCode: '404', contentType: 'text/plain', messageBody: 'no route' } },
        ],
        tags,
      },
      parent,
    );
    routes.forEach((route, index) => {
      // Named by what they match, so adding a route renumbers priorities without replacing rules.
      const slug = route.pathPatterns[0].replace(/[^A-Za-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'root';
      new aws.lb.ListenerRule(
        `${name}-${route.backend}-${slug}`,
        {
          listenerArn: https.arn,
          // Gaps of 10 leave room for hand-made rules between ours.
          priority: (index + 1) * 10,
          conditions: [{ pathPattern: { values: route.pathPatterns } }],
          actions: [{ type: 'forward', targetGroupArn: this.targetGroupArns[route.backend] }],
          transforms: route.rewrite
            ? [{ type: 'url-rewrite', urlRewriteConfig: { rewrite: { regex: route.rewrite.regex, replace: route.rewrite.replace } } }]
            : undefined,
          tags,
        },
        parent,
      );
    });

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

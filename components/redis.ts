/**
 * The Redis the clusters share (deepstream's cluster messages and cache, Centrifugo's engine): a
 * new ElastiCache replication group, encrypted at rest and in transit, with an AUTH token kept in
 * SSM and a security group open only to the cluster nodes — or an endpoint that already exists.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import * as random from '@pulumi/random';
import type { RedisEndpoint } from '../servers/profile';
import type { ClusterRedisArgs } from './cluster';
import { ssmParameterArn } from './host';
import { allowIngressFromSecurityGroup } from './network';

export const REDIS_DEFAULTS = {
  port: 6379,
  engine: 'redis',
  /** Per engine: ElastiCache offers Valkey from 7.2 on, so Redis OSS's 7.1 names no Valkey. */
  engineVersions: { redis: '7.1', valkey: '7.2' },
  /** ElastiCache accepts 16-128 printable characters; 64 letters and digits avoid the forbidden
   * `/`, `"` and `@`. */
  authTokenLength: 64,
} as const;

export type RedisEngine = keyof typeof REDIS_DEFAULTS.engineVersions;

export interface ManagedRedisArgs {
  readonly mode: 'elasticache';
  readonly vpcId: pulumi.Input<string>;
  /** Private subnets; with replicas, give subnets in at least two AZs. */
  readonly subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  /** ElastiCache node type, e.g. `cache.t4g.small`. */
  readonly nodeType: string;
  /** Replicas besides the primary, 0-5. With one or more, automatic failover and Multi-AZ are on. */
  readonly replicas: number;
  /** @default REDIS_DEFAULTS.engine (`redis`); `valkey` is the cheaper drop-in. */
  readonly engine?: RedisEngine;
  /** @default REDIS_DEFAULTS.engineVersions[engine] (redis 7.1, valkey 7.2) */
  readonly engineVersion?: string;
  /** Require an AUTH token (generated, stored as an SSM SecureString). @default true */
  readonly authToken?: boolean;
  /** @default `/realtime-edge/<stack>/<name>` */
  readonly parameterPrefix?: string;
  readonly tags?: Readonly<Record<string, string>>;
}

export interface ExistingRedisArgs {
  readonly mode: 'existing';
  /** Host, port, TLS and the SSM parameter name of the AUTH token, as the nodes will use them. */
  readonly endpoint: RedisEndpoint;
}

export type RedisArgs = ManagedRedisArgs | ExistingRedisArgs;

/** Type token `realtime-edge:redis:Redis`. */
export class Redis extends pulumi.ComponentResource {
  readonly host: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  readonly tls: pulumi.Output<boolean>;
  /** What the nodes render into their config. */
  readonly endpoint: pulumi.Output<RedisEndpoint>;
  /** Undefined for an existing endpoint: realtime-edge does not manage its firewall. */
  readonly securityGroupId: pulumi.Output<string> | undefined;
  readonly authTokenParameterArn: pulumi.Output<string> | undefined;
  readonly replicationGroup: aws.elasticache.ReplicationGroup | undefined;
  private readonly componentName: string;
  private readonly portNumber: number;
  private readonly securityGroup: aws.ec2.SecurityGroup | undefined;

  constructor(name: string, args: RedisArgs, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-edge:redis:Redis', name, {}, opts);
    this.componentName = name;
    const parent = { parent: this };

    if (args.mode === 'existing') {
      const endpoint = args.endpoint;
      this.portNumber = endpoint.port;
      this.endpoint = pulumi.output(endpoint);
      this.authTokenParameterArn =
        endpoint.authTokenParameter !== undefined ? ssmParameterArn(endpoint.authTokenParameter, parent) : undefined;
      this.securityGroupId = undefined;
      this.securityGroup = undefined;
      this.replicationGroup = undefined;
    } else {
      if (!Number.isInteger(args.replicas) || args.replicas < 0 || args.replicas > 5) {
        throw new Error(`${name}: replicas ${JSON.stringify(args.replicas)} is not allowed; expected an integer from 0 to 5`);
      }
      this.portNumber = REDIS_DEFAULTS.port;
      const tags = { ...args.tags, 'realtime-edge:component': name };
      this.securityGroup = new aws.ec2.SecurityGroup(
        `${name}-sg`,
        {
          vpcId: args.vpcId,
          description: `realtime-edge Redis: port ${REDIS_DEFAULTS.port} from the cluster nodes only`,
          tags: { ...tags, Name: `${name}-redis` },
        },
        parent,
      );
      this.securityGroupId = this.securityGroup.id;
      const subnetGroup = new aws.elasticache.SubnetGroup(
        `${name}-subnets`,
        { description: `realtime-edge Redis ${name}`, subnetIds: args.subnetIds, tags },
        parent,
      );

      const parameterPrefix = args.parameterPrefix ?? `/realtime-edge/${pulumi.getStack()}/${name}`;
      let authToken: pulumi.Output<string> | undefined;
      let authTokenParameterName: string | undefined;
      if (args.authToken ?? true) {
        const token = new random.RandomPassword(
          `${name}-auth-token`,
          { length: REDIS_DEFAULTS.authTokenLength, special: false },
          parent,
        );
        authToken = pulumi.secret(token.result);
        authTokenParameterName = `${parameterPrefix}/auth-token`;
        const parameter = new aws.ssm.Parameter(
          `${name}-auth-token`,
          {
            name: authTokenParameterName,
            description: 'realtime-edge Redis AUTH token',
            type: 'SecureString',
            value: authToken,
            tags,
          },
          parent,
        );
        this.authTokenParameterArn = parameter.arn;
      } else {
        this.authTokenParameterArn = undefined;
      }

      const failover = args.replicas >= 1;
      this.replicationGroup = new aws.elasticache.ReplicationGroup(
        `${name}-group`,
        {
          replicationGroupId: replicationGroupId(`${pulumi.getStack()}-${name}`),
          description: `realtime-edge Redis ${name}`,
          ...redisEngine(args),
          nodeType: args.nodeType,
          numCacheClusters: 1 + args.replicas,
          port: REDIS_DEFAULTS.port,
          automaticFailoverEnabled: failover,
          multiAzEnabled: failover,
          atRestEncryptionEnabled: true,
          transitEncryptionEnabled: true,
          authToken,
          subnetGroupName: subnetGroup.name,
          securityGroupIds: [this.securityGroup.id],
          autoMinorVersionUpgrade: true,
          tags,
        },
        parent,
      );
      this.endpoint = pulumi.all([this.replicationGroup.primaryEndpointAddress]).apply(
        ([host]): RedisEndpoint => ({
          host,
          port: REDIS_DEFAULTS.port,
          tls: true,
          ...(authTokenParameterName ? { authTokenParameter: authTokenParameterName } : {}),
        }),
      );
    }
    this.host = this.endpoint.host;
    this.port = this.endpoint.port;
    this.tls = this.endpoint.tls;
    this.registerOutputs({ host: this.host, port: this.port, tls: this.tls, securityGroupId: this.securityGroupId });
  }

  /** How a ServerCluster reaches this Redis. */
  get clientArgs(): ClusterRedisArgs {
    return {
      endpoint: this.endpoint,
      port: this.portNumber,
      securityGroupId: this.securityGroupId,
      authTokenParameterArn: this.authTokenParameterArn,
    };
  }

  /** Opens the Redis port to a cluster's nodes. An existing endpoint's firewall is not ours to
   * change, so this returns undefined for it. */
  allowClientsFrom(sourceName: string, sourceSecurityGroupId: pulumi.Input<string>): aws.vpc.SecurityGroupIngressRule | undefined {
    if (!this.securityGroup) return undefined;
    return allowIngressFromSecurityGroup(
      `${this.componentName}-from-${sourceName}`,
      {
        securityGroupId: this.securityGroup.id,
        sourceSecurityGroupId,
        port: this.portNumber,
        description: `Redis from ${sourceName}`,
      },
      { parent: this },
    );
  }
}

/** The engine and version a replication group runs: as given, or the engine's default version. */
export function redisEngine(args: Pick<ManagedRedisArgs, 'engine' | 'engineVersion'>): { engine: RedisEngine; engineVersion: string } {
  const engine = args.engine ?? REDIS_DEFAULTS.engine;
  return { engine, engineVersion: args.engineVersion ?? REDIS_DEFAULTS.engineVersions[engine] };
}

/** ElastiCache ids: 1-40 lowercase letters, digits and single hyphens, starting with a letter. */
export function replicationGroupId(seed: string): string {
  const cleaned = seed
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^[^a-z]+/, '');
  return (cleaned || 'realtime-edge').slice(0, 40).replace(/-+$/, '');
}

/**
 * One cluster mechanism for every realtime server: N EC2 nodes spread over private subnets, each
 * booting from the backend's own user-data renderer, the backend's secrets generated here and
 * handed to the nodes as SSM parameter names only, and a security group whose node port admits
 * only the security groups of the proxy and the ALB. What differs between deepstream and
 * Centrifugo lives in their `ServerBackend` (servers/); nothing here asks which server it is.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import * as random from '@pulumi/random';
import { serverBackends } from '../servers';
import type { NodeRenderInput, RedisEndpoint, ServerBackend } from '../servers/profile';
import type { RenderedArtifact } from './artifacts';
import { HostGroup, type HostGroupArgs } from './host';
import { HTTPS_PORT, allowEgress, allowIngressFromSecurityGroup } from './network';

/** Where the nodes find Redis. */
export interface ClusterRedisArgs {
  readonly endpoint: pulumi.Input<RedisEndpoint>;
  /** The endpoint's port, known now: the egress rule needs it before the endpoint resolves. */
  readonly port: number;
  /** Security group of the Redis servers; egress to Redis is limited to it when given.
   * @default undefined (egress on the Redis port to any address) */
  readonly securityGroupId?: pulumi.Input<string>;
  /** ARN of `endpoint.authTokenParameter`, so the node role may read it. @default undefined */
  readonly authTokenParameterArn?: pulumi.Input<string>;
}

export interface ServerClusterArgs {
  /** The realtime server the nodes run (an entry of `serverBackends`). */
  readonly backend: ServerBackend;
  /** Number of nodes, at least 1. */
  readonly nodeCount: number;
  /** EC2 instance type of the nodes. */
  readonly instanceType: string;
  /** Pinned server version. @default backend.defaultVersion */
  readonly version?: string;
  readonly vpcId: pulumi.Input<string>;
  /** Private subnets; node i goes to subnet i mod length, so N nodes over M AZs are spread evenly. */
  readonly subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  readonly redis: ClusterRedisArgs;
  /** Browser origins allowed to connect. @default [] (any origin) */
  readonly allowedOrigins?: readonly string[];
  /** Pinned sha256 of the release archive per CPU architecture (servers installed from a binary
   * release, e.g. Centrifugo). @default undefined */
  readonly releaseSha256?: NodeRenderInput['releaseSha256'];
  /** Install a release verified only against its published checksums file. @default false */
  readonly allowUnpinnedRelease?: boolean;
  /** Open-file floor of the server process (systemd LimitNOFILE). @default the backend's own default */
  readonly maxConnections?: number;
  /** Prefix of the SSM parameter names holding the generated secrets.
   * @default `/realtime-edge/<stack>/<name>` */
  readonly secretParameterPrefix?: string;
  /** Root volume size of each node. @default HOST_DEFAULTS.rootVolumeSizeGiB */
  readonly rootVolumeSizeGiB?: number;
  /** Pin the AMI (changing it replaces the hosts). Unset, a host keeps the AMI it was created
   * from; see HostGroupArgs.amiId. @default the newest Amazon Linux 2023 at each host's creation */
  readonly amiId?: pulumi.Input<string>;
  readonly tags?: Readonly<Record<string, string>>;
}

/** A node of the cluster, as other components see it. */
export interface ClusterNode {
  readonly name: string;
  readonly instanceId: pulumi.Output<string>;
  readonly privateIp: pulumi.Output<string>;
}

/**
 * N nodes of one realtime server. Type token `realtime-edge:cluster:ServerCluster` (subclasses
 * that fix the backend use their own token).
 */
export class ServerCluster extends pulumi.ComponentResource {
  readonly backend: ServerBackend;
  private readonly componentName: string;
  readonly securityGroup: aws.ec2.SecurityGroup;
  readonly securityGroupId: pulumi.Output<string>;
  readonly hosts: HostGroup;
  readonly nodes: readonly ClusterNode[];
  readonly instanceIds: pulumi.Output<string[]>;
  readonly privateIps: pulumi.Output<string[]>;
  /** SSM parameter names of the generated secrets, keyed by `SecretSpec.key`. */
  readonly secretParameterNames: pulumi.Output<Record<string, string>>;
  /** User data and config files of every node, as deployed. */
  readonly artifacts: pulumi.Output<RenderedArtifact[]>;

  constructor(
    name: string,
    args: ServerClusterArgs,
    opts?: pulumi.ComponentResourceOptions,
    typeToken = 'realtime-edge:cluster:ServerCluster',
  ) {
    super(typeToken, name, {}, opts);
    const { backend } = args;
    const profile = backend.profile;
    if (!Number.isInteger(args.nodeCount) || args.nodeCount < 1) {
      throw new Error(`${name}: nodeCount ${JSON.stringify(args.nodeCount)} is not allowed; expected an integer >= 1`);
    }
    this.backend = backend;
    this.componentName = name;
    const parent = { parent: this };
    const tags = { ...args.tags, 'realtime-edge:component': name, 'realtime-edge:server': profile.name };
    const redisEndpoint = pulumi.output(args.redis.endpoint);

    this.securityGroup = new aws.ec2.SecurityGroup(
      `${name}-sg`,
      {
        vpcId: args.vpcId,
        description: `realtime-edge ${profile.displayName} nodes: port ${profile.port} from the proxy and ALB only`,
        tags: { ...tags, Name: `${name}-nodes` },
      },
      parent,
    );
    this.securityGroupId = this.securityGroup.id;
    allowEgress(
      `${name}-egress-https`,
      { securityGroupId: this.securityGroup.id, port: HTTPS_PORT, description: 'packages, releases and SSM at boot', tags },
      parent,
    );
    allowEgress(
      `${name}-egress-redis`,
      {
        securityGroupId: this.securityGroup.id,
        destinationSecurityGroupId: args.redis.securityGroupId,
        port: args.redis.port,
        description: 'Redis (cluster messaging, cache, engine)',
        tags,
      },
      parent,
    );

    const secretParameterPrefix =
      args.secretParameterPrefix ?? `/realtime-edge/${pulumi.getStack()}/${name}`;
    const secretParameters = backend.secrets.map((secret) => {
      const value = new random.RandomPassword(
        `${name}-${secret.key}`,
        // Letters and digits only: the value lands in YAML/JSON config files and HTTP headers.
        { length: secret.length, special: false },
        parent,
      );
      const parameter = new aws.ssm.Parameter(
        `${name}-${secret.key}`,
        {
          name: `${secretParameterPrefix}/${secret.key}`,
          description: `${profile.displayName} ${secret.description}`,
          type: 'SecureString',
          value: pulumi.secret(value.result),
          tags,
        },
        parent,
      );
      return { key: secret.key, parameter };
    });
    const parameterNames: Record<string, string> = Object.fromEntries(
      secretParameters.map(({ key }) => [key, `${secretParameterPrefix}/${key}`]),
    );
    this.secretParameterNames = pulumi.output(parameterNames);

    const region = aws.getRegionOutput({}, parent).region;
    const subnetIds = pulumi.output(args.subnetIds);
    const version = args.version ?? backend.defaultVersion;
    const nodeInputs = Array.from({ length: args.nodeCount }, (_, index) => {
      const nodeName = `${name}-${index}`;
      const input = pulumi.all([redisEndpoint, region]).apply(
        ([redis, r]): NodeRenderInput => ({
          nodeName,
          version,
          redis,
          allowedOrigins: args.allowedOrigins ?? [],
          secretParameters: parameterNames,
          region: r,
          maxConnections: args.maxConnections,
          ...(args.releaseSha256 ? { releaseSha256: args.releaseSha256 } : {}),
          ...(args.allowUnpinnedRelease !== undefined ? { allowUnpinnedRelease: args.allowUnpinnedRelease } : {}),
        }),
      );
      return { nodeName, index, input, userData: input.apply((i) => backend.renderUserData(i)) };
    });

    const hostArgs: HostGroupArgs = {
      instanceType: args.instanceType,
      securityGroupIds: [this.securityGroup.id],
      readableParameterArns: [
        ...secretParameters.map(({ parameter }) => parameter.arn),
        ...(args.redis.authTokenParameterArn ? [args.redis.authTokenParameterArn] : []),
      ],
      rootVolumeSizeGiB: args.rootVolumeSizeGiB,
      amiId: args.amiId,
      tags,
      hosts: nodeInputs.map(({ nodeName, index, userData }) => ({
        name: nodeName,
        subnetId: subnetIds.apply((ids) => {
          if (ids.length === 0) throw new Error(`${name}: subnetIds is empty; expected at least one private subnet`);
          return ids[index % ids.length];
        }),
        userData,
      })),
    };
    this.hosts = new HostGroup(`${name}-nodes`, hostArgs, parent);
    this.instanceIds = this.hosts.instanceIds;
    this.privateIps = this.hosts.privateIps;
    this.nodes = this.hosts.instances.map((instance, index) => ({
      name: nodeInputs[index].nodeName,
      instanceId: instance.id,
      privateIp: instance.privateIp,
    }));

    this.artifacts = pulumi
      .all(nodeInputs.map(({ input, userData }) => pulumi.all([input, userData])))
      .apply((nodes) =>
        nodes.flatMap(([input, userData]): RenderedArtifact[] => [
          { kind: 'user-data', resource: input.nodeName, fileName: 'user-data.sh', content: userData },
          ...backend.renderConfigFiles(input).map((file) => ({
            kind: file.kind,
            resource: input.nodeName,
            fileName: file.path.split('/').pop()!,
            content: file.content,
          })),
        ]),
      );

    this.registerOutputs({
      securityGroupId: this.securityGroupId,
      instanceIds: this.instanceIds,
      privateIps: this.privateIps,
      secretParameterNames: this.secretParameterNames,
    });
  }

  /** Lets members of `sourceSecurityGroupId` (a proxy, an ALB) reach the node port. */
  allowClientsFrom(sourceName: string, sourceSecurityGroupId: pulumi.Input<string>): aws.vpc.SecurityGroupIngressRule {
    return allowIngressFromSecurityGroup(
      `${this.componentName}-from-${sourceName}`,
      {
        securityGroupId: this.securityGroup.id,
        sourceSecurityGroupId,
        port: this.backend.profile.port,
        description: `${this.backend.profile.displayName} from ${sourceName}`,
      },
      { parent: this },
    );
  }
}


/** ServerCluster arguments without the backend, for the classes that fix it. */
export type BackendClusterArgs = Omit<ServerClusterArgs, 'backend'>;

/** deepstream.io nodes. Type token `realtime-edge:cluster:DeepstreamCluster`. */
export class DeepstreamCluster extends ServerCluster {
  constructor(name: string, args: BackendClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, { ...args, backend: serverBackends.deepstream }, opts, 'realtime-edge:cluster:DeepstreamCluster');
  }
}

/** Centrifugo nodes. Type token `realtime-edge:cluster:CentrifugoCluster`. */
export class CentrifugoCluster extends ServerCluster {
  constructor(name: string, args: BackendClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, { ...args, backend: serverBackends.centrifugo }, opts, 'realtime-edge:cluster:CentrifugoCluster');
  }
}

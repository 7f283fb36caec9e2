/**
 * The whole deployment from one validated `StackConfig`: the network (the region's default VPC
 * when none is configured), Redis, one ServerCluster per enabled backend, and the nginx hosts
 * and/or the ALB in front, each node port opened to exactly those frontends.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import type { BackendName, StackConfig, TlsConfig } from '../config/schema';
import { mountPrefix } from '../nginx/proxy-spec';
import { serverBackends } from '../servers';
import { AlbFrontend } from './albFrontend';
import { collectArtifacts, type RenderedArtifact } from './artifacts';
import { ServerCluster } from './cluster';
import { NginxProxy, type NginxTlsSource } from './nginxProxy';
import { Redis, type RedisArgs } from './redis';

export interface EdgeNetwork {
  readonly vpcId: pulumi.Output<string>;
  /** nginx hosts and the ALB. */
  readonly publicSubnetIds: pulumi.Output<string[]>;
  /** Backend nodes and Redis. */
  readonly privateSubnetIds: pulumi.Output<string[]>;
}

/** The configured VPC, or the region's default VPC with its default subnets (one per AZ, public:
 * the nodes keep no open port there, only the proxy and ALB security groups reach them). */
export function edgeNetwork(vpc: StackConfig['vpc'], opts: pulumi.InvokeOutputOptions): EdgeNetwork {
  if (vpc) {
    return {
      vpcId: pulumi.output(vpc.vpcId),
      publicSubnetIds: pulumi.output([...vpc.publicSubnetIds]),
      privateSubnetIds: pulumi.output([...vpc.privateSubnetIds]),
    };
  }
  const defaultVpc = aws.ec2.getVpcOutput({ default: true }, opts);
  const subnets = aws.ec2.getSubnetsOutput(
    {
      filters: [
        { name: 'vpc-id', values: [defaultVpc.id] },
        { name: 'default-for-az', values: ['true'] },
      ],
    },
    opts,
  );
  // Sorted: the API returns subnets in no fixed order, and node i's subnet must stay put.
  const ids = subnets.ids.apply((list) => [...list].sort());
  return { vpcId: defaultVpc.id, publicSubnetIds: ids, privateSubnetIds: ids };
}

function nginxTlsSource(tls: TlsConfig): NginxTlsSource {
  switch (tls.source) {
    case 'self-signed':
      return { source: 'self-signed' };
    case 'ssm':
      return { source: 'ssm', certificateParameter: tls.certificateParameter, keyParameter: tls.keyParameter };
    case 'secrets-manager':
      return { source: 'secrets-manager', secretId: tls.secretId };
    case 'acm':
      throw new Error('tlsSource: "acm" certificates live in the ALB only; nginx needs self-signed, ssm or secrets-manager');
  }
}

function redisArgs(config: StackConfig, network: EdgeNetwork): RedisArgs {
  const redis = config.redis;
  if (redis.mode === 'existing') {
    return {
      mode: 'existing',
      endpoint: {
        host: redis.host,
        port: redis.port,
        tls: redis.tls,
        ...(redis.authTokenParameter ? { authTokenParameter: redis.authTokenParameter } : {}),
      },
    };
  }
  return {
    mode: 'elasticache',
    vpcId: network.vpcId,
    subnetIds: network.privateSubnetIds,
    nodeType: redis.nodeType,
    replicas: redis.replicas,
    tags: config.tags,
  };
}

/** Type token `realtime-edge:index:RealtimeEdge`. */
export class RealtimeEdge extends pulumi.ComponentResource {
  readonly network: EdgeNetwork;
  readonly redis: Redis;
  readonly clusters: Readonly<Partial<Record<BackendName, ServerCluster>>>;
  readonly proxy: NginxProxy | undefined;
  readonly alb: AlbFrontend | undefined;
  /** Client URLs per frontend and backend. */
  readonly urls: pulumi.Output<{ nginx?: Record<string, string[]>; alb?: Record<string, string> }>;
  readonly artifacts: pulumi.Output<RenderedArtifact[]>;

  constructor(name: string, config: StackConfig, opts?: pulumi.ComponentResourceOptions) {
    super('realtime-edge:index:RealtimeEdge', name, {}, opts);
    const parent = { parent: this };
    const tags = { ...config.tags, 'realtime-edge:stack': pulumi.getStack() };
    this.network = edgeNetwork(config.vpc, parent);

    this.redis = new Redis(`${name}-redis`, redisArgs({ ...config, tags }, this.network), parent);

    const enabled = (Object.keys(serverBackends) as BackendName[]).filter((backend) => config.backends[backend]);
    const clusters: Partial<Record<BackendName, ServerCluster>> = {};
    const mounted = enabled.map((backendName, index) => {
      const settings = config.backends[backendName]!;
      const backend = serverBackends[backendName];
      const cluster = new ServerCluster(
        `${name}-${backendName}`,
        {
          backend,
          nodeCount: settings.nodes,
          instanceType: settings.instanceType,
          version: settings.version,
          ...(settings.releaseSha256 ? { releaseSha256: settings.releaseSha256 } : {}),
          ...(settings.allowUnpinnedRelease !== undefined ? { allowUnpinnedRelease: settings.allowUnpinnedRelease } : {}),
          vpcId: this.network.vpcId,
          subnetIds: this.network.privateSubnetIds,
          redis: this.redis.clientArgs,
          allowedOrigins: config.allowedOrigins,
          maxConnections: config.maxConnections,
          tags,
        },
        parent,
      );
      this.redis.allowClientsFrom(backendName, cluster.securityGroupId);
      clusters[backendName] = cluster;
      return { cluster, prefix: mountPrefix(backend.profile, index) };
    });
    this.clusters = clusters;

    if (config.nginx) {
      const nginx = config.nginx;
      this.proxy = new NginxProxy(
        `${name}-proxy`,
        {
          vpcId: this.network.vpcId,
          subnetIds: this.network.publicSubnetIds,
          backends: mounted.map(({ cluster, prefix }) => ({
            profile: cluster.backend.profile,
            nodeAddresses: cluster.privateIps,
            securityGroupId: cluster.securityGroupId,
            ...(prefix ? { prefix } : {}),
          })),
          tls: nginxTlsSource(config.tls),
          ...(config.tls.domain ? { domain: config.tls.domain } : {}),
          count: nginx.count,
          instanceType: nginx.instanceType,
          mode: nginx.mode,
          balance: nginx.balance,
          allowedCidrs: config.allowedCidrs,
          allowedOrigins: config.allowedOrigins,
          hstsMaxAgeSeconds: config.tls.hstsMaxAgeSeconds,
          maxConnections: config.maxConnections,
          timeouts: config.timeouts,
          nginxVersion: nginx.version,
          ...(nginx.sha256 ? { nginxSha256: nginx.sha256 } : {}),
          tags,
        },
        parent,
      );
      for (const { cluster } of mounted) cluster.allowClientsFrom('proxy', this.proxy.securityGroupId);
    }

    if (config.alb) {
      const alb = config.alb;
      this.alb = new AlbFrontend(
        `${name}-alb`,
        {
          vpcId: this.network.vpcId,
          subnetIds: this.network.publicSubnetIds,
          allowedCidrs: config.allowedCidrs,
          certificateArn: alb.certificateArn,
          backends: mounted.map(({ cluster, prefix }) => ({
            profile: cluster.backend.profile,
            nodes: cluster.nodes,
            securityGroupId: cluster.securityGroupId,
            ...(prefix ? { prefix } : {}),
          })),
          ...(config.tls.domain ? { domain: config.tls.domain } : {}),
          allowedOrigins: config.allowedOrigins,
          // Unset: the ALB derives it from the same backends' ping intervals, as nginx does.
          ...(config.timeouts.idleSeconds !== undefined ? { idleTimeoutSeconds: config.timeouts.idleSeconds } : {}),
          stickiness: alb.stickiness,
          deregistrationDelaySeconds: alb.deregistrationDelaySeconds,
          deletionProtection: alb.deletionProtection,
          ...(alb.accessLogsBucket ? { accessLogsBucket: alb.accessLogsBucket } : {}),
          tags,
        },
        parent,
      );
      for (const { cluster } of mounted) cluster.allowClientsFrom('alb', this.alb.securityGroupId);
    }

    this.urls = pulumi.all([this.proxy?.urls, this.alb?.urls]).apply(([nginx, alb]) => ({
      ...(nginx ? { nginx } : {}),
      ...(alb ? { alb } : {}),
    }));
    this.artifacts = collectArtifacts(
      ...mounted.map(({ cluster }) => cluster.artifacts),
      ...(this.proxy ? [this.proxy.artifacts] : []),
    );
    this.registerOutputs({
      urls: this.urls,
      vpcId: this.network.vpcId,
      redisHost: this.redis.host,
    });
  }
}

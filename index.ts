/**
 * The realtime-edge Pulumi program: one RealtimeEdge from the validated stack configuration.
 * Invalid configuration stops here, before any resource exists, with every problem listed.
 */
import { RealtimeEdge } from './components/realtimeEdge';
import { readPulumiConfig } from './config/stack';

const edge = new RealtimeEdge('edge', readPulumiConfig());

export const urls = edge.urls;
export const vpcId = edge.network.vpcId;
export const proxyPublicIps = edge.proxy?.publicIps;
export const proxyPublicDns = edge.proxy?.publicDns;
export const albDnsName = edge.alb?.dnsName;
export const redisEndpoint = { host: edge.redis.host, port: edge.redis.port, tls: edge.redis.tls };
export const nodePrivateIps = Object.fromEntries(
  Object.entries(edge.clusters).map(([backend, cluster]) => [backend, cluster!.privateIps]),
);

/**
 * Offline stand-ins for the AWS, random and tls providers, shared by `npm run render` and the
 * component tests. They return what the real providers would (ids shaped like `i-0…`, ARNs,
 * private and public addresses, ElastiCache endpoints, a default VPC with three subnets in three
 * AZs) so the program runs unchanged, and they remember every resource and every generated value so
 * a caller can tell a placeholder from a value the program chose.
 *
 * Values are derived from hashes of resource names, never from registration order (which depends
 * on when each resource's inputs resolve), so two runs of one stack produce identical output.
 */
import { createHash } from 'crypto';
import * as pulumi from '@pulumi/pulumi';

export interface MockWorld {
  region: string;
  accountId: string;
  partition: string;
  vpc: { id: string; cidrBlock: string };
  subnets: readonly { id: string; availabilityZone: string; cidrBlock: string }[];
}

export function defaultMockWorld(region = 'us-east-1'): MockWorld {
  const azs = ['a', 'b', 'c'].map((letter) => `${region}${letter}`);
  return {
    region,
    accountId: '123456789012',
    partition: 'aws',
    vpc: { id: 'vpc-0a1b2c3d4e5f60718', cidrBlock: '172.31.0.0/16' },
    subnets: azs.map((availabilityZone, index) => ({
      id: `subnet-0${hex(`subnet-${availabilityZone}`, 16)}`,
      availabilityZone,
      cidrBlock: `172.31.${index * 16}.0/20`,
    })),
  };
}

/** One registered resource, as the engine would have seen it. */
export interface RecordedResource {
  type: string;
  name: string;
  /** Component resources are not custom; they have no id or provider state. */
  custom: boolean;
  /** Inputs as sent to the provider. A Pulumi secret appears as `{[specialSigKey]: specialSecretSig, value}`. */
  inputs: Record<string, unknown>;
  id?: string;
  state: Record<string, unknown>;
}

export interface RecordedInvoke {
  token: string;
  inputs: Record<string, unknown>;
}

/** Outputs the real providers mark secret (`additionalSecretOutputs`); in a mock run the engine does
 * not, so the mocks wrap them the same way to keep secrecy observable. */
const SECRET_OUTPUTS: Readonly<Record<string, readonly string[]>> = {
  'random:index/randomPassword:RandomPassword': ['result', 'bcryptHash'],
  'random:index/randomString:RandomString': [],
  'tls:index/privateKey:PrivateKey': ['privateKeyPem', 'privateKeyOpenssh', 'privateKeyPemPkcs8'],
  'aws:ssm/parameter:Parameter': ['value'],
  'aws:elasticache/replicationGroup:ReplicationGroup': ['authToken'],
};

/** Every generated secret value starts with this, so a test can search any text for a leak. */
export const MOCK_SECRET_MARKER = 'MOCKSECRET';

function hex(seed: string, length: number): string {
  let out = '';
  for (let round = 0; out.length < length; round++) {
    out += createHash('sha256').update(`${round}:${seed}`).digest('hex');
  }
  return out.slice(0, length);
}

function byte(seed: string, modulo: number): number {
  return parseInt(hex(seed, 8), 16) % modulo;
}

export function isSecretValue(value: unknown): value is { value: unknown } {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<string, unknown>)[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig
  );
}

function secretValue(value: unknown): Record<string, unknown> {
  return { [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig, value };
}

function plain(value: unknown): unknown {
  return isSecretValue(value) ? value.value : value;
}

export class RealisticMocks implements pulumi.runtime.Mocks {
  readonly resources: RecordedResource[] = [];
  readonly invokes: RecordedInvoke[] = [];
  /** Every value the mocks made up (ids, ARNs, addresses, DNS names), to mark them as placeholders. */
  readonly placeholders = new Set<string>();
  /** Every secret value the mocks generated. */
  readonly secretValues = new Set<string>();

  constructor(readonly world: MockWorld = defaultMockWorld()) {
    this.remember(world.vpc.id, world.vpc.cidrBlock, world.accountId);
    for (const subnet of world.subnets) this.remember(subnet.id, subnet.cidrBlock);
  }

  private remember(...values: string[]): void {
    for (const value of values) this.placeholders.add(value);
  }

  private arn(service: string, resource: string, global = false): string {
    const { partition, region, accountId } = this.world;
    const value = `arn:${partition}:${service}:${global ? '' : region}:${accountId}:${resource}`;
    this.remember(value);
    return value;
  }

  private made<T extends string>(value: T): T {
    this.remember(value);
    return value;
  }

  private subnetFor(subnetId: unknown, seed: string) {
    const subnets = this.world.subnets;
    return subnets.find((s) => s.id === subnetId) ?? subnets[byte(seed, subnets.length)];
  }

  private secret(seed: string, length = 32): string {
    const value = (MOCK_SECRET_MARKER + hex(`secret:${seed}`, Math.max(length, 24))).slice(0, Math.max(length, 16));
    this.secretValues.add(value);
    return value;
  }

  newResource(args: pulumi.runtime.MockResourceArgs): pulumi.runtime.MockResourceResult {
    const inputs = (args.inputs ?? {}) as Record<string, unknown>;
    const { id, outputs } = args.custom === false ? { id: undefined, outputs: {} } : this.outputsFor(args.type, args.name, inputs);
    const state: Record<string, unknown> = { ...inputs, ...outputs };
    for (const key of SECRET_OUTPUTS[args.type] ?? []) {
      if (state[key] !== undefined && !isSecretValue(state[key])) state[key] = secretValue(state[key]);
    }
    this.resources.push({ type: args.type, name: args.name, custom: args.custom !== false, inputs, id, state });
    return { id, state };
  }

  private outputsFor(
    type: string,
    name: string,
    inputs: Record<string, unknown>,
  ): { id: string; outputs: Record<string, unknown> } {
    const seed = `${type}:${name}`;
    const shortId = (prefix: string) => this.made(`${prefix}-0${hex(seed, 16)}`);
    // What the engine's auto-naming would choose: the resource name plus a random suffix.
    const named = (input: unknown) => (typeof input === 'string' && input ? input : this.made(`${name}-${hex(seed, 7)}`));
    const { region } = this.world;
    switch (type) {
      case 'aws:ec2/instance:Instance': {
        const id = shortId('i');
        const subnet = this.subnetFor(inputs.subnetId, seed);
        const [a, b] = subnet.cidrBlock.split('.');
        const third = Number(subnet.cidrBlock.split('.')[2]) + byte(`${seed}:3`, 16);
        const privateIp = this.made(`${a}.${b}.${third}.${4 + byte(`${seed}:4`, 250)}`);
        const publicIp = this.made(`198.51.100.${1 + byte(`${seed}:pub`, 254)}`);
        return {
          id,
          outputs: {
            arn: this.arn('ec2', `instance/${id}`),
            privateIp,
            privateDns: this.made(`ip-${privateIp.replace(/\./g, '-')}.ec2.internal`),
            publicIp,
            publicDns: this.made(`ec2-${publicIp.replace(/\./g, '-')}.compute-1.amazonaws.com`),
            availabilityZone: subnet.availabilityZone,
            subnetId: subnet.id,
            primaryNetworkInterfaceId: shortId('eni'),
          },
        };
      }
      case 'aws:ec2/eip:Eip': {
        const id = shortId('eipalloc');
        const publicIp = this.made(`203.0.113.${1 + byte(seed, 254)}`);
        return {
          id,
          outputs: {
            allocationId: id,
            publicIp,
            publicDns: this.made(`ec2-${publicIp.replace(/\./g, '-')}.compute-1.amazonaws.com`),
          },
        };
      }
      case 'aws:ec2/eipAssociation:EipAssociation':
        return { id: shortId('eipassoc'), outputs: {} };
      case 'aws:ec2/securityGroup:SecurityGroup': {
        const id = shortId('sg');
        return { id, outputs: { arn: this.arn('ec2', `security-group/${id}`), name: named(inputs.name) } };
      }
      case 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule':
      case 'aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule': {
        const id = shortId('sgr');
        return { id, outputs: { arn: this.arn('ec2', `security-group-rule/${id}`), securityGroupRuleId: id } };
      }
      case 'aws:iam/role:Role':
      case 'aws:iam/instanceProfile:InstanceProfile': {
        const resourceName = named(inputs.name);
        const kind = type === 'aws:iam/role:Role' ? 'role' : 'instance-profile';
        return {
          id: resourceName,
          outputs: { name: resourceName, arn: this.arn('iam', `${kind}/${resourceName}`, true), uniqueId: shortId('AROA') },
        };
      }
      case 'aws:iam/rolePolicy:RolePolicy':
      case 'aws:iam/rolePolicyAttachment:RolePolicyAttachment':
        return { id: this.made(`${name}-${hex(seed, 8)}`), outputs: {} };
      case 'aws:ssm/parameter:Parameter': {
        const parameterName = named(inputs.name);
        return {
          id: parameterName,
          outputs: { name: parameterName, arn: this.arn('ssm', `parameter/${parameterName.replace(/^\//, '')}`), version: 1 },
        };
      }
      case 'aws:ssm/document:Document': {
        const documentName = named(inputs.name);
        return {
          id: documentName,
          outputs: { name: documentName, arn: this.arn('ssm', `document/${documentName}`), latestVersion: '1', defaultVersion: '1' },
        };
      }
      case 'aws:ssm/association:Association': {
        const id = this.made(`${hex(seed, 8)}-${hex(`${seed}:2`, 4)}-${hex(`${seed}:3`, 4)}-${hex(`${seed}:4`, 4)}-${hex(`${seed}:5`, 12)}`);
        return { id, outputs: { associationId: id, arn: this.arn('ssm', `association/${id}`) } };
      }
      case 'aws:elasticache/subnetGroup:SubnetGroup': {
        const groupName = named(inputs.name);
        return { id: groupName, outputs: { name: groupName, arn: this.arn('elasticache', `subnetgroup:${groupName}`) } };
      }
      case 'aws:elasticache/replicationGroup:ReplicationGroup': {
        const groupId = named(inputs.replicationGroupId);
        const suffix = hex(seed, 6);
        return {
          id: groupId,
          outputs: {
            replicationGroupId: groupId,
            arn: this.arn('elasticache', `replicationgroup:${groupId}`),
            primaryEndpointAddress: this.made(`master.${groupId}.${suffix}.use1.cache.amazonaws.com`),
            readerEndpointAddress: this.made(`replica.${groupId}.${suffix}.use1.cache.amazonaws.com`),
            port: inputs.port ?? 6379,
            memberClusters: [`${groupId}-001`, `${groupId}-002`],
          },
        };
      }
      case 'aws:lb/loadBalancer:LoadBalancer': {
        const lbName = named(inputs.name).slice(0, 32);
        const arn = this.arn('elasticloadbalancing', `loadbalancer/app/${lbName}/${hex(seed, 16)}`);
        return {
          id: arn,
          outputs: {
            arn,
            arnSuffix: arn.split(':loadbalancer/')[1],
            dnsName: this.made(`${lbName}-${parseInt(hex(seed, 8), 16)}.${region}.elb.amazonaws.com`),
            zoneId: 'Z35SXDOTRQ7X7K',
          },
        };
      }
      case 'aws:lb/targetGroup:TargetGroup': {
        const tgName = named(inputs.name).slice(0, 32);
        const arn = this.arn('elasticloadbalancing', `targetgroup/${tgName}/${hex(seed, 16)}`);
        return { id: arn, outputs: { arn, arnSuffix: arn.split(':')[5], name: tgName } };
      }
      case 'aws:lb/listener:Listener':
      case 'aws:lb/listenerRule:ListenerRule': {
        const arn = this.arn('elasticloadbalancing', `listener/app/${name}/${hex(seed, 16)}`);
        return { id: arn, outputs: { arn } };
      }
      case 'aws:lb/targetGroupAttachment:TargetGroupAttachment':
        return { id: this.made(`${name}-${hex(seed, 8)}`), outputs: {} };
      case 'random:index/randomPassword:RandomPassword': {
        const length = typeof inputs.length === 'number' ? inputs.length : 32;
        const result = this.secret(seed, length);
        return { id: 'none', outputs: { result, bcryptHash: this.secret(`${seed}:bcrypt`, 60) } };
      }
      case 'tls:index/privateKey:PrivateKey': {
        const body = this.secret(seed, 48);
        return {
          id: hex(seed, 40),
          outputs: {
            privateKeyPem: `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`,
            publicKeyPem: `-----BEGIN PUBLIC KEY-----\nmock-${hex(seed, 40)}\n-----END PUBLIC KEY-----\n`,
          },
        };
      }
      case 'tls:index/selfSignedCert:SelfSignedCert':
        return {
          id: hex(seed, 32),
          outputs: {
            certPem: `-----BEGIN CERTIFICATE-----\nmock-${hex(seed, 60)}\n-----END CERTIFICATE-----\n`,
            validityStartTime: '2025-01-01T00:00:00Z',
            validityEndTime: '2026-01-01T00:00:00Z',
          },
        };
      default:
        return { id: shortId(type.split(':').pop()!.toLowerCase()), outputs: {} };
    }
  }

  call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
    const inputs = (args.inputs ?? {}) as Record<string, unknown>;
    this.invokes.push({ token: args.token, inputs });
    const { region, accountId, partition, vpc, subnets } = this.world;
    switch (args.token) {
      case 'aws:index/getRegion:getRegion':
        return { id: region, name: region, region, endpoint: `ec2.${region}.amazonaws.com`, description: region };
      case 'aws:index/getCallerIdentity:getCallerIdentity':
        return { id: accountId, accountId, arn: `arn:${partition}:iam::${accountId}:user/render`, userId: 'AIDAMOCK' };
      case 'aws:index/getPartition:getPartition':
        return { id: partition, partition, dnsSuffix: 'amazonaws.com', reverseDnsPrefix: 'com.amazonaws' };
      case 'aws:index/getAvailabilityZones:getAvailabilityZones': {
        const names = subnets.map((s) => s.availabilityZone);
        return { id: region, names, zoneIds: names.map((_, i) => `use1-az${i + 1}`) };
      }
      case 'aws:ec2/getVpc:getVpc':
        return { id: vpc.id, cidrBlock: vpc.cidrBlock, default: true, arn: this.arn('ec2', `vpc/${vpc.id}`) };
      case 'aws:ec2/getSubnets:getSubnets':
        return { id: region, ids: subnets.map((s) => s.id) };
      case 'aws:ec2/getSubnet:getSubnet': {
        const subnet = this.subnetFor(plain(inputs.id), JSON.stringify(inputs));
        return { ...subnet, vpcId: vpc.id, mapPublicIpOnLaunch: true };
      }
      case 'aws:ec2/getAmi:getAmi': {
        const filters = (inputs.filters ?? []) as { name: string; values: string[] }[];
        const architecture = filters.find((f) => f.name === 'architecture')?.values[0] ?? 'x86_64';
        const id = this.made(`ami-0${hex(`ami:${architecture}`, 16)}`);
        return {
          id,
          imageId: id,
          architecture,
          name: `al2023-ami-2023.6.20250101.0-kernel-6.1-${architecture}`,
          ownerId: '137112412989',
        };
      }
      default:
        throw new Error(`realtime-edge mocks: no mock for invoke ${args.token}; add one to tools/mocks.ts`);
    }
  }
}

/** Waits until every resource registration and output resolution in flight has finished. The SDK
 * keeps this internal; it is what `pulumi up` itself waits on before exiting. */
export async function settlePulumi(): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const settings = require('@pulumi/pulumi/runtime/settings') as { waitForRPCs?: () => Promise<void> };
  if (typeof settings.waitForRPCs !== 'function') {
    throw new Error('@pulumi/pulumi no longer exposes runtime/settings.waitForRPCs; update tools/mocks.ts');
  }
  await settings.waitForRPCs();
}

/** The value of an output once known (mocks never leave values unknown). Rejects when the output
 * failed (a renderer threw inside an apply), instead of waiting forever. */
export function valueOf<T>(output: pulumi.Input<T>): Promise<T> {
  // `promise()` is the SDK's own (untyped) accessor; `apply` would never call back on a failure.
  const lifted = pulumi.output(output) as unknown as { promise?: () => Promise<T> };
  if (typeof lifted.promise !== 'function') {
    throw new Error('@pulumi/pulumi Output no longer has promise(); update tools/mocks.ts valueOf');
  }
  return lifted.promise();
}

/**
 * Runs `program` against fresh mocks: installs them for `stack`, builds the resources, waits for
 * every registration, and returns what the program returned plus the mocks' records.
 */
export async function runWithMocks<T>(
  program: () => T,
  options: { stack?: string; world?: MockWorld } = {},
): Promise<{ result: T; mocks: RealisticMocks }> {
  const mocks = new RealisticMocks(options.world);
  await pulumi.runtime.setMocks(mocks, 'realtime-edge', options.stack ?? 'test', false);
  const result = program();
  await settlePulumi();
  return { result, mocks };
}

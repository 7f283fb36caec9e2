/**
 * Component tests against the same mocks `npm run render` uses (tools/mocks.ts): run a program,
 * then query what it registered — by type and name, with inputs exactly as the engine got them.
 */
import { loadStackFile } from '../../config/stack';
import type { StackConfig } from '../../config/types';
import { decodeUserData } from '../../components/host';
import {
  defaultMockWorld,
  isSecretValue,
  runWithMocks,
  valueOf,
  type RealisticMocks,
  type RecordedResource,
} from '../../tools/mocks';

export { MOCK_SECRET_MARKER, defaultMockWorld, isSecretValue, runWithMocks, valueOf } from '../../tools/mocks';
export type { RealisticMocks, RecordedResource } from '../../tools/mocks';

export const TYPES = {
  instance: 'aws:ec2/instance:Instance',
  securityGroup: 'aws:ec2/securityGroup:SecurityGroup',
  ingress: 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule',
  egress: 'aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule',
  parameter: 'aws:ssm/parameter:Parameter',
  document: 'aws:ssm/document:Document',
  association: 'aws:ssm/association:Association',
  rolePolicy: 'aws:iam/rolePolicy:RolePolicy',
  role: 'aws:iam/role:Role',
  randomPassword: 'random:index/randomPassword:RandomPassword',
  privateKey: 'tls:index/privateKey:PrivateKey',
  selfSignedCert: 'tls:index/selfSignedCert:SelfSignedCert',
  replicationGroup: 'aws:elasticache/replicationGroup:ReplicationGroup',
  loadBalancer: 'aws:lb/loadBalancer:LoadBalancer',
  targetGroup: 'aws:lb/targetGroup:TargetGroup',
  targetGroupAttachment: 'aws:lb/targetGroupAttachment:TargetGroupAttachment',
  listener: 'aws:lb/listener:Listener',
  listenerRule: 'aws:lb/listenerRule:ListenerRule',
  eip: 'aws:ec2/eip:Eip',
} as const;

export class Registry {
  constructor(readonly mocks: RealisticMocks) {}

  get resources(): readonly RecordedResource[] {
    return this.mocks.resources;
  }

  ofType(type: string): RecordedResource[] {
    return this.mocks.resources.filter((r) => r.type === type);
  }

  named(type: string, name: string): RecordedResource {
    const found = this.mocks.resources.find((r) => r.type === type && r.name === name);
    if (!found) {
      const names = this.ofType(type).map((r) => r.name);
      throw new Error(`no ${type} named ${name}; registered: ${names.join(', ') || '(none)'}`);
    }
    return found;
  }

  /** Which resource has this id (as the mocks assigned it). */
  byId(id: unknown): RecordedResource | undefined {
    return this.mocks.resources.find((r) => r.id === id);
  }

  /** The boot script of an instance, decoded from userData or gzip+base64 userDataBase64. */
  userDataOf(instance: RecordedResource): string {
    return decodeUserData({
      userData: instance.inputs.userData as string | undefined,
      userDataBase64: instance.inputs.userDataBase64 as string | undefined,
    });
  }
}

/** A value with its Pulumi secret wrapper, if any, removed. */
export function unwrapSecret(value: unknown): unknown {
  return isSecretValue(value) ? value.value : value;
}

/** Every string inside a value, secrets unwrapped (so a search sees everything the engine saw). */
export function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (isSecretValue(value)) return stringsIn(value.value);
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value && typeof value === 'object') return Object.values(value).flatMap(stringsIn);
  return [];
}

export function stackConfig(stack: 'dev' | 'prod'): StackConfig {
  return loadStackFile(`${__dirname}/../../Pulumi.${stack}.yaml`);
}

/** Builds the whole program for a config with fresh mocks. */
export async function runEdge(
  config: StackConfig,
  stack = 'test',
): Promise<{ edge: import('../../components/realtimeEdge').RealtimeEdge; registry: Registry }> {
  const { RealtimeEdge } = await import('../../components/realtimeEdge');
  const { result, mocks } = await runWithMocks(() => new RealtimeEdge('edge', config), {
    stack,
    world: defaultMockWorld(config.region),
  });
  await valueOf(result.artifacts);
  return { edge: result, registry: new Registry(mocks) };
}

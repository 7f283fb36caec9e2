/**
 * HostGroup as the engine receives it (mocked providers, real component code): which AMI it
 * reports, and what its instances wait for.
 */
import * as pulumi from '@pulumi/pulumi';
import { HostGroup, type HostGroupArgs } from '../components/host';
import { RealisticMocks, settlePulumi } from '../tools/mocks';
import { TYPES, valueOf } from './helpers/pulumi-mocks';

const LOOKED_UP_AMI_PATTERN = /^ami-0[0-9a-f]{16}$/;
/** What EC2 reports for a host created before the lookup found a newer AMI. */
const KEPT_AMI = 'ami-0kept0000000000';

/** The mocks, except that instances report the AMI they were created from long ago: the state
 * `ignoreChanges: ['ami']` leaves in place. */
class LongLivedHostMocks extends RealisticMocks {
  newResource(args: pulumi.runtime.MockResourceArgs): pulumi.runtime.MockResourceResult {
    const result = super.newResource(args);
    return args.type === TYPES.instance ? { ...result, state: { ...result.state, ami: KEPT_AMI } } : result;
  }
}

const ARGS: HostGroupArgs = {
  instanceType: 't3.small',
  securityGroupIds: ['sg-0123456789abcdef0'],
  readableParameterArns: ['arn:aws:ssm:us-east-1:123456789012:parameter/realtime-edge/test/token'],
  hosts: [0, 1].map((i) => ({ name: `host-${i}`, subnetId: 'subnet-0aaaaaaaaaaaaaaa1', userData: '#!/bin/bash\ntrue\n' })),
};

async function build(args: HostGroupArgs, opts?: pulumi.ComponentResourceOptions) {
  const mocks = new LongLivedHostMocks();
  await pulumi.runtime.setMocks(mocks, 'realtime-edge', 'test', false);
  const group = new HostGroup('hosts', args, opts);
  await settlePulumi();
  return { group, mocks };
}

describe('HostGroup AMIs', () => {
  test('amiIds are the AMIs the instances run, not the newest lookup', async () => {
    const { group, mocks } = await build(ARGS);
    const instances = mocks.resources.filter((r) => r.type === TYPES.instance);
    // The lookup's newest AMI went in as the input ...
    for (const instance of instances) expect(instance.inputs.ami).toMatch(LOOKED_UP_AMI_PATTERN);
    expect(await valueOf(group.latestAmiId)).toBe(instances[0].inputs.ami);
    // ... yet each host reports the one it runs.
    expect(await valueOf(group.amiIds)).toEqual([KEPT_AMI, KEPT_AMI]);
  });
});

/** For each instance, the names of the resources it explicitly depends on (read from the options
 * a parent transformation sees, since the mocks are not told about dependencies). */
async function instanceDependencies(args: HostGroupArgs): Promise<Record<string, string[]>> {
  const names = new Map<pulumi.Resource, string>();
  const dependsOn = new Map<string, unknown>();
  await build(args, {
    transformations: [
      ({ resource, name, type, opts }) => {
        names.set(resource, name);
        if (type === TYPES.instance) dependsOn.set(name, opts.dependsOn);
        return undefined;
      },
    ],
  });
  return Object.fromEntries(
    [...dependsOn].map(([name, resources]) => [name, [resources].flat().map((r) => names.get(r as pulumi.Resource)!).sort()]),
  );
}

describe('HostGroup instances', () => {
  test('wait for the SSM core attachment and the boot-secrets policy, not only the instance profile', async () => {
    expect(await instanceDependencies(ARGS)).toEqual({
      'host-0': ['hosts-boot-secrets', 'hosts-ssm-core'],
      'host-1': ['hosts-boot-secrets', 'hosts-ssm-core'],
    });
  });

  test('without boot reads there is no policy to wait for', async () => {
    expect(await instanceDependencies({ ...ARGS, readableParameterArns: [] })).toEqual({
      'host-0': ['hosts-ssm-core'],
      'host-1': ['hosts-ssm-core'],
    });
  });
});

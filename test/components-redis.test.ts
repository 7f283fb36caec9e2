/**
 * Redis as the engine receives it (mocked providers, real component code): the engine version
 * each engine gets by default.
 */
import { Redis, type ManagedRedisArgs } from '../components/redis';
import { Registry, TYPES, runWithMocks } from './helpers/pulumi-mocks';

async function replicationGroupInputs(overrides: Partial<ManagedRedisArgs>) {
  const { mocks } = await runWithMocks(
    () =>
      new Redis('redis', {
        mode: 'elasticache',
        vpcId: 'vpc-0123456789abcdef0',
        subnetIds: ['subnet-0aaaaaaaaaaaaaaa1'],
        nodeType: 'cache.t4g.small',
        replicas: 0,
        ...overrides,
      }),
  );
  const [group] = new Registry(mocks).ofType(TYPES.replicationGroup);
  return { engine: group.inputs.engine, engineVersion: group.inputs.engineVersion };
}

describe('Redis engine versions', () => {
  test.each([
    // ElastiCache has no Valkey 7.1: Valkey starts at 7.2.
    [{ engine: 'valkey' as const }, { engine: 'valkey', engineVersion: '7.2' }],
    [{}, { engine: 'redis', engineVersion: '7.1' }],
    [{ engine: 'redis' as const }, { engine: 'redis', engineVersion: '7.1' }],
    [{ engine: 'valkey' as const, engineVersion: '8.0' }, { engine: 'valkey', engineVersion: '8.0' }],
  ])('%j runs %j', async (overrides, expected) => {
    expect(await replicationGroupInputs(overrides)).toEqual(expected);
  });
});

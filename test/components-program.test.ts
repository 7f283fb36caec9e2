/**
 * index.ts, the Pulumi program itself: it reads the stack's Pulumi config, builds one
 * RealtimeEdge and exports its outputs; invalid config stops it before any resource exists.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { parse as parseYaml } from 'yaml';
import { StackConfigError } from '../config/stack';
import { runWithMocks, valueOf } from './helpers/pulumi-mocks';

/** A stack file's config as `pulumi up` hands it to the program: every value a string. */
function pulumiConfigOf(stack: string, overrides: Record<string, unknown> = {}): Record<string, string> {
  const document = parseYaml(readFileSync(path.join(__dirname, '..', `Pulumi.${stack}.yaml`), 'utf8')) as { config: Record<string, unknown> };
  return Object.fromEntries(
    Object.entries({ ...document.config, ...overrides }).map(([key, value]) => [key, typeof value === 'string' ? value : JSON.stringify(value)]),
  );
}

function loadProgram(): Record<string, pulumi.Output<unknown> | undefined> {
  let program: Record<string, pulumi.Output<unknown> | undefined> = {};
  jest.isolateModules(() => {
    program = require('../index');
  });
  return program;
}

test('the dev stack: one RealtimeEdge, its outputs exported', async () => {
  const { result: program, mocks } = await runWithMocks(() => {
    pulumi.runtime.setAllConfig(pulumiConfigOf('dev'));
    return loadProgram();
  }, { stack: 'dev' });
  expect(Object.keys(program).sort()).toEqual(['albDnsName', 'nodePrivateIps', 'proxyPublicDns', 'proxyPublicIps', 'redisEndpoint', 'urls', 'vpcId']);
  const urls = (await valueOf(program.urls!)) as { nginx: Record<string, string[]> };
  expect(Object.keys(urls.nginx).sort()).toEqual(['deepstream', 'deepstream-stream']);
  expect(program.albDnsName).toBeUndefined();
  expect(mocks.resources.filter((r) => r.type === 'realtime-edge:index:RealtimeEdge').map((r) => r.name)).toEqual(['edge']);
});

test('invalid config: StackConfigError naming every key, no resource registered', async () => {
  let error: unknown;
  const { mocks } = await runWithMocks(() => {
    pulumi.runtime.setAllConfig(
      pulumiConfigOf('dev', { 'realtime-edge:proxyCount': '0', 'realtime-edge:balance': 'sticky' }),
    );
    try {
      loadProgram();
    } catch (caught) {
      error = caught;
    }
  }, { stack: 'dev' });
  // jest.isolateModules loads its own copy of config/stack.ts, so compare by name, not class.
  expect((error as Error).name).toBe(StackConfigError.name);
  const message = (error as Error).message;
  expect(message).toContain('realtime-edge:proxyCount');
  expect(message).toContain('realtime-edge:balance');
  expect(message).toContain('sticky');
  expect(mocks.resources).toEqual([]);
});

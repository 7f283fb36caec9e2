/**
 * Real deepstream cluster from the rendered files: redis-server on a free port, two deepstream 7
 * nodes (the real server from node_modules) started by the rendered launcher on the rendered
 * config, exactly as systemd does on EC2, and @deepstream/client proving that an event emitted on
 * node B reaches a subscriber on node A.
 * The second case runs Redis with TLS and an AUTH token full of characters that YAML, shells and
 * deepstream's ${ENV} substitution treat specially. The third stops and restarts Redis under
 * running nodes: they must stay up (same process) and deliver across nodes again.
 */
import { makeSelfSignedCertificate } from '../local/tls';
import { DeepstreamClient } from '@deepstream/client';
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DEEPSTREAM_LAUNCHER_KIND, deepstreamBackend, deepstreamLauncherArgs, deepstreamRedisPasswordEnv } from '../servers/deepstream';
import type { NodeRenderInput, RedisEndpoint } from '../servers/profile';
import { freePort, makeTempDir, ProcessGroup, removeDir, waitForHttp200 } from './servers-helpers';

const SERVER_PACKAGE_DIR = dirname(require.resolve('@deepstream/server/package.json'));

interface ClusterNode {
  readonly name: string;
  readonly port: number;
  readonly process: ChildProcess;
}

/** Renders two nodes on `redis`, starts each with its rendered launcher and returns once both
 * answer their health check. */
async function startCluster(dir: string, redis: RedisEndpoint, env: NodeJS.ProcessEnv, processes: ProcessGroup): Promise<ClusterNode[]> {
  const nodes: ClusterNode[] = [];
  for (let i = 0; i < 2; i += 1) {
    const name = `deepstream-${i}`;
    const port = await freePort();
    const input: NodeRenderInput = { nodeName: name, version: '7.0.2', listenHost: '127.0.0.1', listenPort: port, redis };
    const nodeDir = join(dir, `node-${i}`);
    mkdirSync(nodeDir, { recursive: true });
    const files = deepstreamBackend.renderConfigFiles(input);
    for (const file of files) {
      writeFileSync(join(nodeDir, file.path.split('/').pop() as string), file.content);
    }
    const launcher = files.find((f) => f.kind === DEEPSTREAM_LAUNCHER_KIND);
    if (!launcher) throw new Error(`renderConfigFiles returned no ${DEEPSTREAM_LAUNCHER_KIND}`);
    const args = deepstreamLauncherArgs({
      launcher: join(nodeDir, launcher.path.split('/').pop() as string),
      config: join(nodeDir, 'config.yml'),
      serverPackageDir: SERVER_PACKAGE_DIR,
    });
    nodes.push({ name, port, process: processes.start(name, process.execPath, args, env) });
  }
  for (const node of nodes) {
    try {
      await waitForHttp200(`http://127.0.0.1:${node.port}/health-check`);
    } catch (error) {
      throw new Error(`${String(error)}\n--- ${node.name} output ---\n${processes.output(node.name)}`);
    }
  }
  return nodes;
}

/** Subscribes on node A, emits from node B until A receives it (cluster subscriptions propagate
 * through Redis asynchronously). */
async function proveCrossNodeEvent(nodes: readonly ClusterNode[]): Promise<unknown> {
  const ports = nodes.map((n) => n.port);
  const a = new DeepstreamClient(`ws://127.0.0.1:${ports[0]}/deepstream`);
  const b = new DeepstreamClient(`ws://127.0.0.1:${ports[1]}/deepstream`);
  let timer: NodeJS.Timeout | undefined;
  try {
    await a.login();
    await b.login();
    const payload = { from: 'node-b', nonce: Math.random() };
    const received = new Promise((resolve) => a.event.subscribe('realtime-edge/cross-node', resolve));
    timer = setInterval(() => b.event.emit('realtime-edge/cross-node', payload), 100);
    const got = await received;
    expect(got).toEqual(payload);
    return got;
  } finally {
    if (timer) clearInterval(timer);
    a.close();
    b.close();
  }
}

describe('rendered deepstream config: a real two-node cluster on Redis', () => {
  let dir: string;
  const processes = new ProcessGroup();
  let nodes: ClusterNode[] = [];

  beforeAll(async () => {
    dir = makeTempDir('deepstream-boot');
    const redisPort = await freePort();
    processes.start('redis', 'redis-server', redisArgs(redisPort));
    await waitForRedis(['-p', String(redisPort)]);
    nodes = await startCluster(dir, { host: '127.0.0.1', port: redisPort, tls: false }, process.env, processes);
  });

  afterAll(async () => {
    await processes.stopAll();
    removeDir(dir);
  });

  it('delivers an event emitted on node B to a subscriber on node A', async () => {
    await proveCrossNodeEvent(nodes);
  });
});

describe('rendered deepstream config: Redis with TLS and an AUTH token from the environment', () => {
  let dir: string;
  const processes = new ProcessGroup();
  let nodes: ClusterNode[] = [];
  // ElastiCache allows any printable ASCII except space, / " @; this one has the rest of the trouble.
  const token = "it's#a$tr{i}ck`y\\to:ken'!&*%";

  beforeAll(async () => {
    dir = makeTempDir('deepstream-boot-tls');
    const { certificatePath: cert, keyPath: key } = makeSelfSignedCertificate(dir, { name: 'redis', commonName: '127.0.0.1', days: 1 });
    const redisPort = await freePort();
    processes.start('redis-tls', 'redis-server', [
      '--port', '0', '--tls-port', String(redisPort), '--bind', '127.0.0.1',
      '--tls-cert-file', cert, '--tls-key-file', key, '--tls-auth-clients', 'no',
      '--requirepass', token, '--save', '', '--appendonly', 'no',
    ]);
    await waitForRedis(['--tls', '--cacert', cert, '-p', String(redisPort), '--no-auth-warning', '-a', token]);
    // The node trusts the test CA the way an EC2 node trusts ElastiCache's: through the trust store.
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: cert, ...deepstreamRedisPasswordEnv(token) };
    nodes = await startCluster(dir, { host: '127.0.0.1', port: redisPort, tls: true, authTokenParameter: '/test/redis-auth' }, env, processes);
  });

  afterAll(async () => {
    await processes.stopAll();
    removeDir(dir);
  });

  it('connects over TLS with the token and still delivers across nodes', async () => {
    await proveCrossNodeEvent(nodes);
  });
});

describe('rendered launcher: nodes survive a Redis restart', () => {
  let dir: string;
  const processes = new ProcessGroup();
  let nodes: ClusterNode[] = [];
  let redisPort = 0;

  beforeAll(async () => {
    dir = makeTempDir('deepstream-redis-restart');
    redisPort = await freePort();
    processes.start('redis', 'redis-server', redisArgs(redisPort));
    await waitForRedis(['-p', String(redisPort)]);
    nodes = await startCluster(dir, { host: '127.0.0.1', port: redisPort, tls: false }, process.env, processes);
  });

  afterAll(async () => {
    await processes.stopAll();
    removeDir(dir);
  });

  it('keeps every node process through a Redis stop and start, and cross-node delivery works again', async () => {
    await proveCrossNodeEvent(nodes);
    const pids = nodes.map((n) => n.process.pid);

    await processes.stop('redis');
    // The Redis plugins report the lost connection as fatal (what ends `deepstream start`); the
    // launcher must have seen that and kept the node up.
    for (const node of nodes) {
      await waitForOutput(processes, node.name, /REDIS_CONNECTION_ERROR[\s\S]*staying up so the plugins can reconnect/);
    }
    expect(nodes.map((n) => n.process.exitCode)).toEqual([null, null]);

    processes.start('redis-restarted', 'redis-server', redisArgs(redisPort));
    await waitForRedis(['-p', String(redisPort)]);
    await proveCrossNodeEvent(nodes);
    expect(nodes.map((n) => n.process.pid)).toEqual(pids);
    expect(nodes.map((n) => [n.process.exitCode, n.process.signalCode])).toEqual([[null, null], [null, null]]);
  });
});

function redisArgs(port: number): string[] {
  return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
}

/** Waits until the output of process `name` matches `pattern` (or fails with that output). */
async function waitForOutput(processes: ProcessGroup, name: string, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 100; i += 1) {
    if (pattern.test(processes.output(name))) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${name} never printed ${pattern}; its output:\n${processes.output(name)}`);
}

/** Waits until redis-cli gets PONG with `args`. */
async function waitForRedis(args: string[]): Promise<void> {
  for (let i = 0; i < 100; i += 1) {
    const r = spawnSync('redis-cli', [...args, 'ping'], { encoding: 'utf8' });
    if (r.stdout.trim() === 'PONG') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`redis did not answer PING (${args.join(' ')})`);
}

/**
 * Real deepstream cluster from the rendered config: redis-server on a free port, two deepstream
 * 7 nodes (the real binary from node_modules) started with the files renderConfigFiles returns,
 * and @deepstream/client proving that an event emitted on node B reaches a subscriber on node A.
 * The second case runs Redis with TLS and an AUTH token full of characters that YAML, shells and
 * deepstream's ${ENV} substitution treat specially.
 */
import { DeepstreamClient } from '@deepstream/client';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deepstreamBackend, deepstreamRedisPasswordEnv } from '../servers/deepstream';
import type { NodeRenderInput, RedisEndpoint } from '../servers/profile';
import { freePort, makeTempDir, ProcessGroup, removeDir, waitForHttp200 } from './servers-helpers';

const DEEPSTREAM_BIN = require.resolve('@deepstream/server/dist/bin/deepstream');

interface Cluster {
  readonly ports: number[];
  readonly processes: ProcessGroup;
}

/** Renders and starts two nodes on `redis`; returns once both answer their health check. */
async function startCluster(dir: string, redis: RedisEndpoint, env: NodeJS.ProcessEnv, processes: ProcessGroup): Promise<number[]> {
  const ports = [await freePort(), await freePort()];
  for (const [i, port] of ports.entries()) {
    const input: NodeRenderInput = { nodeName: `deepstream-${i}`, version: '7.0.2', listenHost: '127.0.0.1', listenPort: port, redis };
    const nodeDir = join(dir, `node-${i}`);
    mkdirSync(nodeDir, { recursive: true });
    for (const file of deepstreamBackend.renderConfigFiles(input)) {
      writeFileSync(join(nodeDir, file.path.split('/').pop() as string), file.content);
    }
    processes.start(`deepstream-${i}`, process.execPath, [DEEPSTREAM_BIN, 'start', '-c', join(nodeDir, 'config.yml')], env);
  }
  for (const [i, port] of ports.entries()) {
    try {
      await waitForHttp200(`http://127.0.0.1:${port}/health-check`);
    } catch (error) {
      throw new Error(`${String(error)}\n--- deepstream-${i} output ---\n${processes.output(`deepstream-${i}`)}`);
    }
  }
  return ports;
}

/** Subscribes on node A, emits from node B until A receives it (cluster subscriptions propagate
 * through Redis asynchronously). */
async function proveCrossNodeEvent(ports: number[]): Promise<unknown> {
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
  let cluster: Cluster | undefined;

  beforeAll(async () => {
    dir = makeTempDir('deepstream-boot');
    const redisPort = await freePort();
    processes.start('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    await waitForRedis(['-p', String(redisPort)]);
    const ports = await startCluster(dir, { host: '127.0.0.1', port: redisPort, tls: false }, process.env, processes);
    cluster = { ports, processes };
  });

  afterAll(async () => {
    await processes.stopAll();
    removeDir(dir);
  });

  it('delivers an event emitted on node B to a subscriber on node A', async () => {
    await proveCrossNodeEvent(cluster?.ports ?? []);
  });
});

describe('rendered deepstream config: Redis with TLS and an AUTH token from the environment', () => {
  let dir: string;
  const processes = new ProcessGroup();
  let ports: number[] = [];
  // ElastiCache allows any printable ASCII except space, / " @; this one has the rest of the trouble.
  const token = "it's#a$tr{i}ck`y\\to:ken'!&*%";

  beforeAll(async () => {
    dir = makeTempDir('deepstream-boot-tls');
    const cert = join(dir, 'redis.crt');
    const key = join(dir, 'redis.key');
    const openssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
    if (openssl.status !== 0) throw new Error(openssl.stderr);
    const redisPort = await freePort();
    processes.start('redis-tls', 'redis-server', [
      '--port', '0', '--tls-port', String(redisPort), '--bind', '127.0.0.1',
      '--tls-cert-file', cert, '--tls-key-file', key, '--tls-auth-clients', 'no',
      '--requirepass', token, '--save', '', '--appendonly', 'no',
    ]);
    await waitForRedis(['--tls', '--cacert', cert, '-p', String(redisPort), '--no-auth-warning', '-a', token]);
    // The node trusts the test CA the way an EC2 node trusts ElastiCache's: through the trust store.
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: cert, ...deepstreamRedisPasswordEnv(token) };
    ports = await startCluster(dir, { host: '127.0.0.1', port: redisPort, tls: true, authTokenParameter: '/test/redis-auth' }, env, processes);
  });

  afterAll(async () => {
    await processes.stopAll();
    removeDir(dir);
  });

  it('connects over TLS with the token and still delivers across nodes', async () => {
    await proveCrossNodeEvent(ports);
  });
});

/** Waits until redis-cli gets PONG with `args`. */
async function waitForRedis(args: string[]): Promise<void> {
  for (let i = 0; i < 100; i += 1) {
    const r = spawnSync('redis-cli', [...args, 'ping'], { encoding: 'utf8' });
    if (r.stdout.trim() === 'PONG') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`redis did not answer PING (${args.join(' ')})`);
}

/**
 * End-to-end, real processes only: redis-server, two deepstream nodes from npm and nginx, each
 * configured by the shared renderers, driven by real @deepstream/client clients through nginx over
 * TLS, once through the http (L7) listener and once through the stream (L4) listener.
 *
 * Which node a client is on comes from deepstream's own RPC routing (see local/node-identity.ts).
 */
import type { DeepstreamClient } from '@deepstream/client';
import { connectOnDistinctNodes, deliverEvent } from '../local/checks';
import { withTimeout } from '../local/node-identity';
import { sleep } from '../local/readiness';
import { startTopology, type Listener, type NodeHandle, type Topology } from '../local/topology';
import { ClientPool, eventually, median, RECONNECTING } from './helpers/e2e';

const LISTENERS: readonly Listener[] = ['http', 'stream'];
/** The issue asks for at least 20 clients in the failover case. */
const FAILOVER_CLIENTS = 24;
const RECOVERY_CONNECTIONS = 100;

let topology: Topology;
const pool = new ClientPool();

beforeAll(async () => {
  // Round robin, nginx's default: the recovery case checks an even spread.
  topology = await startTopology({ label: 'e2e-cluster', nodes: 2, proxyMode: 'both' });
}, 60_000);

afterAll(async () => {
  await pool.close();
  await topology?.stop();
}, 60_000);

async function makeRpcWhenProvided(client: DeepstreamClient, name: string, data: unknown): Promise<unknown> {
  // A provider registered on another node becomes known here through Redis a moment later.
  return eventually(`RPC ${name}`, () => withTimeout(client.rpc.make(name, data as never), 5000, `RPC ${name}`), () => true, 10_000);
}

function otherNode(node: NodeHandle): NodeHandle {
  const other = topology.nodes.find((candidate) => candidate !== node);
  if (!other) throw new Error('the topology needs two nodes');
  return other;
}

describe.each(LISTENERS)('through nginx %s mode with TLS', (listener) => {
  /** Clients of the failover case, kept open through the recovery case (as real clients would be). */
  let fleet: DeepstreamClient[] = [];
  let killed: NodeHandle | undefined;

  test('cross-node: an event, a record update and an RPC from node B reach a client on node A', async () => {
    const [a, b] = await connectOnDistinctNodes(topology, listener, 2, { clientOptions: RECONNECTING });
    pool.add(a!.client);
    pool.add(b!.client);
    expect(a!.node).not.toBe(b!.node);
    const base = `e2e/${listener}/cross-node/${Date.now()}`;

    // A subscribes to all three; the record first, so that once an event crosses, B's node also
    // knows A's record subscription (A's node publishes both, in order, over one Redis connection).
    const record = a!.client.record.getRecord(`${base}/record`);
    await record.whenReady();
    const recordSeen = new Promise<unknown>((resolve) => {
      record.subscribe((data: unknown) => {
        if ((data as { from?: string } | undefined)?.from === b!.node) resolve(data);
      });
    });
    const rpcCalls: unknown[] = [];
    a!.client.rpc.provide(`${base}/rpc`, (data, response) => {
      rpcCalls.push(data);
      response.send({ answeredBy: a!.node, echo: data });
    });

    const event = await deliverEvent(b!.client, a!.client, `${base}/event`, { from: b!.node, kind: 'event' });
    expect(event).toEqual({ from: b!.node, kind: 'event' });

    await b!.client.record.setDataWithAck(`${base}/record`, { from: b!.node, value: 42 });
    expect(await withTimeout(recordSeen, 10_000, 'record update on A')).toEqual({ from: b!.node, value: 42 });

    const answer = await makeRpcWhenProvided(b!.client, `${base}/rpc`, { from: b!.node });
    expect(answer).toEqual({ answeredBy: a!.node, echo: { from: b!.node } });
    expect(rpcCalls).toEqual([{ from: b!.node }]);

    await pool.close([a!.client, b!.client]);
  });

  test(`failover: kill -9 of a node moves its clients (of ${FAILOVER_CLIENTS}) to the live node; records survive`, async () => {
    fleet = await Promise.all(Array.from({ length: FAILOVER_CLIENTS }, () => topology.connect(listener, RECONNECTING)));
    fleet.forEach((client) => pool.add(client));
    const placement = await Promise.all(fleet.map((client) => topology.nodeOf(client)));
    const nodesUsed = new Set(placement);
    expect(nodesUsed.size).toBe(2);

    const recordName = (index: number): string => `e2e/${listener}/failover/${index}`;
    const written = fleet.map((_, index) => ({ index, writtenVia: placement[index], text: `record ${index} before the kill` }));
    await Promise.all(fleet.map((client, index) => client.record.setDataWithAck(recordName(index), written[index])));

    const victim = topology.nodes.find((node) => node.name === placement[0])!;
    const survivor = otherNode(victim);
    const affected = fleet.filter((_, index) => placement[index] === victim.name);
    const backAt = new Map<DeepstreamClient, number>();
    let killedAt = 0;
    for (const client of affected) {
      client.on('connectionStateChanged', (state: string) => {
        if (state === 'OPEN' && killedAt > 0 && !backAt.has(client)) backAt.set(client, performance.now());
      });
    }

    killedAt = performance.now();
    await victim.kill('SIGKILL');
    killed = victim;

    await eventually(
      `all ${FAILOVER_CLIENTS} clients logged in again`,
      () => fleet.map((client) => client.getConnectionState()),
      (states) => states.every((state) => state === 'OPEN') && backAt.size === affected.length,
      30_000,
    );
    const reconnectMs = [...backAt.values()].map((at) => at - killedAt);
    console.log(
      `[${listener}] failover: ${affected.length} of ${FAILOVER_CLIENTS} clients were on ${victim.name}; ` +
        `logged in again through nginx after median ${median(reconnectMs).toFixed(0)} ms, all within ${Math.max(...reconnectMs).toFixed(0)} ms of kill -9`,
    );
    expect(affected.length).toBeGreaterThan(0);

    // Every client is on the live node, through nginx.
    const after = await Promise.all(fleet.map((client) => topology.nodeOf(client)));
    expect(new Set(after)).toEqual(new Set([survivor.name]));

    // Records written before the kill read back intact, from clients that moved and from those that did not.
    const readBack = await Promise.all(fleet.map((client, index) => client.record.snapshot(recordName(index))));
    expect(readBack).toEqual(written);
  });

  test('recovery: the killed node returns and new connections spread evenly again (round robin, ±20%)', async () => {
    const victim = killed ?? topology.nodes[0]!;
    if (victim.isRunning()) await victim.kill('SIGKILL');
    const restartedAt = performance.now();
    await victim.restart();
    expect(await victim.health()).toBe(200);

    // The failover clients stay connected to the survivor meanwhile: the long-lived connections that
    // would keep a node with max_fails=1 marked down. The first try right after the node is healthy
    // must already spread (stricter than "within 15 s").
    const fresh: DeepstreamClient[] = [];
    const counts = new Map<string, number>(topology.nodes.map((node) => [node.name, 0]));
    try {
      for (let index = 0; index < RECOVERY_CONNECTIONS; index++) {
        const client = pool.add(await topology.connect(listener, { maxReconnectAttempts: 0 }));
        fresh.push(client);
        const node = await topology.nodeOf(client);
        counts.set(node, (counts.get(node) ?? 0) + 1);
      }
      const elapsed = performance.now() - restartedAt;
      console.log(
        `[${listener}] recovery: ${RECOVERY_CONNECTIONS} new connections ${JSON.stringify(Object.fromEntries(counts))}, ` +
          `${(elapsed / 1000).toFixed(1)} s after the restart began (${fleet.length} failover clients still open)`,
      );
      const expected = RECOVERY_CONNECTIONS / topology.nodes.length;
      for (const [, count] of counts) {
        expect(count).toBeGreaterThanOrEqual(expected * 0.8);
        expect(count).toBeLessThanOrEqual(expected * 1.2);
      }
    } finally {
      await pool.close([...fresh, ...fleet]);
      fleet = [];
    }
  });

  test('Redis restart: after Redis is stopped for 3 s and started again, cross-node delivery resumes without restarting nodes', async () => {
    const [a, b] = await connectOnDistinctNodes(topology, listener, 2, { clientOptions: RECONNECTING });
    pool.add(a!.client);
    pool.add(b!.client);
    const pidsBefore = topology.nodes.map((node) => node.pid);
    const name = `e2e/${listener}/redis-restart/${Date.now()}`;
    expect(await deliverEvent(b!.client, a!.client, name, 'before')).toBe('before');

    await topology.redis.stop();
    expect(topology.redis.isRunning()).toBe(false);
    await sleep(3000);
    await topology.redis.start();

    // Delivery may need a moment while both nodes' Redis clients reconnect and resubscribe.
    expect(await deliverEvent(b!.client, a!.client, name, 'after', 30_000)).toBe('after');
    expect(topology.nodes.map((node) => node.pid)).toEqual(pidsBefore);
    expect(topology.nodes.every((node) => node.isRunning())).toBe(true);

    // And for clients that connect afterwards.
    const [c, d] = await connectOnDistinctNodes(topology, listener, 2);
    pool.add(c!.client);
    pool.add(d!.client);
    expect(await deliverEvent(d!.client, c!.client, `${name}/fresh`, 'fresh')).toBe('fresh');
    await pool.close([a!.client, b!.client, c!.client, d!.client]);
  });
});

/**
 * Real round trips through a running topology, shared by `npm run local -- --smoke` and the
 * end-to-end tests: clients connect through nginx over TLS, and the identity RPC tells which node
 * each one landed on.
 */
import type { DeepstreamClient } from '@deepstream/client';
import type { Options as ClientOptions } from '@deepstream/client/dist/src/client-options';
import { closeClient, loginClient, withTimeout } from './node-identity';
import type { Listener, Topology } from './topology';

export interface PlacedClient {
  readonly client: DeepstreamClient;
  readonly node: string;
}

/**
 * Connects clients through `listener` until they sit on `count` different nodes (nginx decides where
 * each lands; round robin needs two tries, an affinity strategy may need more or never get there).
 * Clients that landed on an already covered node are closed.
 */
export async function connectOnDistinctNodes(
  topology: Topology,
  listener: Listener,
  count = 2,
  options: { maxAttempts?: number; clientOptions?: Partial<ClientOptions> } = {},
): Promise<PlacedClient[]> {
  const placed: PlacedClient[] = [];
  const maxAttempts = options.maxAttempts ?? 20;
  try {
    for (let attempt = 0; attempt < maxAttempts && placed.length < count; attempt++) {
      const client = await topology.connect(listener, options.clientOptions);
      const node = await topology.nodeOf(client);
      if (placed.some((p) => p.node === node)) await closeClient(client);
      else placed.push({ client, node });
    }
  } catch (error) {
    await Promise.all(placed.map((p) => closeClient(p.client)));
    throw error;
  }
  if (placed.length < count) {
    await Promise.all(placed.map((p) => closeClient(p.client)));
    throw new Error(`${maxAttempts} connections through the ${listener} listener landed on fewer than ${count} nodes`);
  }
  return placed;
}

/** Resolves with the first event published on `name` to `subscriber` (after subscribing). */
export function nextEvent(subscriber: DeepstreamClient, name: string, timeoutMs = 5000): Promise<unknown> {
  return withTimeout(
    new Promise((resolve) => {
      const handler = (data: unknown): void => {
        subscriber.event.unsubscribe(name, handler);
        resolve(data);
      };
      subscriber.event.subscribe(name, handler);
    }),
    timeoutMs,
    `event ${name}`,
  );
}

/**
 * The publisher emits on `name` until the subscriber gets it. A subscription made on another node
 * reaches the publisher's node through Redis a moment later; until then an emit has no remote
 * subscriber and is dropped, so a single emit right after subscribing would test timing, not delivery.
 */
export async function deliverEvent(
  publisher: DeepstreamClient,
  subscriber: DeepstreamClient,
  name: string,
  payload: unknown,
  timeoutMs = 5000,
): Promise<unknown> {
  const received = nextEvent(subscriber, name, timeoutMs);
  const timer = setInterval(() => publisher.event.emit(name, payload as never), 100);
  publisher.event.emit(name, payload as never);
  try {
    return await received;
  } finally {
    clearInterval(timer);
  }
}

export interface SmokeResult {
  readonly ok: boolean;
  readonly line: string;
}

/**
 * For each listener: a client logs in through nginx over TLS (wherever the balance sends it), and an
 * event reaches it from a publisher connected straight to another node, through Redis. With one node
 * the publisher shares it. The placement is nginx's to choose, so affinity strategies (ip-hash, hash)
 * that send every loopback client to one node pass too.
 */
export async function smokeCheck(topology: Topology): Promise<SmokeResult> {
  const parts: string[] = [];
  for (const listener of topology.listeners) {
    const started = Date.now();
    const clients: DeepstreamClient[] = [];
    try {
      const subscriber = await topology.connect(listener);
      clients.push(subscriber);
      const subscriberNode = await topology.nodeOf(subscriber);
      const publisherNode = topology.nodes.find((node) => node.name !== subscriberNode) ?? topology.nodes[0]!;
      const publisher = await loginClient(publisherNode.directUrl);
      clients.push(publisher);
      const name = `realtime-edge/smoke/${listener}/${Date.now()}`;
      const payload = { from: publisherNode.name, at: Date.now() };
      const received = (await deliverEvent(publisher, subscriber, name, payload)) as typeof payload;
      if (received?.from !== publisherNode.name) throw new Error(`received ${JSON.stringify(received)}, sent ${JSON.stringify(payload)}`);
      parts.push(`${listener}+TLS ${publisherNode.name}->${subscriberNode} in ${Date.now() - started} ms`);
    } catch (error) {
      return { ok: false, line: `smoke FAILED via nginx ${listener}+TLS: ${(error as Error).message}` };
    } finally {
      await Promise.all(clients.map((client) => closeClient(client)));
    }
  }
  const across = topology.nodes.length > 1 ? 'from another node, through Redis' : 'on the only node';
  return {
    ok: true,
    line: `smoke OK: logged in through nginx over TLS and received an event published ${across} (${parts.join('; ')})`,
  };
}

/**
 * A client process of the benchmark (forked by bench/client-pool.ts, run through tsx): holds up to a
 * few thousand logged-in deepstream clients and answers the requests of bench/worker-protocol.ts.
 * Keeping clients out of the benchmark's own process keeps each process under the 20,000 open-file
 * limit and lets the client load use both cores.
 */
import * as tls from 'node:tls';
import { C, type DeepstreamClient } from '@deepstream/client';
import type { Socket } from '@deepstream/client/dist/src/deepstream-client';
import { socketFactory } from '@deepstream/client/dist/src/connection/socket-factory';
import { closeClient, loginClient, nodeOf, withTimeout } from '../local/node-identity';
import { deepstreamBackend } from '../servers/deepstream';
import { missingInRange } from './stats';
import {
  wallClockMs,
  type ConnectReply,
  type ConnectRequest,
  type DeliveryReply,
  type FailoverClientReport,
  type StatusReply,
  type SubscribeRequest,
  type TickPayload,
  type WorkerReply,
  type WorkerRequest,
} from './worker-protocol';

/** Ping as often as the server expects (it drops a socket silent for two of its ping intervals). */
const HEARTBEAT_MS = deepstreamBackend.profile.pingIntervalSeconds * 1000;
const SDK_VERSION = (require('@deepstream/client/package.json') as { version: string }).version;

interface TrackedClient {
  /** A full client, or null for an idle one (then `socket` is set). */
  readonly client: DeepstreamClient | null;
  readonly socket: Socket | null;
  open: boolean;
  node: string | null;
  lostAt: number | null;
  backAt: number | null;
  received: number[] | null;
}

const clients: TrackedClient[] = [];
let drops = 0;
let failoverMark: number | null = null;

/** Fan-out bookkeeping: deliveries per sequence number, and every delivery's latency. */
let subscriberCount = 0;
const deliveriesBySeq = new Map<number, number>();
let latencies: number[] = [];
let deliveries = 0;
let lastDeliveryAt = 0;

function send(message: WorkerReply): void {
  process.send?.(message);
}

function setOpen(tracked: TrackedClient, open: boolean): void {
  if (tracked.open && !open) {
    drops += 1;
    if (failoverMark !== null && tracked.lostAt === null) tracked.lostAt = wallClockMs();
  }
  if (!tracked.open && open && tracked.lostAt !== null && tracked.backAt === null) tracked.backAt = wallClockMs();
  tracked.open = open;
}

function trackFull(client: DeepstreamClient): TrackedClient {
  const tracked: TrackedClient = { client, socket: null, open: true, node: null, lostAt: null, backAt: null, received: null };
  client.on('connectionStateChanged', (state: string) => setOpen(tracked, state === 'OPEN'));
  return tracked;
}

/**
 * An idle logged-in client: the deepstream client's socket factory (its WebSocket, wire format and
 * 30 s ping) and the login handshake of its Connection (CHALLENGE, ACCEPT, AUTH REQUEST,
 * AUTH_SUCCESSFUL), nothing else.
 */
function loginIdle(url: string, socketOptions: object, timeoutMs: number): Promise<Socket> {
  const socket = socketFactory(url, socketOptions as Parameters<typeof socketFactory>[1], HEARTBEAT_MS);
  const login = new Promise<Socket>((resolve, reject) => {
    socket.onopened = () => {
      socket.sendParsedMessage({
        topic: C.TOPIC.CONNECTION,
        action: C.CONNECTION_ACTION.CHALLENGE,
        url,
        protocolVersion: '0.1a',
        sdkVersion: SDK_VERSION,
        sdkType: 'javascript',
      } as Parameters<Socket['sendParsedMessage']>[0]);
    };
    socket.onparsedmessages = (messages) => {
      for (const message of messages) {
        if (message.topic === C.TOPIC.CONNECTION && message.action === C.CONNECTION_ACTION.ACCEPT) {
          socket.sendParsedMessage({ topic: C.TOPIC.AUTH, action: C.AUTH_ACTION.REQUEST, parsedData: {} } as Parameters<Socket['sendParsedMessage']>[0]);
        } else if (message.topic === C.TOPIC.AUTH && message.action === C.AUTH_ACTION.AUTH_SUCCESSFUL) {
          resolve(socket);
        } else if (message.topic === C.TOPIC.CONNECTION || message.topic === C.TOPIC.AUTH) {
          reject(new Error(`login refused: topic ${message.topic} action ${message.action}`));
        }
      }
    };
    socket.onerror = (error: unknown) => reject(error instanceof Error ? error : new Error(String((error as { message?: string }).message ?? error)));
    socket.onclosed = () => reject(new Error('socket closed during login'));
  });
  return withTimeout(login, timeoutMs, `login to ${url}`).catch((error: unknown) => {
    try {
      socket.close();
    } catch {
      // already closed
    }
    throw error;
  });
}

function trackIdle(socket: Socket): TrackedClient {
  const tracked: TrackedClient = { client: null, socket, open: true, node: null, lostAt: null, backAt: null, received: null };
  socket.onparsedmessages = () => undefined;
  socket.onerror = () => undefined;
  socket.onclosed = () => setOpen(tracked, false);
  return tracked;
}

/** One TLS context per CA for all clients: Node builds a new one per connection when given `ca`,
 * which costs milliseconds of CPU per login and would make the client, not the proxy, the bottleneck. */
const secureContexts = new Map<string, tls.SecureContext>();
function secureContextFor(ca: string): tls.SecureContext {
  let context = secureContexts.get(ca);
  if (!context) {
    context = tls.createSecureContext({ ca });
    secureContexts.set(ca, context);
  }
  return context;
}

async function connect(request: ConnectRequest): Promise<ConnectReply> {
  const started = Date.now();
  let opened = 0;
  let failed = 0;
  const errors = new Set<string>();
  let next = 0;
  const socketOptions = {
    ...(request.ca ? { secureContext: secureContextFor(request.ca) } : {}),
    ...(request.localAddress ? { localAddress: request.localAddress } : {}),
  };
  const one = async (): Promise<void> => {
    while (next < request.count) {
      next += 1;
      try {
        if (request.kind === 'idle') {
          clients.push(trackIdle(await loginIdle(request.url, socketOptions, request.loginTimeoutMs)));
        } else {
          const client = await loginClient(
            request.url,
            {
              socketOptions,
              ...(request.maxReconnectAttempts !== undefined ? { maxReconnectAttempts: request.maxReconnectAttempts } : {}),
            },
            request.loginTimeoutMs,
          );
          clients.push(trackFull(client));
        }
        opened += 1;
      } catch (error) {
        failed += 1;
        if (errors.size < 5) errors.add((error as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(request.concurrency, request.count)) }, one));
  return { opened, failed, errors: [...errors], elapsedMs: Date.now() - started };
}

function status(): StatusReply {
  const usage = process.cpuUsage();
  return {
    total: clients.length,
    open: clients.filter((tracked) => tracked.open).length,
    drops,
    rssBytes: process.memoryUsage().rss,
    cpuMicros: usage.user + usage.system,
  };
}

function fullClient(tracked: TrackedClient): DeepstreamClient {
  if (!tracked.client) throw new Error('this request needs full deepstream clients; connect with kind "full"');
  return tracked.client;
}

function subscribe(request: SubscribeRequest): void {
  for (const tracked of clients) {
    const client = fullClient(tracked);
    if (request.perClient) tracked.received = [];
    subscriberCount += 1;
    client.event.subscribe(request.event, (data) => {
      const now = wallClockMs();
      const tick = data as unknown as TickPayload;
      tracked.received?.push(tick.seq);
      latencies.push(now - tick.sentAt);
      deliveries += 1;
      lastDeliveryAt = now;
      const count = (deliveriesBySeq.get(tick.seq) ?? 0) + 1;
      if (count >= subscriberCount) {
        deliveriesBySeq.delete(tick.seq);
        send({ op: 'delivered', seq: tick.seq });
      } else {
        deliveriesBySeq.set(tick.seq, count);
      }
    });
  }
}

function collectDeliveries(): DeliveryReply {
  return { latencies, deliveries, lastDeliveryAt };
}

function resetDeliveries(): void {
  latencies = [];
  deliveries = 0;
  lastDeliveryAt = 0;
  deliveriesBySeq.clear();
  for (const tracked of clients) if (tracked.received) tracked.received = [];
}

/** Each client's node via the identity RPC of the local topology, a few at a time. */
async function identify(): Promise<Array<string | null>> {
  let next = 0;
  const one = async (): Promise<void> => {
    while (next < clients.length) {
      const tracked = clients[next++]!;
      try {
        tracked.node = tracked.open ? await nodeOf(fullClient(tracked)) : null;
      } catch {
        tracked.node = null;
      }
    }
  };
  await Promise.all(Array.from({ length: 20 }, one));
  return clients.map((tracked) => tracked.node);
}

function markFailover(): void {
  failoverMark = wallClockMs();
  for (const tracked of clients) {
    tracked.lostAt = null;
    tracked.backAt = null;
  }
}

function failoverReport(from: number, to: number): FailoverClientReport[] {
  return clients.map((tracked) => ({
    node: tracked.node,
    lostAt: tracked.lostAt,
    backAt: tracked.backAt,
    missed: missingInRange(tracked.received ?? [], from, to),
  }));
}

async function closeAll(): Promise<void> {
  const all = clients.splice(0);
  // Closing thousands at once would stall the process; a few hundred at a time keeps it responsive.
  for (let index = 0; index < all.length; index += 500) {
    await Promise.all(
      all.slice(index, index + 500).map(async (tracked) => {
        if (tracked.client) {
          await closeClient(tracked.client);
        } else {
          tracked.socket!.onclosed = () => undefined;
          tracked.socket!.close();
        }
      }),
    );
  }
  subscriberCount = 0;
  resetDeliveries();
}

async function handle(request: WorkerRequest): Promise<unknown> {
  switch (request.op) {
    case 'connect':
      return connect(request);
    case 'status':
      return status();
    case 'resetCounters':
      drops = 0;
      return null;
    case 'subscribe':
      subscribe(request);
      return null;
    case 'resetDeliveries':
      resetDeliveries();
      return null;
    case 'collectDeliveries':
      return collectDeliveries();
    case 'identify':
      return identify();
    case 'markFailover':
      markFailover();
      return null;
    case 'failoverReport':
      return failoverReport(request.from, request.to);
    case 'closeAll':
      await closeAll();
      return null;
  }
}

process.on('message', (message: WorkerRequest) => {
  handle(message).then(
    (value) => send({ op: 'reply', id: message.id, ok: true, value }),
    (error: unknown) => send({ op: 'reply', id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
  );
});
// The benchmark owns this process: when its IPC channel closes (the benchmark ended or crashed), so do we.
process.on('disconnect', () => process.exit(0));
send({ op: 'ready' });

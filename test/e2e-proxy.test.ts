/**
 * End-to-end checks of what nginx itself promises, with real processes: behaviour with every node
 * down, TLS versions and certificate, affinity strategies, and the Centrifugo profile's routes
 * (served here by a route-test upstream, since no Centrifugo binary is available).
 */
import * as fs from 'node:fs';
import type { DeepstreamClient } from '@deepstream/client';
import { renderErrorPage } from '../nginx/conf';
import type { BalanceSpec } from '../nginx/spec';
import { centrifugoProfile } from '../servers/centrifugo';
import { pickFreePort } from '../local/ports';
import { smokeCheck } from '../local/checks';
import { startTopology, type Listener, type Topology } from '../local/topology';
import {
  attemptUpgrade,
  ClientPool,
  eventually,
  firstPem,
  httpsRequest,
  negotiatedVersion,
  RECONNECTING,
  startRouteTestUpstream,
  tlsHandshake,
  webSocketEcho,
  withOpensslServer,
  type RouteTestUpstream,
} from './helpers/e2e';

const LISTENERS: readonly Listener[] = ['http', 'stream'];

let topology: Topology;
const pool = new ClientPool();

beforeAll(async () => {
  topology = await startTopology({ label: 'e2e-proxy', nodes: 2, proxyMode: 'both' });
}, 60_000);

afterAll(async () => {
  await pool.close();
  await topology?.stop();
}, 60_000);

function portOf(listener: Listener): number {
  const port = listener === 'http' ? topology.ports.http : topology.ports.stream;
  if (port === undefined) throw new Error(`no ${listener} listener`);
  return port;
}

describe.each(LISTENERS)('all nodes down, through nginx %s mode with TLS', (listener) => {
  test('requests fail cleanly (the custom 50x page on HTTP routes) and clients with retries left recover', async () => {
    const waiting = await Promise.all(Array.from({ length: 4 }, () => topology.connect(listener, RECONNECTING)));
    waiting.forEach((client) => pool.add(client));
    const base = `https://127.0.0.1:${portOf(listener)}`;
    const wsUrl = topology.urlOf(listener);
    try {
      await Promise.all(topology.nodes.map((node) => node.kill('SIGKILL')));

      if (listener === 'http') {
        const errorPage = renderErrorPage();
        for (const path of ['/api', '/health-check']) {
          const answer = await httpsRequest(`${base}${path}`, topology.ca);
          expect([502, 503]).toContain(answer.status);
          expect(answer.body).toBe(errorPage);
        }
        const upgrade = await attemptUpgrade(wsUrl, topology.ca);
        expect(upgrade.kind).toBe('http-status');
        if (upgrade.kind === 'http-status') {
          expect([502, 503]).toContain(upgrade.status);
          expect(upgrade.body).toBe(errorPage);
        }
      } else {
        // L4: nginx completes the TLS handshake, finds no node and closes the connection.
        const upgrade = await attemptUpgrade(wsUrl, topology.ca);
        expect(upgrade.kind).toBe('closed');
        await expect(httpsRequest(`${base}/health-check`, topology.ca)).rejects.toThrow(/socket hang up|ECONNRESET/);
      }
      await eventually(
        'clients noticed that their node is gone',
        () => waiting.map((client) => client.getConnectionState()),
        (states) => states.every((state) => state !== 'OPEN'),
        10_000,
      );
    } finally {
      await Promise.all(topology.nodes.filter((node) => !node.isRunning()).map((node) => node.restart()));
    }

    await eventually(
      'clients logged in again after the nodes returned',
      () => waiting.map((client) => client.getConnectionState()),
      (states) => states.every((state) => state === 'OPEN'),
      30_000,
    );
    const nodes = await Promise.all(waiting.map((client) => topology.nodeOf(client)));
    expect(nodes.every((node) => topology.nodes.some((handle) => handle.name === node))).toBe(true);
    await pool.close(waiting);
  });
});

describe.each(LISTENERS)('TLS of the %s listener', (listener) => {
  test.each(['-tls1', '-tls1_1'] as const)('%s handshake is refused by nginx', async (flag) => {
    const result = await tlsHandshake(portOf(listener), flag);
    expect(result.code).not.toBe(0);
    // The alert comes from the server ("SSL alert number 70" = protocol_version), not the client.
    expect(result.output).toMatch(/alert protocol version/);
    expect(result.output).not.toMatch(/CONNECTION ESTABLISHED/);
    expect(negotiatedVersion(result.output)).toBeUndefined();
  });

  test.each([
    ['-tls1_2', 'TLSv1.2'],
    ['-tls1_3', 'TLSv1.3'],
  ] as const)('%s handshake succeeds and serves the expected certificate', async (flag, version) => {
    const handshake = await tlsHandshake(portOf(listener), flag, { caFile: topology.certificatePath });
    expect(handshake.code).toBe(0);
    expect(negotiatedVersion(handshake.output)).toBe(version);

    const chain = await tlsHandshake(portOf(listener), flag, { caFile: topology.certificatePath, showCertificates: true });
    expect(chain.output).toMatch(/Verify return code: 0 \(ok\)/);
    const served = firstPem(chain.output).replace(/\s+/g, '');
    const expected = fs.readFileSync(topology.certificatePath, 'utf8').replace(/\s+/g, '');
    expect(served).toBe(expected);
  });
});

test('control: the same openssl client does complete TLS 1.0 and 1.1 with a server that allows them', async () => {
  for (const [flag, version] of [
    ['-tls1', 'TLSv1'],
    ['-tls1_1', 'TLSv1.1'],
  ] as const) {
    const port = await pickFreePort();
    const result = await withOpensslServer(port, topology.tls.certificatePath, topology.tls.keyPath, flag, () => tlsHandshake(port, flag));
    expect(negotiatedVersion(result.output)).toBe(version);
  }
});

describe('affinity', () => {
  afterAll(async () => {
    await topology.nginx.reload(topology.nginxSpec());
  });

  /** Connects `perKey` clients for each key and returns the node each key's clients landed on. */
  async function nodesPerKey(
    listener: Listener,
    keys: readonly string[],
    perKey: number,
    socketOptionsOf: (key: string) => Record<string, unknown>,
  ): Promise<Map<string, Set<string>>> {
    const landed = new Map<string, Set<string>>();
    for (const key of keys) {
      const nodes = new Set<string>();
      const clients: DeepstreamClient[] = [];
      for (let index = 0; index < perKey; index++) {
        const client = pool.add(
          await topology.connect(listener, { maxReconnectAttempts: 0, socketOptions: { ca: topology.ca, ...socketOptionsOf(key) } }),
        );
        clients.push(client);
        nodes.add(await topology.nodeOf(client));
      }
      landed.set(key, nodes);
      await pool.close(clients);
    }
    return landed;
  }

  // ip_hash keys on the first three octets of an IPv4 address, so the sources differ in the third.
  // Every 127.0.0.0/8 address is local on Linux, so a client can bind each as its source. Where a key
  // lands is deterministic, but the consistent-hash ring depends on the nodes' ports, which change per
  // run: 16 keys make "all on one node" (which would fail the spread check) vanishingly unlikely.
  const SOURCE_ADDRESSES = Array.from({ length: 16 }, (_, index) => `127.0.${index + 1}.1`);

  test.each([
    ['http', { strategy: 'ip-hash' }, 'ip_hash'],
    ['stream', { strategy: 'hash', hashKey: '$remote_addr' }, 'hash $remote_addr consistent'],
  ] as const)('%s mode: every connection from one client address lands on one node (%s)', async (listener, balance, directive) => {
    await topology.nginx.reload(
      topology.nginxSpec(listener === 'http' ? { balance: balance as BalanceSpec } : { streamBalance: balance as BalanceSpec }),
    );
    expect(fs.readFileSync(topology.nginx.confPath, 'utf8')).toContain(`${directive};`);
    const landed = await nodesPerKey(listener, SOURCE_ADDRESSES, 3, (address) => ({ localAddress: address }));
    for (const [address, nodes] of landed) expect({ address, nodes: [...nodes] }).toEqual({ address, nodes: [expect.any(String)] });
    // Not one node for everybody: the addresses do spread over the nodes.
    const spread = Object.fromEntries([...landed].map(([address, nodes]) => [address, [...nodes].join()]));
    expect({ spread, nodes: new Set(Object.values(spread)).size }).toEqual({ spread, nodes: 2 });
    // `npm run local -- --smoke` passes with affinity too, although its clients share one address.
    expect(await smokeCheck(topology)).toMatchObject({ ok: true });
  });

  test('http mode: a cookie hash sends every connection with one cookie to one node', async () => {
    // Stream sessions have no cookies: the stream listener keeps round robin meanwhile.
    await topology.nginx.reload(topology.nginxSpec({ balance: { strategy: 'hash', hashKey: '$cookie_affinity' }, streamBalance: undefined }));
    const cookies = Array.from({ length: 16 }, (_, index) => `client-${index}`);
    const landed = await nodesPerKey('http', cookies, 3, (cookie) => ({ headers: { Cookie: `affinity=${cookie}` } }));
    for (const [cookie, nodes] of landed) expect({ cookie, nodes: [...nodes] }).toEqual({ cookie, nodes: [expect.any(String)] });
    const spread = Object.fromEntries([...landed].map(([cookie, nodes]) => [cookie, [...nodes].join()]));
    expect({ spread, nodes: new Set(Object.values(spread)).size }).toEqual({ spread, nodes: 2 });
  });
});

describe('Centrifugo profile routes, served by a route-test upstream', () => {
  let upstream: RouteTestUpstream;

  beforeAll(async () => {
    upstream = await startRouteTestUpstream();
  });

  afterAll(async () => {
    await topology.nginx.reload(topology.nginxSpec());
    await upstream?.close();
  });

  const routeTestMount = (prefix?: string) => ({
    profile: centrifugoProfile,
    servers: [{ host: '127.0.0.1', port: upstream.port }],
    ...(prefix ? { prefix } : {}),
  });

  test('http mode, mounted at the root: /connection/websocket, /api and /health reach the upstream unchanged', async () => {
    await topology.nginx.reload(topology.nginxSpec({ httpBackends: [routeTestMount()] }));
    const base = `127.0.0.1:${topology.ports.http}`;
    upstream.seen.length = 0;

    expect(await webSocketEcho(`wss://${base}/connection/websocket`, topology.ca, 'hello')).toEqual({ path: '/connection/websocket', echo: 'hello' });
    const api = await httpsRequest(`https://${base}/api`, topology.ca, { method: 'POST', body: '{"method":"info"}' });
    expect(api.status).toBe(200);
    expect(JSON.parse(api.body)).toEqual({ method: 'POST', path: '/api', body: '{"method":"info"}' });
    expect((await httpsRequest(`https://${base}/health`, topology.ca)).status).toBe(200);
    expect(upstream.seen).toEqual([
      { method: 'GET', path: '/connection/websocket', upgrade: true },
      { method: 'POST', path: '/api', upgrade: false },
      { method: 'GET', path: '/health', upgrade: false },
    ]);
  });

  test('http mode, beside deepstream under /centrifugo: the prefix is stripped, deepstream keeps its own /api', async () => {
    await topology.nginx.reload(topology.nginxSpec({ httpBackends: [topology.deepstreamMount(), routeTestMount('/centrifugo')] }));
    const base = `127.0.0.1:${topology.ports.http}`;
    upstream.seen.length = 0;

    expect(await webSocketEcho(`wss://${base}/centrifugo/connection/websocket`, topology.ca, 'hi')).toEqual({
      path: '/connection/websocket',
      echo: 'hi',
    });
    const api = await httpsRequest(`https://${base}/centrifugo/api`, topology.ca, { method: 'POST', body: '{}' });
    expect(JSON.parse(api.body)).toEqual({ method: 'POST', path: '/api', body: '{}' });
    expect((await httpsRequest(`https://${base}/centrifugo/health`, topology.ca)).status).toBe(200);
    // deepstream's routes still go to deepstream.
    expect((await httpsRequest(`https://${base}/health-check`, topology.ca)).status).toBe(200);
    const deepstreamClient = pool.add(await topology.connect('http'));
    expect(topology.nodes.map((node) => node.name)).toContain(await topology.nodeOf(deepstreamClient));
    await pool.close([deepstreamClient]);
    expect(upstream.seen).toEqual([
      { method: 'GET', path: '/connection/websocket', upgrade: true },
      { method: 'POST', path: '/api', upgrade: false },
      { method: 'GET', path: '/health', upgrade: false },
    ]);
  });

  test('stream mode: a TLS stream listener passes the WebSocket and the API through untouched', async () => {
    const streamPort = await pickFreePort();
    await topology.nginx.reload(
      topology.nginxSpec({ extraStreamListeners: [{ listenPort: streamPort, tls: topology.tls, backend: routeTestMount() }] }),
    );
    upstream.seen.length = 0;
    expect(await webSocketEcho(`wss://127.0.0.1:${streamPort}/connection/websocket`, topology.ca, 'raw')).toEqual({
      path: '/connection/websocket',
      echo: 'raw',
    });
    const api = await httpsRequest(`https://127.0.0.1:${streamPort}/api`, topology.ca, { method: 'POST', body: '[]' });
    expect(JSON.parse(api.body)).toEqual({ method: 'POST', path: '/api', body: '[]' });
    expect(upstream.seen).toEqual([
      { method: 'GET', path: '/connection/websocket', upgrade: true },
      { method: 'POST', path: '/api', upgrade: false },
    ]);
  });
});

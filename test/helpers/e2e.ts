/**
 * Helpers of the end-to-end tests: client bookkeeping, raw HTTPS/WebSocket probes through nginx,
 * openssl s_client, and the route-test upstream (a real WebSocket + HTTP server run by the test).
 */
import { execFile, spawn } from 'node:child_process';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { DeepstreamClient } from '@deepstream/client';
import type { Options as ClientOptions } from '@deepstream/client/dist/src/client-options';
import WebSocket, { WebSocketServer } from 'ws';
import { closeClient, withTimeout } from '../../local/node-identity';
import { sleep, tcpAccepts } from '../../local/readiness';

/** Clients that keep retrying quickly, as a production client configured for failover would. */
export const RECONNECTING: Partial<ClientOptions> = {
  reconnectIntervalIncrement: 100,
  maxReconnectInterval: 500,
  maxReconnectAttempts: 400,
};

/** Tracks clients so afterAll can close every one of them, whatever failed. */
export class ClientPool {
  private readonly clients = new Set<DeepstreamClient>();

  add<T extends DeepstreamClient>(client: T): T {
    this.clients.add(client);
    return client;
  }

  async close(clients: Iterable<DeepstreamClient> = [...this.clients]): Promise<void> {
    const list = [...clients];
    for (const client of list) this.clients.delete(client);
    await Promise.all(list.map((client) => closeClient(client)));
  }
}

/** Polls until `check` holds; throws `what` with the last observation after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  observe: () => Promise<T> | T,
  check: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await observe();
      lastError = undefined;
      if (check(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const detail = lastError ? String(lastError) : JSON.stringify(last);
      throw new Error(`${what}: still not true after ${timeoutMs} ms (last: ${detail})`);
    }
    await sleep(100);
  }
}

export interface HttpsAnswer {
  readonly status: number;
  readonly body: string;
}

/** One HTTPS request through nginx, trusting the topology's certificate; no connection reuse. */
export function httpsRequest(
  url: string,
  ca: Buffer,
  options: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const request = https.request(
      url,
      { method: options.method ?? 'GET', ca, agent: false, headers: options.headers, timeout: 10_000 },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      },
    );
    request.on('timeout', () => request.destroy(new Error(`${url} timed out`)));
    request.on('error', reject);
    request.end(options.body);
  });
}

export type UpgradeOutcome =
  | { readonly kind: 'open' }
  | { readonly kind: 'http-status'; readonly status: number; readonly body: string }
  | { readonly kind: 'closed'; readonly error: string };

/** Attempts a WebSocket upgrade and reports how it ended (never hangs: 10 s bound). */
export function attemptUpgrade(url: string, ca: Buffer): Promise<UpgradeOutcome> {
  return withTimeout(
    new Promise<UpgradeOutcome>((resolve) => {
      const socket = new WebSocket(url, { ca });
      socket.on('open', () => {
        socket.terminate();
        resolve({ kind: 'open' });
      });
      socket.on('unexpected-response', (_request, response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ kind: 'http-status', status: response.statusCode ?? 0, body }));
      });
      socket.on('error', (error) => resolve({ kind: 'closed', error: error.message }));
    }),
    10_000,
    `WebSocket upgrade to ${url}`,
  );
}

export interface CommandResult {
  readonly code: number;
  readonly output: string;
}

/** Runs a command with stdin closed; resolves with exit code and combined output. */
export function runCommand(command: string, args: readonly string[], timeoutMs = 15_000): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(command, [...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
    child.stdin?.end();
  });
}

/**
 * `openssl s_client` offering exactly one protocol version. SECLEVEL=0 lets Debian's openssl offer
 * TLS 1.0/1.1 at all, so a refusal comes from the server, not from the client's own policy.
 * `-brief` prints "Protocol version: ..." for every version; `showCertificates` prints the chain
 * instead (openssl cannot do both in one run), verified against `caFile`.
 */
export function tlsHandshake(
  port: number,
  protocolFlag: '-tls1' | '-tls1_1' | '-tls1_2' | '-tls1_3',
  options: { showCertificates?: boolean; caFile?: string } = {},
) {
  return runCommand('openssl', [
    's_client',
    '-connect', `127.0.0.1:${port}`,
    '-servername', 'localhost',
    protocolFlag,
    '-cipher', 'DEFAULT:@SECLEVEL=0',
    ...(options.caFile ? ['-CAfile', options.caFile, '-verify_return_error'] : []),
    ...(options.showCertificates ? ['-showcerts'] : ['-brief']),
  ]);
}

/** The version `tlsHandshake` (brief) negotiated, e.g. `TLSv1.3`, or undefined when none. */
export function negotiatedVersion(output: string): string | undefined {
  return /^Protocol version: (\S+)$/m.exec(output)?.[1];
}

/** An `openssl s_server` that accepts only `protocolFlag`: the control showing the client can speak it. */
export async function withOpensslServer<T>(
  port: number,
  certificatePath: string,
  keyPath: string,
  protocolFlag: '-tls1' | '-tls1_1',
  body: () => Promise<T>,
): Promise<T> {
  const server = spawn(
    'openssl',
    ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', certificatePath, '-key', keyPath, protocolFlag, '-cipher', 'DEFAULT:@SECLEVEL=0', '-quiet'],
    { stdio: ['pipe', 'ignore', 'ignore'] },
  );
  try {
    await eventually(`openssl s_server on ${port}`, () => tcpAccepts('127.0.0.1', port), Boolean, 5000);
    return await body();
  } finally {
    server.kill('SIGKILL');
  }
}

/** The PEM of the first certificate in `openssl s_client -showcerts` output. */
export function firstPem(output: string): string {
  const match = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(output);
  if (!match) throw new Error(`no certificate in the openssl output:\n${output}`);
  return match[0];
}

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly upgrade: boolean;
}

export interface RouteTestUpstream {
  readonly port: number;
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

/**
 * A real WebSocket + HTTP server for the route tests: it records the method and path of every
 * request as it arrives after nginx, answers HTTP with JSON `{method, path, body}` and echoes
 * WebSocket messages as JSON `{path, echo}`.
 */
export async function startRouteTestUpstream(): Promise<RouteTestUpstream> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      seen.push({ method: request.method ?? '', path: request.url ?? '', upgrade: false });
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ method: request.method, path: request.url, body }));
    });
  });
  const sockets = new WebSocketServer({ noServer: true });
  server.on('upgrade', (request, socket, head) => {
    seen.push({ method: request.method ?? '', path: request.url ?? '', upgrade: true });
    sockets.handleUpgrade(request, socket, head, (ws) => {
      ws.on('message', (data) => ws.send(JSON.stringify({ path: request.url, echo: data.toString() })));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    seen,
    close: async () => {
      for (const client of sockets.clients) client.terminate();
      sockets.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Opens a WebSocket through nginx, sends one message and returns the parsed echo. */
export function webSocketEcho(url: string, ca: Buffer, message: string): Promise<{ path: string; echo: string }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { ca });
      socket.on('open', () => socket.send(message));
      socket.on('message', (data) => {
        socket.close();
        resolve(JSON.parse(data.toString()) as { path: string; echo: string });
      });
      socket.on('unexpected-response', (_request, response) => reject(new Error(`${url} answered HTTP ${response.statusCode}`)));
      socket.on('error', reject);
    }),
    10_000,
    `WebSocket echo via ${url}`,
  );
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Probes used to decide that a process of the local topology is ready (or to explain why not). */
import * as http from 'node:http';
import * as net from 'node:net';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface WaitOptions {
  /** What is awaited, for the timeout message. */
  readonly what: string;
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** Stops waiting early with this error, e.g. when the process being waited for has exited. */
  readonly abortReason?: () => string | undefined;
}

/** Polls `check` until it returns true; throws naming `what` (and the last failure) on timeout. */
export async function waitUntil(check: () => Promise<boolean>, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError = '';
  for (;;) {
    const abort = options.abortReason?.();
    if (abort) throw new Error(`${options.what}: ${abort}`);
    try {
      if (await check()) return;
      lastError = '';
    } catch (error) {
      lastError = (error as Error).message;
    }
    if (Date.now() >= deadline) {
      throw new Error(`${options.what}: not ready after ${options.timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}`);
    }
    await sleep(options.intervalMs ?? 100);
  }
}

/** Status code of a plain-HTTP GET (no keep-alive, so no socket stays open to the node). */
export function httpGetStatus(url: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: timeoutMs }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}

/** Sends a raw RESP `PING` and resolves true on `+PONG`. */
export function redisPing(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let reply = '';
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`redis ${host}:${port} did not answer PING`)));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) {
        socket.end();
        resolve(reply.startsWith('+PONG'));
      }
    });
    socket.on('error', reject);
  });
}

/** True when a TCP connection to host:port is accepted. */
export function tcpAccepts(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

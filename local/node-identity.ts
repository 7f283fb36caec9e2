/**
 * Which deepstream node is a client connected to? A client behind nginx cannot see its upstream, so
 * every node gets one "identity" client connected to it directly that provides the RPC below and
 * answers with the node's serverName. deepstream always routes an RPC to a provider connected to the
 * caller's own node when there is one (rpc-handler `makeRpc` picks among local subscribers first), so
 * the answer names the node the caller is on. This is deepstream's own routing, observable from the
 * client, with no access-log parsing and no change to the rendered configs.
 */
import { DeepstreamClient } from '@deepstream/client';
import type { Options } from '@deepstream/client/dist/src/client-options';

export const NODE_NAME_RPC = 'realtime-edge/node-name';

export interface IdentityProvider {
  readonly nodeName: string;
  close(): Promise<void>;
}

/** Closes a client and resolves once its socket is gone (or after a short grace period). */
export function closeClient(client: DeepstreamClient): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 1000);
    timer.unref();
    try {
      client.on('connectionStateChanged', (state: string) => {
        if (state === 'CLOSED') {
          clearTimeout(timer);
          resolve();
        }
      });
      client.close();
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

/** Logs in with open auth; rejects with the server's reason or after `timeoutMs`. */
export async function loginClient(
  url: string,
  options: Partial<Options> = {},
  timeoutMs = 10_000,
): Promise<DeepstreamClient> {
  const client = new DeepstreamClient(url, options);
  // Without a listener the client throws connection errors from a timer; callers watch the state.
  client.on('error', () => undefined);
  try {
    await withTimeout(client.login({}), timeoutMs, `login to ${url}`);
  } catch (error) {
    await closeClient(client);
    throw error;
  }
  return client;
}

export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} timed out after ${timeoutMs} ms`)), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Connects directly to one node and answers NODE_NAME_RPC there. */
export async function startIdentityProvider(nodeName: string, directUrl: string): Promise<IdentityProvider> {
  const client = await loginClient(directUrl, {
    // The provider belongs to this node only: when the node dies, the topology closes it and makes a
    // new one after a restart, so it must not wander or retry on its own.
    maxReconnectAttempts: 0,
  });
  client.rpc.provide(NODE_NAME_RPC, (_data, response) => response.send(nodeName));
  // `provide` is registered asynchronously; a caller on the same node getting the answer proves it is.
  let checker: DeepstreamClient | undefined;
  try {
    // Inside the try: a checker that cannot log in must not leave the provider behind (callers retry).
    checker = await loginClient(directUrl, { maxReconnectAttempts: 0 });
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        const answer = await nodeOf(checker);
        if (answer === nodeName) break;
        throw new Error(`identity RPC on ${nodeName} answered ${answer}`);
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  } catch (error) {
    await closeClient(client);
    throw error;
  } finally {
    if (checker) await closeClient(checker);
  }
  return { nodeName, close: () => closeClient(client) };
}

/** The serverName of the node this (logged-in) client is connected to. */
export async function nodeOf(client: DeepstreamClient, timeoutMs = 5000): Promise<string> {
  const answer = await withTimeout(client.rpc.make(NODE_NAME_RPC, null), timeoutMs, 'node identity RPC');
  if (typeof answer !== 'string') throw new Error(`node identity RPC answered ${JSON.stringify(answer)}, expected a node name`);
  return answer;
}

/** Loopback ports for the local topology: picked free at run time, or checked when given. */
import * as net from 'node:net';

export const LOOPBACK = '127.0.0.1';

function listenOnce(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      server.close(() => resolve(bound));
    });
  });
}

/** A port the kernel reports free on loopback right now. */
export function pickFreePort(host = LOOPBACK): Promise<number> {
  return listenOnce(0, host);
}

/** Throws one clear error naming the port and its purpose when it cannot be bound. */
export async function assertPortFree(port: number, purpose: string, host = LOOPBACK): Promise<void> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`${purpose}: port ${port} is not valid; allowed: an integer from 1 to 65535`);
  }
  try {
    await listenOnce(port, host);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new Error(`port ${port} (${purpose}) is already in use on ${host}; stop what uses it or choose another port`);
    }
    if (code === 'EACCES') {
      throw new Error(`port ${port} (${purpose}) needs privileges to bind on ${host}; choose a port above 1023`);
    }
    throw error;
  }
}

/** Resolves each requested port: checks the given ones, picks the missing ones, never the same twice. */
export async function resolvePorts<K extends string>(
  requests: ReadonlyArray<{ key: K; purpose: string; port?: number }>,
): Promise<Record<K, number>> {
  const taken = new Set<number>();
  const result = {} as Record<K, number>;
  for (const request of requests) {
    if (request.port !== undefined) {
      if (taken.has(request.port)) {
        throw new Error(`port ${request.port} (${request.purpose}) is requested twice; each listener needs its own port`);
      }
      await assertPortFree(request.port, request.purpose);
      result[request.key] = request.port;
      taken.add(request.port);
    }
  }
  for (const request of requests) {
    if (request.port === undefined) {
      let port = await pickFreePort();
      while (taken.has(port)) port = await pickFreePort();
      result[request.key] = port;
      taken.add(port);
    }
  }
  return result;
}

/** Loopback ports for the local topology: picked free at run time, or checked when given. */
import * as fs from 'node:fs';
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

/** Lowest port picked for a listener: clear of the well-known and commonly configured ones. */
const PICKED_PORT_MIN = 20000;
/** Where Linux starts handing out source ports when its /proc file cannot be read. */
const DEFAULT_EPHEMERAL_START = 32768;
/** Ports this process has picked already: a picked port is bound later, by another process. */
const picked = new Set<number>();

/** First port of the kernel's ephemeral range (source ports of outgoing connections, and bind(0)). */
function ephemeralRangeStart(): number {
  try {
    const first = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 0 ? first : DEFAULT_EPHEMERAL_START;
  } catch {
    return DEFAULT_EPHEMERAL_START;
  }
}

/**
 * A port free on loopback right now, below the kernel's ephemeral range and not picked before by
 * this process. bind(0) would hand out a port from that range, which any outgoing connection may
 * then take as its source port before the server meant to listen there binds it: an nginx reload
 * failed with EADDRINUSE that way while other tests held thousands of connections.
 */
export async function pickFreePort(host = LOOPBACK): Promise<number> {
  const high = ephemeralRangeStart() - 1;
  for (let attempt = 0; high > PICKED_PORT_MIN && attempt < 100; attempt += 1) {
    const port = PICKED_PORT_MIN + Math.floor(Math.random() * (high - PICKED_PORT_MIN + 1));
    if (picked.has(port)) continue;
    try {
      await listenOnce(port, host);
      picked.add(port);
      return port;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    }
  }
  // No room below the ephemeral range (an unusual ip_local_port_range): let the kernel choose.
  const port = await listenOnce(0, host);
  picked.add(port);
  return port;
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

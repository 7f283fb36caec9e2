/**
 * The local topology: Redis, N deepstream nodes and nginx on loopback, each configured by the same
 * renderers as on EC2; nginx's spec comes from `proxyNginxSpec`, as on the proxy hosts. The local
 * variant is expressed only as its deployment options (loopback listen address, unprivileged ports,
 * the dynamic stream module, paths in the run folder); rendered text is never edited.
 *
 * Used by `npm run local`, the end-to-end tests and the benchmarks.
 */
import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import type { DeepstreamClient } from '@deepstream/client';
import type { Options as ClientOptions } from '@deepstream/client/dist/src/client-options';
import type { ProxyMode, StackConfig } from '../config/types';
import { colocatedWorkerProcesses } from '../nginx/conf-defaults';
import { proxyBackendMount, proxyNginxSpec, streamBalanceOf, type ProxyBackend } from '../nginx/proxy-spec';
import type { BackendMount, BalanceSpec, NginxSpec, NginxTimeouts, StreamListenerSpec, TlsSpec } from '../nginx/spec';
import { deepstreamBackend } from '../servers/deepstream';
import { startDeepstreamNode, type NodeHandle } from './deepstream-node';
import { nginxPathsIn, startNginx, type NginxHandle } from './nginx-process';
import { loginClient, nodeOf } from './node-identity';
import { LOOPBACK, resolvePorts } from './ports';
import { onShutdownSignal } from './processes';
import { startRedis, type RedisHandle } from './redis-process';
import { cleanStaleRuns, createRunFolder } from './run-folder';
import { DEBIAN_STREAM_MODULE } from './system';
import { makeSelfSignedCertificate } from './tls';

export { streamBalanceOf } from '../nginx/proxy-spec';
export type { NodeHandle } from './deepstream-node';
export type { NginxHandle } from './nginx-process';
export type { RedisHandle } from './redis-process';

/** Which nginx listener a client goes through. */
export type Listener = 'http' | 'stream';

export interface TopologyPorts {
  /** nginx http (L7) listener with TLS. */
  readonly http?: number;
  /** nginx stream (L4) listener with TLS. */
  readonly stream?: number;
  /** nginx stub_status (loopback). */
  readonly status?: number;
  readonly redis?: number;
  /** One per deepstream node, in order. */
  readonly nodes?: readonly number[];
}

export interface TopologyOptions {
  /** Run folder label (`run/<label>-...`); default `local`. */
  readonly label?: string;
  /** Number of deepstream nodes; default 2. */
  readonly nodes?: number;
  /** nginx listeners: `http`, `stream` or `both` (default). */
  readonly proxyMode?: ProxyMode;
  /** Balancing on the deepstream upstreams; default round robin (nginx's default). */
  readonly balance?: BalanceSpec;
  /** Balancing of the stream listener; default `streamBalanceOf(balance)`. */
  readonly streamBalance?: BalanceSpec;
  readonly timeouts?: NginxTimeouts;
  readonly maxConnections?: number;
  /** nginx workers; default `colocatedWorkerProcesses` (the cores the nodes leave free, at least 1). */
  readonly workerProcesses?: 'auto' | number;
  readonly allowedOrigins?: readonly string[];
  /** Unset ports are picked free at run time; a given port in use fails with a message naming it. */
  readonly ports?: TopologyPorts;
  /** More http-mode mounts besides deepstream (e.g. an upstream run by a test under a prefix). */
  readonly extraHttpBackends?: readonly BackendMount[];
  /** Start one node-identity provider per node so `nodeOf(client)` works; default true. */
  readonly nodeIdentity?: boolean;
  /** Keep the run folder (logs, configs) after `stop()`; default false. */
  readonly keepRunFolder?: boolean;
  /** Progress lines; default silent. */
  readonly log?: (line: string) => void;
}

export interface TopologyUrls {
  /** `wss://127.0.0.1:PORT/deepstream` through the http listener. */
  readonly httpWebSocket?: string;
  /** Health check of the cluster through the http listener. */
  readonly httpHealth?: string;
  /** `wss://127.0.0.1:PORT/deepstream` through the stream listener (any path reaches the node). */
  readonly streamWebSocket?: string;
}

/** What a test or benchmark may change in the topology's nginx spec; everything else stays. */
export interface NginxSpecChanges {
  readonly balance?: BalanceSpec;
  readonly streamBalance?: BalanceSpec;
  /** Replaces the http mounts; default: deepstream at the root plus `extraHttpBackends`. */
  readonly httpBackends?: readonly BackendMount[];
  /** Stream listeners besides deepstream's. */
  readonly extraStreamListeners?: readonly StreamListenerSpec[];
}

export interface Topology {
  readonly runFolder: string;
  /** The self-signed certificate and key nginx serves (for more listeners in `nginxSpec` changes). */
  readonly tls: TlsSpec;
  readonly certificatePath: string;
  /** The self-signed certificate, for clients' `ca`. */
  readonly ca: Buffer;
  readonly ports: {
    readonly http?: number;
    readonly stream?: number;
    readonly status: number;
    readonly redis: number;
    readonly nodes: readonly number[];
  };
  readonly urls: TopologyUrls;
  readonly listeners: readonly Listener[];
  readonly redis: RedisHandle;
  readonly nodes: readonly NodeHandle[];
  readonly nginx: NginxHandle;
  /** The deepstream nodes as a backend mount (to compose `httpBackends`). */
  deepstreamMount(balance?: BalanceSpec): BackendMount;
  /** The spec nginx started with, changed as given (e.g. another balance); for `nginx.reload`. */
  nginxSpec(changes?: NginxSpecChanges): NginxSpec;
  /** WebSocket URL of a listener. */
  urlOf(listener: Listener): string;
  /** A logged-in deepstream client through nginx; the certificate is trusted via `ca`. */
  connect(listener: Listener, options?: Partial<ClientOptions>): Promise<DeepstreamClient>;
  /** serverName of the node a logged-in client is on. */
  nodeOf(client: DeepstreamClient): Promise<string>;
  /** Stops nginx, the nodes and Redis; removes the run folder unless kept. Safe to call twice. */
  stop(): Promise<void>;
}

const ROUND_ROBIN: BalanceSpec = { strategy: 'round-robin' };

function workerUser(): string | undefined {
  // Only a root master switches users; Debian's nginx package creates www-data.
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const passwd = fs.readFileSync('/etc/passwd', 'utf8');
  return /^www-data:/m.test(passwd) ? 'www-data' : 'nobody';
}

/** Topology options from a validated stack config (node count, proxy mode, balance, timeouts...). */
export function topologyOptionsFromStack(stack: StackConfig): TopologyOptions {
  const deepstream = stack.backends.deepstream;
  if (!deepstream) {
    throw new Error('the local topology runs deepstream nodes, but this stack enables no deepstream backend; allowed: a stack with backends including deepstream');
  }
  return {
    nodes: deepstream.nodes,
    proxyMode: stack.nginx?.mode ?? 'both',
    ...(stack.nginx ? { balance: stack.nginx.balance } : {}),
    // An unset idle timeout stays unset: the renderer derives it from the mounted backends.
    timeouts: stack.timeouts,
    maxConnections: stack.maxConnections,
    allowedOrigins: stack.allowedOrigins,
  };
}

export async function startTopology(options: TopologyOptions = {}): Promise<Topology> {
  const log = options.log ?? (() => undefined);
  const nodeCount = options.nodes ?? 2;
  if (!Number.isInteger(nodeCount) || nodeCount < 1) {
    throw new Error(`nodes: got ${nodeCount}; allowed: an integer of at least 1`);
  }
  const mode = options.proxyMode ?? 'both';
  const listeners: Listener[] = mode === 'both' ? ['http', 'stream'] : [mode];
  if (options.ports?.nodes && options.ports.nodes.length !== nodeCount) {
    throw new Error(`ports.nodes: got ${options.ports.nodes.length} ports for ${nodeCount} nodes; allowed: one port per node`);
  }

  const ended = await cleanStaleRuns();
  if (ended.length > 0) log(`ended ${ended.length} processes left behind by an earlier run`);

  const ports = await resolvePorts([
    ...(listeners.includes('http') ? [{ key: 'http', purpose: 'nginx http listener', port: options.ports?.http }] : []),
    ...(listeners.includes('stream') ? [{ key: 'stream', purpose: 'nginx stream listener', port: options.ports?.stream }] : []),
    { key: 'status', purpose: 'nginx stub_status listener', port: options.ports?.status },
    { key: 'redis', purpose: 'redis-server', port: options.ports?.redis },
    ...Array.from({ length: nodeCount }, (_, index) => ({
      key: `node${index}`,
      purpose: `deepstream node ${index}`,
      port: options.ports?.nodes?.[index],
    })),
  ]);
  const nodePorts = Array.from({ length: nodeCount }, (_, index) => ports[`node${index}`]!);

  const run = createRunFolder(options.label ?? 'local');
  log(`run folder ${run.path}`);
  let redis: RedisHandle | undefined;
  const nodes: NodeHandle[] = [];
  let nginx: NginxHandle | undefined;
  let stopped = false;
  let unregisterSignal = (): void => undefined;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    unregisterSignal();
    // Front to back, so clients see the proxy go before the nodes.
    await nginx?.stop().catch(() => undefined);
    await Promise.all(nodes.map((node) => node.stop().catch(() => undefined)));
    await redis?.stop().catch(() => undefined);
    if (!options.keepRunFolder && !process.env.REALTIME_EDGE_KEEP_RUN) run.remove();
  };
  unregisterSignal = onShutdownSignal(stop);

  try {
    const certificate = await makeSelfSignedCertificate(run.subdir('tls'), {
      commonName: 'localhost',
      altNames: ['localhost', LOOPBACK],
    });
    const tls: TlsSpec = { certificatePath: certificate.certificatePath, keyPath: certificate.keyPath };

    redis = await startRedis({ dir: run.subdir('redis'), port: ports.redis! });
    log(`redis on ${LOOPBACK}:${ports.redis}`);

    const redisEndpoint = { host: LOOPBACK, port: ports.redis!, tls: false };
    const nodeNames = Array.from({ length: nodeCount }, (_, index) => `${deepstreamBackend.profile.name}-${index}`);
    // Nodes start in parallel: each needs a couple of seconds to load, and they only meet in Redis.
    const started = await Promise.allSettled(
      nodeNames.map((nodeName, index) =>
        startDeepstreamNode({
          dir: run.subdir(nodeName),
          identity: options.nodeIdentity ?? true,
          render: {
            nodeName,
            version: deepstreamBackend.defaultVersion,
            listenHost: LOOPBACK,
            listenPort: nodePorts[index]!,
            redis: redisEndpoint,
            ...(options.allowedOrigins ? { allowedOrigins: options.allowedOrigins } : {}),
          },
        }),
      ),
    );
    for (const result of started) if (result.status === 'fulfilled') nodes.push(result.value);
    const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
    for (const node of nodes) log(`${node.name} on ${LOOPBACK}:${node.port}`);

    // The same spec function as the EC2 proxy hosts; only deployment options differ: loopback and
    // unprivileged ports, Debian's dynamic stream module, paths in the run folder.
    const deepstream: ProxyBackend = {
      profile: deepstreamBackend.profile,
      nodes: nodePorts.map((port) => ({ host: LOOPBACK, port })),
    };
    const nginxDir = run.subdir('nginx');
    // nginx shares this machine's cores with the nodes, unlike an EC2 proxy host.
    const workerProcesses = options.workerProcesses ?? colocatedWorkerProcesses(availableParallelism(), nodeCount);
    const user = workerUser();
    const deepstreamMount = (balance?: BalanceSpec): BackendMount => proxyBackendMount(deepstream, 0, balance);
    const buildSpec = (changes: NginxSpecChanges = {}): NginxSpec => {
      const balance = 'balance' in changes ? changes.balance : options.balance;
      const streamBalance =
        'streamBalance' in changes ? changes.streamBalance : 'balance' in changes ? streamBalanceOf(balance) : (options.streamBalance ?? streamBalanceOf(balance));
      return proxyNginxSpec(
        {
          mode,
          ...(balance ? { balance } : {}),
          // Unset means nginx's round robin here, never "same as balance" (a cookie hash has no
          // meaning on a stream listener).
          streamBalance: streamBalance ?? ROUND_ROBIN,
          domain: 'localhost',
          tls,
          // No HSTS: a browser would remember "HTTPS only" for localhost for as long as max-age.
          ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
          ...(options.timeouts ? { timeouts: options.timeouts } : {}),
          ...(options.allowedOrigins?.length ? { allowedOrigins: options.allowedOrigins } : {}),
        },
        [deepstream],
        {
          paths: nginxPathsIn(nginxDir),
          streamModule: { kind: 'dynamic', path: DEBIAN_STREAM_MODULE },
          listenAddress: LOOPBACK,
          listenPorts: {
            ...(ports.http !== undefined ? { https: ports.http } : {}),
            // No port-80 redirect locally: binding it needs root, and nothing needs it here.
            redirect: null,
            ...(ports.stream !== undefined ? { stream: { [deepstream.profile.name]: ports.stream } } : {}),
          },
          statusPort: ports.status!,
          workerProcesses,
          ...(user ? { user } : {}),
          ...(changes.httpBackends
            ? { httpMounts: changes.httpBackends }
            : options.extraHttpBackends
              ? { extraHttpMounts: options.extraHttpBackends }
              : {}),
          ...(changes.extraStreamListeners ? { extraStreamListeners: changes.extraStreamListeners } : {}),
        },
      );
    };
    nginx = await startNginx({ dir: nginxDir, spec: buildSpec() });
    log(`nginx on ${listeners.map((listener) => `${listener} ${LOOPBACK}:${ports[listener]}`).join(', ')}`);

    const clientPath = deepstreamBackend.profile.clientPath;
    const urls: TopologyUrls = {
      ...(ports.http !== undefined
        ? {
            httpWebSocket: `wss://${LOOPBACK}:${ports.http}${clientPath}`,
            httpHealth: `https://${LOOPBACK}:${ports.http}${deepstreamBackend.profile.healthPath}`,
          }
        : {}),
      ...(ports.stream !== undefined ? { streamWebSocket: `wss://${LOOPBACK}:${ports.stream}${clientPath}` } : {}),
    };
    const ca = fs.readFileSync(tls.certificatePath);
    const urlOf = (listener: Listener): string => {
      const url = listener === 'http' ? urls.httpWebSocket : urls.streamWebSocket;
      if (!url) throw new Error(`listener ${listener} is not running; this topology runs: ${listeners.join(', ')}`);
      return url;
    };
    const startedNginx = nginx;
    const startedRedis = redis;
    return {
      runFolder: run.path,
      tls,
      certificatePath: tls.certificatePath,
      ca,
      ports: {
        ...(ports.http !== undefined ? { http: ports.http } : {}),
        ...(ports.stream !== undefined ? { stream: ports.stream } : {}),
        status: ports.status!,
        redis: ports.redis!,
        nodes: nodePorts,
      },
      urls,
      listeners,
      redis: startedRedis,
      nodes,
      nginx: startedNginx,
      deepstreamMount,
      nginxSpec: buildSpec,
      urlOf,
      connect: (listener, clientOptions = {}) =>
        loginClient(urlOf(listener), {
          ...clientOptions,
          socketOptions: { ca, ...(clientOptions.socketOptions ?? {}) },
        }),
      nodeOf: (client) => nodeOf(client),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * What one proxy traversal costs on this machine, whatever the configuration: a bare TCP ping-pong
 * (one small message written, the echo awaited) straight to an echo process and through three relays
 * of it, interleaved like the RPC latency paths:
 * - nginx with the rendered stream config (the renderer's settings, one plain listener);
 * - nginx with the fewest directives that relay TCP (`listen` and `proxy_pass`, everything else
 *   nginx's defaults): what no configuration can undercut;
 * - HAProxy in tcp mode.
 * No deepstream and no WebSocket framing: the difference to direct is the relay alone, two traversals
 * per round trip. If the rendered config adds no more than the bare one, the RPC latency ratios are
 * bounded by this machine (each traversal is a wake-up of the proxy on shared cores), not by settings.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { nginxPathsIn, startNginx } from '../local/nginx-process';
import { LOOPBACK, pickFreePort } from '../local/ports';
import { startReadyProcess } from '../local/processes';
import { tcpAccepts } from '../local/readiness';
import { resolveNginxSpec } from '../nginx/conf';
import { NGINX_DEFAULTS } from '../nginx/conf-defaults';
import type { NginxSpec } from '../nginx/spec';
import { deepstreamProfile } from '../servers/deepstream';
import { bareStreamConf, startBareNginx } from './bare-nginx';
import { renderHaproxyConfig } from './haproxy';
import { startHaproxyProcess } from './haproxy-process';
import type { RelayFloorPath, RelayFloorResults } from './results';
import { interleavedOrder, summarize } from './stats';

export interface RelayFloorOptions {
  /** Folder for the echo server's, the two nginx's and HAProxy's files. */
  readonly dir: string;
  /** The topology's nginx spec: the rendered relay keeps its worker, module and timeout settings. */
  readonly baseSpec: NginxSpec;
  readonly roundTrips: number;
  readonly warmup: number;
  readonly batch: number;
  readonly messageBytes: number;
  readonly log: (line: string) => void;
}

/** Messages through the relay per round trip: the ping and its echo. */
const TRAVERSALS_PER_ROUND_TRIP = 2;

const ECHO_SERVER = `
const net = require('node:net');
net.createServer((socket) => { socket.setNoDelay(true); socket.on('data', (chunk) => socket.write(chunk)); socket.on('error', () => {}); })
  .listen(Number(process.argv[1]), '${LOOPBACK}');
`;

interface Pinger {
  readonly name: string;
  readonly description: string;
  readonly socket: net.Socket;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, LOOPBACK, () => {
      socket.setNoDelay(true);
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** One round trip: write the message, wait until all of its bytes came back. */
function pingPong(socket: net.Socket, message: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let received = 0;
    const timer = setTimeout(() => done(new Error(`no echo within 5 s from ${socket.remotePort}`)), 5000);
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received >= message.length) done();
    };
    const done = (error?: Error): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      if (error) reject(error);
      else resolve();
    };
    socket.on('data', onData);
    socket.write(message);
  });
}

export async function measureRelayFloor(options: RelayFloorOptions): Promise<RelayFloorResults> {
  const stops: Array<() => Promise<unknown>> = [];
  const sockets: net.Socket[] = [];
  try {
    fs.mkdirSync(options.dir, { recursive: true, mode: 0o755 });
    const echoPort = await pickFreePort();
    const echo = await startReadyProcess(
      {
        name: 'echo',
        command: process.execPath,
        args: ['-e', ECHO_SERVER, String(echoPort)],
        cwd: options.dir,
        logPath: path.join(options.dir, 'echo.log'),
      },
      { check: () => tcpAccepts(LOOPBACK, echoPort), what: `echo server on ${echoPort}`, timeoutMs: 10_000 },
    );
    stops.push(() => echo.stop());

    const renderedPort = await pickFreePort();
    const renderedDir = path.join(options.dir, 'nginx-rendered');
    fs.mkdirSync(renderedDir, { recursive: true, mode: 0o755 });
    const { http: _http, stream: _stream, ...settings } = options.baseSpec;
    const renderedSpec: NginxSpec = {
      ...settings,
      stream: {
        listeners: [{ listenPort: renderedPort, tls: null, backend: { profile: deepstreamProfile, servers: [{ host: LOOPBACK, port: echoPort }] } }],
      },
      statusPort: null,
      paths: nginxPathsIn(renderedDir),
    };
    const rendered = await startNginx({ dir: renderedDir, spec: renderedSpec });
    stops.push(() => rendered.stop());

    const barePort = await pickFreePort();
    // The stream module the rendered relay loads, if any (Debian's is dynamic).
    const streamModulePath = resolveNginxSpec(renderedSpec).streamModulePath;
    const bareDir = path.join(options.dir, 'nginx-bare');
    const bareConf = bareStreamConf({ dir: bareDir, listenPort: barePort, upstreamPort: echoPort, ...(streamModulePath ? { streamModulePath } : {}) });
    const bare = await startBareNginx(bareDir, bareConf, barePort);
    stops.push(() => bare.stop());

    const haproxyPort = await pickFreePort();
    const haproxyDir = path.join(options.dir, 'haproxy');
    fs.mkdirSync(haproxyDir, { recursive: true, mode: 0o755 });
    const haproxyConfig = path.join(haproxyDir, 'haproxy.cfg');
    fs.writeFileSync(
      haproxyConfig,
      renderHaproxyConfig({
        listenAddress: LOOPBACK,
        tcp: [{ port: haproxyPort, tls: false }],
        servers: [{ host: LOOPBACK, port: echoPort }],
        connectSeconds: NGINX_DEFAULTS.connectSeconds,
        idleSeconds: 60,
        maxConnections: 64,
      }),
    );
    const haproxy = await startHaproxyProcess({ dir: haproxyDir, configPath: haproxyConfig, ports: [haproxyPort] });
    stops.push(() => haproxy.stop());

    const targets: Array<{ name: string; description: string; port: number }> = [
      { name: 'direct', description: 'straight to the echo process', port: echoPort },
      { name: 'nginx-rendered', description: 'nginx, the rendered stream config', port: renderedPort },
      { name: 'nginx-bare', description: 'nginx, `listen` + `proxy_pass` and nginx defaults only', port: barePort },
      { name: 'haproxy-tcp', description: 'HAProxy tcp mode', port: haproxyPort },
    ];
    const pingers: Pinger[] = [];
    for (const target of targets) {
      const socket = await connect(target.port);
      sockets.push(socket);
      pingers.push({ name: target.name, description: target.description, socket });
    }
    const message = Buffer.alloc(options.messageBytes, 0x61);
    const samples = new Map<string, number[]>(pingers.map((pinger) => [pinger.name, []]));
    const warmupRounds = Math.ceil(options.warmup / options.batch);
    const rounds = warmupRounds + Math.ceil(options.roundTrips / options.batch);
    for (let round = 0; round < rounds; round += 1) {
      for (const pinger of interleavedOrder(pingers, round)) {
        for (let index = 0; index < options.batch; index += 1) {
          const started = process.hrtime.bigint();
          await pingPong(pinger.socket, message);
          const micros = Number(process.hrtime.bigint() - started) / 1000;
          if (round >= warmupRounds) samples.get(pinger.name)!.push(micros);
        }
      }
    }
    const direct = summarize(samples.get('direct')!);
    const round1 = (value: number): number => Math.round(value * 10) / 10;
    const paths: RelayFloorPath[] = pingers.map((pinger) => {
      const summary = summarize(samples.get(pinger.name)!);
      return {
        name: pinger.name,
        description: pinger.description,
        samples: summary.count,
        p50Micros: round1(summary.p50),
        p99Micros: round1(summary.p99),
        addedPerTraversalMicros: round1((summary.p50 - direct.p50) / TRAVERSALS_PER_ROUND_TRIP),
      };
    });
    options.log(`  relay floor: ${paths.map((entry) => `${entry.name} +${entry.addedPerTraversalMicros} µs`).join(', ')} per traversal`);
    return { roundTripsPerPath: options.roundTrips, warmupPerPath: options.warmup, messageBytes: options.messageBytes, paths };
  } finally {
    for (const socket of sockets) socket.destroy();
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

/**
 * The HAProxy configuration the benchmark compares nginx with (bench only; realtime-edge does not
 * deploy HAProxy). It mirrors what the nginx renderer produces for the same nodes, so a latency ratio
 * compares proxies, not settings:
 * - TLS: the same protocol versions, TLS 1.2 ciphers and curves (imported from nginx/conf.ts, the one
 *   place that decides them), no session tickets, TLS 1.3 suites left to OpenSSL's defaults as nginx does;
 * - http mode: round robin over the nodes, the WebSocket upgrade tunnelled with the same idle timeout
 *   as nginx's proxy_read_timeout, X-Forwarded-For like nginx's proxy headers;
 * - tcp mode: round robin, the same idle timeout as nginx's stream proxy_timeout;
 * - no access log on any listener (nginx's access log is written when a WebSocket closes, so it costs
 *   nothing per message; HAProxy's http log would be the same, but the bench leaves both quiet).
 * Pure: plain input to text, no I/O; `haproxy -c` checks it in test/bench-haproxy.test.ts.
 */
import { TLS_CIPHERS, TLS_CURVES, TLS_PROTOCOLS } from '../nginx/conf';

export interface HaproxyServer {
  readonly host: string;
  readonly port: number;
}

/** A listener; `tls` terminates TLS with the certificate of `HaproxySpec.certificatePemPath`. */
export interface HaproxyListener {
  readonly port: number;
  readonly tls: boolean;
}

export interface HaproxySpec {
  /** Address every listener binds, e.g. 127.0.0.1. */
  readonly listenAddress: string;
  /** Layer 7 listeners (mode http). */
  readonly http?: readonly HaproxyListener[];
  /** Layer 4 listeners (mode tcp). */
  readonly tcp?: readonly HaproxyListener[];
  readonly servers: readonly HaproxyServer[];
  /** One PEM file holding the certificate followed by its key (HAProxy's `crt` format). */
  readonly certificatePemPath?: string;
  readonly connectSeconds: number;
  /** Idle timeout of tunnels (WebSocket, tcp); above the backends' ping interval, as nginx's. */
  readonly idleSeconds: number;
  /** Global and per-listener connection limit. */
  readonly maxConnections: number;
  /** `nbthread`; HAProxy's default is one thread per CPU the process may run on. */
  readonly threads?: number;
  /** `pidfile`, so a test can find the process. */
  readonly pidFile?: string;
}

const HEALTH_PATH_NOTE = 'No health checks: nginx runs none on long-lived upstreams either (passive checks off).';

/** HAProxy names TLS versions `TLSv1.2`; nginx's list is the allowed range, lowest first. */
function minimumTlsVersion(): string {
  return TLS_PROTOCOLS[0];
}

function validate(spec: HaproxySpec): void {
  const listeners = [...(spec.http ?? []), ...(spec.tcp ?? [])];
  if (listeners.length === 0) throw new Error('haproxy spec: http and tcp are both empty; allowed: at least one listener');
  const ports = new Set<number>();
  for (const listener of listeners) {
    if (!Number.isInteger(listener.port) || listener.port < 1 || listener.port > 65535) {
      throw new Error(`haproxy spec: listener port ${listener.port}; allowed: an integer from 1 to 65535`);
    }
    if (ports.has(listener.port)) throw new Error(`haproxy spec: listener port ${listener.port} is used twice; allowed: one listener per port`);
    ports.add(listener.port);
    if (listener.tls && !spec.certificatePemPath) {
      throw new Error(`haproxy spec: listener ${listener.port} has tls but certificatePemPath is unset; allowed: a PEM path`);
    }
  }
  if (spec.servers.length === 0) throw new Error('haproxy spec: servers is empty; allowed: at least one server');
  if (!(spec.idleSeconds > spec.connectSeconds && spec.connectSeconds > 0)) {
    throw new Error(`haproxy spec: idleSeconds ${spec.idleSeconds} / connectSeconds ${spec.connectSeconds}; allowed: 0 < connect < idle`);
  }
  if (!Number.isInteger(spec.maxConnections) || spec.maxConnections < 1) {
    throw new Error(`haproxy spec: maxConnections ${spec.maxConnections}; allowed: a positive integer`);
  }
  if (spec.threads !== undefined && (!Number.isInteger(spec.threads) || spec.threads < 1)) {
    throw new Error(`haproxy spec: threads ${spec.threads}; allowed: a positive integer`);
  }
}

function bindLine(spec: HaproxySpec, listener: HaproxyListener, alpn: string | null): string {
  const tls = listener.tls ? ` ssl crt ${spec.certificatePemPath}${alpn ? ` alpn ${alpn}` : ''}` : '';
  return `    bind ${spec.listenAddress}:${listener.port}${tls}`;
}

function serverLines(spec: HaproxySpec, prefix: string): string[] {
  return spec.servers.map((server, index) => `    server ${prefix}${index} ${server.host}:${server.port}`);
}

export function renderHaproxyConfig(spec: HaproxySpec): string {
  validate(spec);
  const lines: string[] = [
    '# HAProxy config rendered by realtime-edge bench/haproxy.ts: the comparison proxy of the benchmark.',
    'global',
    `    maxconn ${spec.maxConnections}`,
    ...(spec.threads !== undefined ? [`    nbthread ${spec.threads}`] : []),
    ...(spec.pidFile ? [`    pidfile ${spec.pidFile}`] : []),
    '    # The TLS settings of nginx/conf.ts: same versions, TLS 1.2 ciphers and curves, no tickets.',
    `    ssl-default-bind-ciphers ${TLS_CIPHERS.join(':')}`,
    `    ssl-default-bind-options ssl-min-ver ${minimumTlsVersion()} no-tls-tickets`,
    '',
    'defaults',
    `    timeout connect ${spec.connectSeconds}s`,
    `    timeout client ${spec.idleSeconds}s`,
    `    timeout server ${spec.idleSeconds}s`,
    '    # An upgraded WebSocket is a tunnel: this replaces client/server timeouts once it is established.',
    `    timeout tunnel ${spec.idleSeconds}s`,
    '    # A refused connect goes to the other node, as nginx proxy_next_upstream error.',
    '    retries 1',
    '    option redispatch 1',
    `    # ${HEALTH_PATH_NOTE}`,
    '',
  ];
  const curves = `curves ${TLS_CURVES.join(':')}`;
  for (const listener of spec.http ?? []) {
    lines.push(
      `frontend http_${listener.port}`,
      '    mode http',
      `    maxconn ${spec.maxConnections}`,
      `${bindLine(spec, listener, 'http/1.1')}${listener.tls ? ` ${curves}` : ''}`,
      '    option forwardfor',
      '    default_backend nodes_http',
      '',
    );
  }
  if ((spec.http ?? []).length > 0) {
    lines.push('backend nodes_http', '    mode http', '    balance roundrobin', ...serverLines(spec, 'node'), '');
  }
  for (const listener of spec.tcp ?? []) {
    lines.push(
      `frontend tcp_${listener.port}`,
      '    mode tcp',
      `    maxconn ${spec.maxConnections}`,
      `${bindLine(spec, listener, null)}${listener.tls ? ` ${curves}` : ''}`,
      '    default_backend nodes_tcp',
      '',
    );
  }
  if ((spec.tcp ?? []).length > 0) {
    lines.push('backend nodes_tcp', '    mode tcp', '    balance roundrobin', ...serverLines(spec, 'node'), '');
  }
  return lines.join('\n');
}

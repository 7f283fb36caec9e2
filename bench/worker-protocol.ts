/**
 * Messages between the benchmark and its client processes (bench/client-worker.ts). A process here
 * may hold at most 20,000 open files (a hard limit even root cannot raise), so tens of thousands of
 * WebSocket clients are spread over several forked processes, each driven by these messages.
 * Times crossing processes are wall-clock milliseconds (`performance.timeOrigin + performance.now()`),
 * comparable between processes of one machine.
 */

export interface ConnectRequest {
  readonly op: 'connect';
  readonly url: string;
  readonly count: number;
  /** Source address of every socket (127.0.0.x): each address has its own ephemeral port range. */
  readonly localAddress?: string;
  /** PEM of the CA to trust for wss:// (the topology's self-signed certificate). */
  readonly ca?: string;
  /** Logins in flight at once. */
  readonly concurrency: number;
  /** Give up on one client after this long. */
  readonly loginTimeoutMs: number;
  /** deepstream client reconnect attempts; 0 makes a lost connection final (capacity counts it). */
  readonly maxReconnectAttempts?: number;
  /**
   * `full`: the deepstream client library (events, RPCs, reconnects). `idle`: the library's own socket
   * and wire format with only the login handshake and its 30 s heartbeat on top; a fraction of the
   * client's CPU and memory, so one machine can hold 20,000 of them. An idle client never reconnects:
   * a lost connection stays lost and is counted.
   */
  readonly kind: 'full' | 'idle';
}

export interface ConnectReply {
  readonly opened: number;
  readonly failed: number;
  /** A few distinct login errors, for the report when a step fails. */
  readonly errors: readonly string[];
  readonly elapsedMs: number;
}

export interface StatusReply {
  readonly total: number;
  /** Clients in state OPEN (logged in). */
  readonly open: number;
  /** Times a client left OPEN since the last `resetCounters`. */
  readonly drops: number;
  readonly rssBytes: number;
  /** CPU time of this process (user + system), microseconds. */
  readonly cpuMicros: number;
}

export interface SubscribeRequest {
  readonly op: 'subscribe';
  readonly event: string;
  /** Keep every client's received sequence numbers (failover counts each client's losses). */
  readonly perClient: boolean;
}

/** Payload of every event the benchmark publishes. */
export interface TickPayload {
  readonly seq: number;
  /** Wall-clock publish time, ms. */
  readonly sentAt: number;
}

/** Sent unprompted when every subscriber of this process has received event `seq`. */
export interface DeliveredNotice {
  readonly op: 'delivered';
  readonly seq: number;
}

export interface DeliveryReply {
  /** Publish-to-delivery times, ms, of every delivery since the last reset. */
  readonly latencies: readonly number[];
  readonly deliveries: number;
  /** Wall-clock time of the last delivery, ms. */
  readonly lastDeliveryAt: number;
}

/** Per client of a failover run: where it was, when it came back, what it missed. */
export interface FailoverClientReport {
  readonly node: string | null;
  /** Wall-clock ms at which it first left OPEN after the mark; null if it never did. */
  readonly lostAt: number | null;
  /** Wall-clock ms at which it was logged in again; null if it was not (yet). */
  readonly backAt: number | null;
  /** Events of `from..to` it did not receive. */
  readonly missed: number;
}

export type WorkerRequest =
  | (ConnectRequest & { readonly id: number })
  | { readonly op: 'status'; readonly id: number }
  | { readonly op: 'resetCounters'; readonly id: number }
  | (SubscribeRequest & { readonly id: number })
  | { readonly op: 'resetDeliveries'; readonly id: number }
  | { readonly op: 'collectDeliveries'; readonly id: number }
  | { readonly op: 'identify'; readonly id: number }
  | { readonly op: 'markFailover'; readonly id: number }
  | { readonly op: 'failoverReport'; readonly id: number; readonly from: number; readonly to: number }
  | { readonly op: 'closeAll'; readonly id: number };

export type WorkerReply =
  | { readonly op: 'reply'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly op: 'reply'; readonly id: number; readonly ok: false; readonly error: string }
  | DeliveredNotice
  | { readonly op: 'ready' };

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

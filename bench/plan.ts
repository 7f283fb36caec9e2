/**
 * The sizes of a benchmark run and the nginx settings the capacity runs use. Full: the counts
 * issue 5 asks for. Quick (`--quick`, the CI smoke check): the same code paths, small and short.
 */
import type { NginxSpec } from '../nginx/spec';
import { deepstreamBackend } from '../servers/deepstream';

/** Sizes of one run. Full: the counts issue 5 asks for. Quick: the same code paths, small. */
export interface Plan {
  readonly latency: {
    readonly roundTrips: number;
    readonly warmup: number;
    readonly batch: number;
    /** Caller/provider pairs per path, on their own connections (see LatencyOptions). */
    readonly pairsPerPath: number;
    /** Extra, untimed round trips per profiled proxy under `strace -c`, and as many under `perf
     * record`; 0 skips both profiles. */
    readonly proxyProfileRoundTrips: number;
    /** Round trips per path with caller and provider on different nodes (after half the warm-up). */
    readonly acrossNodesRoundTrips: number;
    /** Round trips per path of the bare TCP ping-pong (bench/relay-floor.ts). */
    readonly relayFloorRoundTrips: number;
  };
  readonly fanout: { readonly subscribers: number; readonly events: number; readonly window: number; readonly rounds: number; readonly workersPerPath: number };
  readonly failover: { readonly clients: number; readonly runs: number; readonly tickIntervalMs: number };
  readonly capacity: {
    readonly steps: readonly number[];
    readonly tlsSteps: readonly number[];
    readonly streamSteps: readonly number[];
    readonly seedSteps: readonly number[];
    readonly holdSeconds: number;
    readonly clientProcesses: number;
    /** Idle connections per listener for the memory-per-connection probe, and how long memory
     * settles before and after them (the last logins' transient buffers being released). */
    readonly memoryProbeConnections: number;
    readonly memoryProbeSettleMs: number;
    /** Idle connections per listener of the heap profile (bench/heap-profile.ts), which runs when the
     * tooling phase built nginx; allocation sizes do not vary, so a few hundred suffice. */
    readonly heapProfileConnections: number;
  };
  readonly tooling: { readonly mockTests: boolean; readonly nginxBuild: boolean };
  /** The run exits non-zero when it takes longer than this (a hung phase). */
  readonly watchdogMinutes: number;
}

export const FULL: Plan = {
  // 5,000 rather than the 2,000 asked for: the p50s of nginx and HAProxy sit within microseconds of
  // each other, and more samples narrow the noise their order is judged against.
  latency: { roundTrips: 5000, warmup: 500, batch: 5, pairsPerPath: 4, proxyProfileRoundTrips: 600, acrossNodesRoundTrips: 2000, relayFloorRoundTrips: 5000 },
  fanout: { subscribers: 1000, events: 120, window: 8, rounds: 3, workersPerPath: 2 },
  failover: { clients: 200, runs: 3, tickIntervalMs: 10 },
  capacity: {
    steps: [5000, 10_000, 15_000, 20_000],
    // The other listeners in two steps: the full run stays well under 15 minutes.
    tlsSteps: [10_000, 20_000],
    streamSteps: [10_000, 20_000],
    seedSteps: [250, 500, 750, 1000],
    // One heartbeat period: every client pings once and the server's silence check runs.
    holdSeconds: deepstreamBackend.profile.pingIntervalSeconds,
    // 20,000 connections at up to 5,000 per process keeps each under the 20,000 open-file limit.
    clientProcesses: 4,
    memoryProbeConnections: 3000,
    memoryProbeSettleMs: 2000,
    heapProfileConnections: 400,
  },
  tooling: { mockTests: true, nginxBuild: true },
  watchdogMinutes: 30,
};

export const QUICK: Plan = {
  latency: { roundTrips: 200, warmup: 50, batch: 5, pairsPerPath: 2, proxyProfileRoundTrips: 0, acrossNodesRoundTrips: 100, relayFloorRoundTrips: 200 },
  fanout: { subscribers: 100, events: 20, window: 4, rounds: 1, workersPerPath: 1 },
  failover: { clients: 30, runs: 1, tickIntervalMs: 10 },
  capacity: { steps: [200, 400], tlsSteps: [200], streamSteps: [200], seedSteps: [250, 750], holdSeconds: 3, clientProcesses: 2, memoryProbeConnections: 100, memoryProbeSettleMs: 300, heapProfileConnections: 50 },
  tooling: { mockTests: false, nginxBuild: false },
  watchdogMinutes: 5,
};

type CapacitySettings = Required<Pick<NginxSpec, 'maxConnections' | 'workerProcesses' | 'reuseport'>>;

/** nginx settings for 20,000 clients: 40,000 proxied descriptors over 4 workers with reuseport keeps
 * each worker's worker_rlimit_nofile (13,780) under the 20,000 a process may open here. */
export const CAPACITY_NGINX: CapacitySettings = { maxConnections: 20_000, workerProcesses: 4, reuseport: true };
/** The seed guides' `worker_processes 1; worker_connections 1024;`, expressed as renderer input:
 * worker_connections = 2 x 384 clients + 256 reserve = 1024; the guides had no reuseport. */
export const SEED_NGINX: CapacitySettings = { maxConnections: 384, workerProcesses: 1, reuseport: false };

/**
 * The shape of bench/results.json: every figure of one benchmark run, which bench/report.ts turns
 * into the tables of bench/RESULTS.md.
 */
import type { CpuProfileSplit } from './cpu-profile';

export interface MachineInfo {
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memoryMegabytes: number;
  readonly kernel: string;
  /** Load average over 1 minute when the run started (other work on the machine skews figures). */
  readonly loadAverageAtStart: number;
  readonly openFileLimit: number | null;
}

export interface Versions {
  readonly node: string;
  readonly nginx: string;
  readonly haproxy: string;
  readonly deepstream: string;
  readonly deepstreamClient: string;
  readonly redis: string;
  readonly openssl: string;
}

/** CPU seconds each component used during one phase, and its share of the machine. */
export interface CpuProfile {
  readonly wallSeconds: number;
  /** Component name -> CPU seconds (user + system). */
  readonly seconds: Readonly<Record<string, number>>;
  /** Component name -> percent of all cores over the phase. */
  readonly percentOfMachine: Readonly<Record<string, number>>;
  /** Component name -> context switches (wake-ups) over the phase; absent for the bench process. */
  readonly contextSwitches?: Readonly<Record<string, number>>;
  /** Busy share of the whole machine over the phase (/proc/stat), other users' work included. */
  readonly machineBusyPercent?: number;
}

export interface LatencyPath {
  readonly name: string;
  readonly description: string;
  readonly samples: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly ratioP50: number;
  readonly ratioP99: number;
  /** |p50 of even rounds - p50 of odd rounds|: differences between paths below this are noise. */
  readonly p50SplitHalfSpreadMs: number;
  /** Anchor range of the p50 ratio measured by hand on this machine (issue 5), when there is one. */
  readonly anchor?: string;
}

/** One path of the bare TCP ping-pong (bench/relay-floor.ts). */
export interface RelayFloorPath {
  readonly name: string;
  readonly description: string;
  readonly samples: number;
  readonly p50Micros: number;
  readonly p99Micros: number;
  /** (p50 - direct p50) / 2: what one traversal of the relay adds. */
  readonly addedPerTraversalMicros: number;
}

export interface RelayFloorResults {
  readonly roundTripsPerPath: number;
  readonly warmupPerPath: number;
  readonly messageBytes: number;
  readonly paths: readonly RelayFloorPath[];
}

export interface LatencyResults {
  readonly roundTripsPerPath: number;
  readonly warmupPerPath: number;
  readonly batch: number;
  /** Caller/provider pairs per path (absent in runs before there were several: one). */
  readonly pairsPerPath?: number;
  readonly paths: readonly LatencyPath[];
  readonly cpu: CpuProfile;
  /** Proxy process -> CPU microseconds per WebSocket message it relayed (4 per round trip). */
  readonly proxyCpuMicrosPerMessage: Readonly<Record<string, number>>;
  /** Path -> CPU µs its relay processes spent per message of that path, read from schedstat before
   * and after each measured visit, when only that path crosses them (absent in runs before it existed). */
  readonly proxyCpuMicrosPerMessageOfPath?: Readonly<Record<string, number>>;
  /** Path -> the proxy component (CPU profile name) serving it. */
  readonly proxyComponentOfPath: Readonly<Record<string, string>>;
  /** Proxy process -> context switches per message it relayed. */
  readonly proxyContextSwitchesPerMessage: Readonly<Record<string, number>>;
  /** Path -> syscall -> calls per relayed message (`strace -c` on the proxy; full runs only). */
  readonly syscallsPerMessage: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Path -> where the proxy's CPU went while relaying it (`perf record`; full runs with perf only;
   * absent in runs before it existed). */
  readonly proxyCpuSplits?: Readonly<Record<string, CpuProfileSplit>>;
  /** The same paths with caller and provider on different nodes (absent in runs before it existed). */
  readonly acrossNodes?: {
    readonly providerNode: string;
    readonly callerNode: string;
    readonly roundTripsPerPath: number;
    readonly paths: readonly LatencyPath[];
  };
  /** The same machine's cost of one traversal of a bare TCP relay (absent in runs before it existed). */
  readonly relayFloor?: RelayFloorResults;
}

export interface NginxSettings {
  readonly workerProcesses: string;
  readonly workerConnections: number;
  readonly workerRlimitNofile: number;
  readonly reuseport: boolean;
}

export interface CapacityStep {
  readonly target: number;
  readonly opened: number;
  readonly failed: number;
  /** Logged in at the end of the hold. */
  readonly openAtEnd: number;
  /** Connections lost during the hold. */
  readonly drops: number;
  readonly heldFully: boolean;
  readonly rampSeconds: number;
  readonly holdSeconds: number;
  readonly nginxRssMegabytes: number;
  readonly nginxPssMegabytes: number;
  /** (nginx RSS now - nginx RSS with no client) per 1,000 connections held. */
  readonly nginxRssPer1000Megabytes: number;
  /** Total nginx RSS per 1,000 connections held (baseline included). */
  readonly nginxTotalRssPer1000Megabytes: number;
  readonly nginxMaxWorkerFds: number;
  readonly nodeRssMegabytes: readonly number[];
  /** Each node's RSS growth above its own idle RSS per 1,000 of the connections it holds (its open
   * descriptors above idle); null for a node holding none. Absent in runs before it existed: the
   * report computes it from the fields here (nodeRssPer1000 of capacity.ts). */
  readonly nodeRssAboveIdlePer1000Megabytes?: ReadonlyArray<number | null>;
  /** Open descriptors of each node (one per client connection, plus its idle ones). */
  readonly nodeFds: readonly number[];
  readonly clientErrors: readonly string[];
  /** nginx error log lines written during the step (e.g. "worker_connections are not enough"). */
  readonly nginxErrors: readonly string[];
}

export interface CapacityRun {
  readonly name: string;
  readonly description: string;
  readonly listener: string;
  readonly nginx: NginxSettings;
  readonly nginxBaselineRssMegabytes: number;
  readonly nodeBaselineRssMegabytes: readonly number[];
  /** Each node's open descriptors before the first step (absent in runs before it was recorded). */
  readonly nodeBaselineFds?: readonly number[];
  readonly steps: readonly CapacityStep[];
  /** Highest step every connection of which stayed logged in through its hold; 0 if none. */
  readonly highestHeld: number;
  readonly cpu: CpuProfile;
}

/** Memory an idle connection costs a proxy, by proxy and mode (listeners at their default settings). */
export interface MemoryPerConnection {
  readonly path: string;
  readonly description: string;
  /** Connections that logged in: the divisor of the per-connection figures. */
  readonly connections: number;
  /** Connections asked for (absent in runs before it was recorded). */
  readonly requested?: number;
  /** Connections that failed to log in, and the first error; their memory is in the growth too, so
   * a row with failures is approximate (absent in runs before it was recorded). */
  readonly failed?: number;
  readonly firstError?: string;
  readonly rssKilobytesPerConnection: number;
  readonly pssKilobytesPerConnection: number;
}

/** One allocation site's growth per idle connection in a heap profile (bench/heap-profile.ts). */
export interface HeapSite {
  /** The first frame that is not an allocator wrapper: `function (file.c:line)`, or
   * `library: function (from ngx_caller)` inside a library without symbols. */
  readonly site: string;
  /** An object of its own, a new pool, or a new block of an existing pool. */
  readonly allocation: 'object' | 'new pool' | 'pool block';
  readonly bytes: number;
  /** The directive that sets this allocation's size; null where nginx's code does. */
  readonly directive: string | null;
  /** The library that allocated it (libssl, libcrypto); null for nginx's own code. */
  readonly library: string | null;
}

/** Heap profile of one nginx listener under idle connections (valgrind massif, the built nginx). */
export interface HeapProfile {
  readonly path: string;
  readonly description: string;
  /** nginx version and where the binary came from. */
  readonly nginx: string;
  readonly connections: number;
  readonly failed: number;
  readonly heapBytesPerConnection: number;
  readonly mallocOverheadBytesPerConnection: number;
  /** Per-connection growth by allocation site, largest first. */
  readonly sites: readonly HeapSite[];
}

export interface CapacityResults {
  readonly holdSeconds: number;
  readonly clientProcesses: number;
  readonly memoryPerConnection: readonly MemoryPerConnection[];
  /** Absent in runs before it existed, and where no built nginx was available (--quick, --only). */
  readonly heapProfiles?: readonly HeapProfile[];
  /** Why there is no heap profile, where there is none. */
  readonly heapProfileSkipped?: string;
  readonly runs: readonly CapacityRun[];
}

export interface FanoutRun {
  readonly path: string;
  readonly round: number;
  readonly deliveries: number;
  readonly seconds: number;
  readonly deliveriesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface FanoutPath {
  readonly name: string;
  readonly description: string;
  /** Medians over the rounds. */
  readonly deliveriesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly ratioToDirect: number;
  /** CPU of every measured process per delivery, and of the proxy alone. */
  readonly cpuMicrosPerDelivery: number;
  readonly proxyCpuMicrosPerDelivery: number;
  /** direct's CPU per delivery / this path's: the ratio a run bound by the shared cores can reach. */
  readonly cpuBoundCeiling: number;
}

export interface FanoutResults {
  readonly subscribers: number;
  readonly subscribersPerNode: Readonly<Record<string, number>>;
  readonly eventsPerRun: number;
  readonly window: number;
  readonly rounds: number;
  readonly paths: readonly FanoutPath[];
  readonly runs: readonly FanoutRun[];
  readonly cpu: Readonly<Record<string, CpuProfile>>;
}

export interface FailoverRun {
  readonly run: number;
  readonly clients: number;
  readonly affected: number;
  readonly killedNode: string;
  /** From kill -9 until the last affected client was logged in again. */
  readonly allBackMs: number | null;
  readonly medianClientBackMs: number | null;
  /** From kill -9 until the median and the last affected client saw its connection close: how long
   * the loss took to be noticed (absent in runs before it was recorded). */
  readonly medianClientLostMs?: number | null;
  readonly lastClientLostMs?: number | null;
  readonly notBack: number;
  readonly eventsPublished: number;
  readonly lostPerAffectedMean: number;
  readonly lostPerAffectedMax: number;
  readonly lostByUnaffected: number;
  /** Affected clients that came back on the surviving node. */
  readonly movedToSurvivor: number;
  /** CPU of every process from the kill until every client was back (polled every 50 ms). */
  readonly recoveryCpu: CpuProfile;
}

export interface FailoverResults {
  readonly clientsPerRun: number;
  readonly tickIntervalMs: number;
  readonly runs: readonly FailoverRun[];
  readonly medianAllBackMs: number | null;
}

export interface ToolTiming {
  readonly name: string;
  readonly command: string;
  readonly seconds: number | null;
  readonly ok: boolean;
  readonly note: string;
}

export interface TargetVerdict {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | null;
  readonly note: string;
  /** For a missed target: what limits it, from this run's profile figures. */
  readonly limit: string;
}

export interface BenchResults {
  readonly quick: boolean;
  readonly date: string;
  readonly command: string;
  readonly durationSeconds: number;
  readonly machine: MachineInfo;
  readonly versions: Versions;
  readonly latency?: LatencyResults;
  readonly capacity?: CapacityResults;
  readonly fanout?: FanoutResults;
  readonly failover?: FailoverResults;
  readonly tooling?: readonly ToolTiming[];
  readonly targets: readonly TargetVerdict[];
  /** Phases that failed: a figure missing from the report says why here. */
  readonly errors: readonly string[];
}

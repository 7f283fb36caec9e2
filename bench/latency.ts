/**
 * RPC round-trip latency per path. Client A provides an RPC, client B makes it; both connect through
 * the path under test, so every round trip crosses the path four times (B to node, node to A, A to
 * node, node to B). Pinned to one node, a round trip never touches Redis and the path's cost is the
 * largest share it can be; with A and B on different nodes (the common case in a cluster) Redis
 * carries the call between the nodes twice. (A client's emit to its own subscription is answered
 * locally and never touches the network, so it cannot measure a path.)
 * Paths are interleaved: each round visits every path for a small batch, in an order rotated per
 * round, so machine noise lands on all paths alike; warm-up rounds are discarded.
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeepstreamClient } from '@deepstream/client';
import { closeClient, loginClient, nodeOf, withTimeout } from '../local/node-identity';
import { sleep } from '../local/readiness';
import { findExecutable } from '../local/system';
import { profileWhile, type CpuProfileSplit } from './cpu-profile';
import { threadCpuNanoseconds } from './procfs';
import type { CpuProfile, LatencyPath } from './results';
import type { BenchPath } from './setup';
import { interleavedOrder, quantile, ratio, summarize, type Summary } from './stats';

export interface LatencyOptions {
  readonly paths: readonly BenchPath[];
  /** Measured round trips per path (after warm-up). */
  readonly roundTrips: number;
  readonly warmup: number;
  /** Round trips per path per visit. */
  readonly batch: number;
  /** Caller/provider pairs per path, each on its own connections; visits take them in turn. Which
   * worker (nginx) or thread (HAProxy) each connection lands on, and whether a pair's two
   * connections share one, changes a pair's latency for as long as it lives: several pairs average
   * that placement out instead of letting one draw decide a path. */
  readonly pairsPerPath: number;
  readonly ca: string;
  /** serverName of the node each pair's provider and caller are pinned to (the same one, or two). */
  readonly placement: LatencyPlacement;
  readonly anchors?: Readonly<Record<string, string>>;
  /** Paths whose proxy processes are traced over extra round trips after the measurement, with
   * `strace -c` (system calls) and then `perf record` (where their CPU goes). Tracing slows what it
   * traces, so those round trips are not timed. */
  readonly proxyProfiles?: ReadonlyArray<{ readonly path: string; readonly pids: () => readonly number[] }>;
  readonly proxyProfileRoundTrips?: number;
  /** Folder for perf's data files. */
  readonly profileDir?: string;
  /** The relay processes of a path (none for direct): their CPU time is read before and after each
   * measured visit, when only that path's round trips cross them, for the path's own CPU figure. */
  readonly proxyPidsOf?: (path: string) => readonly number[] | undefined;
  /** Starts a CPU meter; run around the measured loop only, not the connection setup. */
  readonly startMeter: () => { stop(): CpuProfile };
  readonly log: (line: string) => void;
}

/** Messages through the proxy per RPC round trip: caller to node, node to provider and back. */
export const TRAVERSALS_PER_ROUND_TRIP = 4;

/** What one traversal of a path adds at p50 over direct, in whole µs. */
export function addedPerTraversalMicros(pathP50Ms: number, directP50Ms: number): number {
  return Math.round(((pathP50Ms - directP50Ms) / TRAVERSALS_PER_ROUND_TRIP) * 1000);
}

/** The latency paths one proxy process relays: its CPU and context switches per relayed message
 * are averaged over all of them (the process is metered as a whole over the phase). */
export function pathsOfProxy(proxyComponentOfPath: Readonly<Record<string, string>>, component: string): string[] {
  return Object.entries(proxyComponentOfPath)
    .filter(([, served]) => served === component)
    .map(([path]) => path);
}

export interface LatencyPlacement {
  readonly provider: string;
  readonly caller: string;
}

interface Pair {
  readonly path: BenchPath;
  readonly rpcName: string;
  readonly provider: DeepstreamClient;
  readonly caller: DeepstreamClient;
}

/** A logged-in client on `node`: nginx and HAProxy balance round robin, so retry until it lands there. */
async function connectOnNode(path: BenchPath, node: string, ca: string): Promise<DeepstreamClient> {
  const url = path.urlOfNode?.[node] ?? path.url;
  for (let attempt = 1; attempt <= 30; attempt += 1) {
    const client = await loginClient(url, { socketOptions: { ca } });
    try {
      if ((await nodeOf(client)) === node) return client;
    } catch {
      // the identity RPC is not answered yet: try another connection
    }
    await closeClient(client);
  }
  throw new Error(`could not get a client on ${node} through ${url} in 30 connections`);
}

async function openPair(path: BenchPath, index: number, placement: LatencyPlacement, ca: string): Promise<Pair> {
  // One RPC name per pair and placement: deepstream would otherwise spread a pair's calls over every provider.
  const rpcName = `bench/latency/${placement.provider}/${placement.caller}/${path.name}/${index}`;
  const provider = await connectOnNode(path, placement.provider, ca);
  const caller = await connectOnNode(path, placement.caller, ca);
  provider.rpc.provide(rpcName, (data, response) => response.send(data));
  // `provide` registers asynchronously: the pair is ready once a call is answered.
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await withTimeout(caller.rpc.make(rpcName, 0), 2000, `first RPC on ${path.name}`);
      return { path, rpcName, provider, caller };
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

export interface LatencyMeasurement {
  readonly paths: LatencyPath[];
  /** Round trips made on each path, warm-up included (what a proxy relayed while metered). */
  readonly totalRoundTripsPerPath: number;
  readonly cpu: CpuProfile;
  /** Path -> syscall -> calls per relayed message, from `strace -c` on the proxy's processes. */
  readonly syscallsPerMessage: Record<string, Record<string, number>>;
  /** Path -> where the proxy's CPU went (perf), for the paths profiled where perf works. */
  readonly cpuSplits: Record<string, CpuProfileSplit>;
  /** Path -> CPU µs its relay processes spent per message of that path (measured visits only). */
  readonly proxyCpuMicrosPerMessageOfPath: Record<string, number>;
}

/** Parses the table of `strace -c`: syscall name -> calls. */
export function parseStraceSummary(text: string): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const line of text.split('\n')) {
    // % time  seconds  usecs/call  calls  [errors]  syscall
    const match = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line);
    if (match && match[2] !== 'total') calls[match[2]!] = Number(match[1]);
  }
  return calls;
}

async function makeUntimedRoundTrips(pair: Pair, roundTrips: number): Promise<void> {
  for (let index = 0; index < roundTrips; index += 1) {
    await withTimeout(pair.caller.rpc.make(pair.rpcName, index), 5000, `traced RPC on ${pair.path.name}`);
  }
}

/** `strace -c` on the proxy's processes while `roundTrips` RPCs cross it: syscalls per relayed message. */
async function traceSyscalls(pair: Pair, pids: readonly number[], roundTrips: number): Promise<Record<string, number>> {
  const strace = spawn('strace', ['-c', '-f', ...pids.flatMap((pid) => ['-p', String(pid)])], { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve, reject) => {
    strace.once('error', reject);
    strace.once('exit', () => resolve());
  });
  strace.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  try {
    // strace reports each attached process; the trace counts only once all are attached.
    const deadline = Date.now() + 5000;
    while ((output.match(/attached/g) ?? []).length < pids.length) {
      if (Date.now() > deadline || strace.exitCode !== null) throw new Error(`strace did not attach to ${pids.join(', ')}: ${output.trim()}`);
      await sleep(20);
    }
    await makeUntimedRoundTrips(pair, roundTrips);
  } finally {
    strace.kill('SIGINT');
    await exited;
  }
  const messages = roundTrips * TRAVERSALS_PER_ROUND_TRIP;
  const perMessage: Record<string, number> = {};
  for (const [syscall, calls] of Object.entries(parseStraceSummary(output))) {
    perMessage[syscall] = Math.round((calls / messages) * 100) / 100;
  }
  return perMessage;
}

/** |p50 of one half - p50 of the other|, ms; 0 when a half is empty (a single measured round). */
export function splitHalfSpread([even, odd]: readonly [readonly number[], readonly number[]]): number {
  if (even.length === 0 || odd.length === 0) return 0;
  return Math.round(Math.abs(quantile(even, 0.5) - quantile(odd, 0.5)) * 1000) / 1000;
}

/** One path's round-trip times (ms), by round, warm-up rounds included. */
export interface RecordedPath {
  readonly name: string;
  readonly rounds: ReadonlyArray<readonly number[] | undefined>;
}

export interface PathFigures {
  readonly name: string;
  readonly summary: Summary;
  /** p50 and p99 over direct's p50 and p99 (the first path's when there is no direct). */
  readonly ratioP50: number;
  readonly ratioP99: number;
  readonly p50SplitHalfSpreadMs: number;
}

/**
 * The figures of each path from every round it made: the first `warmupRounds` rounds dropped, the
 * rest summarized, each path's p50 and p99 divided by direct's, and the p50s of even and odd rounds
 * compared (the run's noise).
 */
export function pathFigures(recorded: readonly RecordedPath[], warmupRounds: number): PathFigures[] {
  const measured = recorded.map((path) => {
    const halves: [number[], number[]] = [[], []];
    path.rounds.forEach((samples, round) => {
      if (round >= warmupRounds && samples) halves[round % 2]!.push(...samples);
    });
    const all = path.rounds.slice(warmupRounds).flatMap((samples) => samples ?? []);
    return { name: path.name, summary: summarize(all), halves };
  });
  const direct = (measured.find((path) => path.name === 'direct') ?? measured[0]!).summary;
  return measured.map(({ name, summary, halves }) => ({
    name,
    summary,
    ratioP50: ratio(summary.p50, direct.p50),
    ratioP99: ratio(summary.p99, direct.p99),
    p50SplitHalfSpreadMs: splitHalfSpread(halves),
  }));
}

export async function measureLatency(options: LatencyOptions): Promise<LatencyMeasurement> {
  const pairs: Pair[] = [];
  try {
    const pairsOf = new Map<string, Pair[]>();
    for (const path of options.paths) {
      const ofPath: Pair[] = [];
      for (let index = 0; index < options.pairsPerPath; index += 1) {
        const pair = await openPair(path, index, options.placement, options.ca);
        pairs.push(pair);
        ofPath.push(pair);
      }
      pairsOf.set(path.name, ofPath);
      options.log(`  latency pairs ready: ${path.name} (${ofPath.length})`);
    }
    const firstPairs = options.paths.map((path) => pairsOf.get(path.name)![0]!);
    // Every round's samples, warm-up included; pathFigures drops the warm-up rounds.
    const byRound = new Map<string, number[][]>(options.paths.map((path) => [path.name, []]));
    // Each path's relay processes, and the nanoseconds they ran during that path's measured visits.
    const relayPids = new Map(options.paths.flatMap((path) => {
      const pids = options.proxyPidsOf?.(path.name);
      return pids && pids.length > 0 ? [[path.name, pids] as const] : [];
    }));
    const relayNanoseconds = new Map<string, number>();
    const warmupRounds = Math.ceil(options.warmup / options.batch);
    const rounds = warmupRounds + Math.ceil(options.roundTrips / options.batch);
    const meter = options.startMeter();
    for (let round = 0; round < rounds; round += 1) {
      for (const first of interleavedOrder(firstPairs, round)) {
        const ofPath = pairsOf.get(first.path.name)!;
        const pair = ofPath[round % ofPath.length]!;
        const into: number[] = [];
        byRound.get(pair.path.name)![round] = into;
        const pids = round >= warmupRounds ? relayPids.get(pair.path.name) : undefined;
        const relayBefore = pids ? threadCpuNanoseconds(pids) : 0;
        for (let index = 0; index < options.batch; index += 1) {
          const started = process.hrtime.bigint();
          await withTimeout(pair.caller.rpc.make(pair.rpcName, index), 5000, `RPC on ${pair.path.name}`);
          into.push(Number(process.hrtime.bigint() - started) / 1e6);
        }
        if (pids) {
          const spent = threadCpuNanoseconds(pids) - relayBefore;
          relayNanoseconds.set(pair.path.name, (relayNanoseconds.get(pair.path.name) ?? 0) + spent);
        }
      }
    }
    const cpu = meter.stop();
    const figures = pathFigures(
      options.paths.map((path) => ({ name: path.name, rounds: byRound.get(path.name)! })),
      warmupRounds,
    );
    const round3 = (value: number): number => Math.round(value * 1000) / 1000;
    const paths = figures.map((figure, index) => ({
      name: figure.name,
      description: options.paths[index]!.description,
      samples: figure.summary.count,
      p50Ms: round3(figure.summary.p50),
      p90Ms: round3(figure.summary.p90),
      p99Ms: round3(figure.summary.p99),
      meanMs: round3(figure.summary.mean),
      ratioP50: figure.ratioP50,
      ratioP99: figure.ratioP99,
      p50SplitHalfSpreadMs: figure.p50SplitHalfSpreadMs,
      ...(options.anchors?.[figure.name] ? { anchor: options.anchors[figure.name] } : {}),
    }));
    const syscallsPerMessage: Record<string, Record<string, number>> = {};
    const cpuSplits: Record<string, CpuProfileSplit> = {};
    const profileRoundTrips = options.proxyProfileRoundTrips ?? 500;
    const straceInstalled = findExecutable('strace') !== undefined;
    for (const profile of options.proxyProfiles ?? []) {
      const pair = pairsOf.get(profile.path)?.[0];
      if (!pair) continue;
      if (straceInstalled) {
        syscallsPerMessage[profile.path] = await traceSyscalls(pair, profile.pids(), profileRoundTrips);
        options.log(`  syscalls per relayed message via ${profile.path}: ${JSON.stringify(syscallsPerMessage[profile.path])}`);
      } else {
        options.log(`  no system-call profile via ${profile.path}: strace is not installed`);
      }
      try {
        const outFile = join(options.profileDir ?? tmpdir(), `perf-${profile.path}-${process.pid}.data`);
        const split = await profileWhile(profile.pids(), outFile, () => makeUntimedRoundTrips(pair, profileRoundTrips));
        if (split) {
          cpuSplits[profile.path] = split;
          options.log(`  CPU of the proxy via ${profile.path} (perf, ${split.samples} samples): ${JSON.stringify(split.percent)}`);
        } else {
          options.log(`  no CPU profile via ${profile.path}: perf is not installed (Debian: linux-perf)`);
        }
      } catch (error) {
        options.log(`  no CPU profile via ${profile.path}: ${(error as Error).message}`);
      }
    }
    const proxyCpuMicrosPerMessageOfPath: Record<string, number> = {};
    for (const figure of figures) {
      const nanoseconds = relayNanoseconds.get(figure.name);
      if (nanoseconds === undefined) continue;
      const messages = figure.summary.count * TRAVERSALS_PER_ROUND_TRIP;
      proxyCpuMicrosPerMessageOfPath[figure.name] = Math.round((nanoseconds / 1000 / messages) * 10) / 10;
    }
    return { paths, totalRoundTripsPerPath: rounds * options.batch, cpu, syscallsPerMessage, cpuSplits, proxyCpuMicrosPerMessageOfPath };
  } finally {
    await Promise.all(pairs.flatMap((pair) => [closeClient(pair.provider), closeClient(pair.caller)]));
  }
}

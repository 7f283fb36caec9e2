/**
 * Failover: clients logged in through nginx, subscribed to a steady tick published straight to the
 * node that survives; kill -9 of the other node; the time until every client it held is logged in
 * again (through nginx, now on the survivor) and the ticks each lost meanwhile. deepstream events are
 * not replayed after a reconnect, so an affected client loses what was published during its outage.
 */
import type { DeepstreamClient } from '@deepstream/client';
import type { Topology } from '../local/topology';
import { closeClient, loginClient } from '../local/node-identity';
import { sleep } from '../local/readiness';
import type { ClientWorker } from './client-pool';
import { startCpuMeter } from './procfs';
import type { FailoverResults, FailoverRun } from './results';
import { median, spread } from './stats';
import { wallClockMs, type TickPayload } from './worker-protocol';

export interface FailoverOptions {
  readonly topology: Topology;
  /** Clients connect here (the topology's TLS http listener: what a deployment serves). */
  readonly url: string;
  readonly ca: string;
  readonly clients: number;
  readonly runs: number;
  readonly tickIntervalMs: number;
  readonly workers: readonly ClientWorker[];
  readonly localAddresses: readonly string[];
  readonly components: Readonly<Record<string, () => readonly number[]>>;
  readonly nproc: number;
  readonly log: (line: string) => void;
}

const RECOVERY_TIMEOUT_MS = 30_000;

async function statusTotals(workers: readonly ClientWorker[]): Promise<{ open: number; total: number; drops: number }> {
  const statuses = await Promise.all(workers.map((worker) => worker.status()));
  return statuses.reduce(
    (sum, status) => ({ open: sum.open + status.open, total: sum.total + status.total, drops: sum.drops + status.drops }),
    { open: 0, total: 0, drops: 0 },
  );
}

/** Publishes one tick every `intervalMs` until stopped; returns the last sequence number sent. */
function startTicks(publisher: DeepstreamClient, event: string, intervalMs: number) {
  let seq = 0;
  const timer = setInterval(() => {
    seq += 1;
    const payload: TickPayload = { seq, sentAt: wallClockMs() };
    publisher.event.emit(event, payload as unknown as Parameters<DeepstreamClient['event']['emit']>[1]);
  }, intervalMs);
  return {
    current: () => seq,
    stop: () => {
      clearInterval(timer);
      return seq;
    },
  };
}

async function runOnce(options: FailoverOptions, run: number): Promise<FailoverRun> {
  const { topology, workers } = options;
  const victimIndex = (run + 1) % topology.nodes.length;
  const victim = topology.nodes[victimIndex]!;
  const survivor = topology.nodes[(victimIndex + 1) % topology.nodes.length]!;
  const event = `bench/failover/${run}`;
  const perWorker = spread(options.clients, workers.length);
  await Promise.all(
    workers.map(async (worker, index) => {
      const reply = await worker.connect({
        url: options.url,
        count: perWorker[index]!,
        ca: options.ca,
        localAddress: options.localAddresses[index]!,
        concurrency: 32,
        loginTimeoutMs: 20_000,
        kind: 'full',
      });
      if (reply.failed > 0) throw new Error(`failover: ${reply.failed} clients failed to log in: ${reply.errors.join('; ')}`);
      await worker.subscribe({ event, perClient: true });
    }),
  );
  const nodesBefore = (await Promise.all(workers.map((worker) => worker.identify()))).flat();
  const publisher = await loginClient(survivor.directUrl, { maxReconnectAttempts: 0 });
  const ticks = startTicks(publisher, event, options.tickIntervalMs);
  try {
    // Wait until every subscriber receives ticks (a tick fully delivered in every process).
    const firstFull = await new Promise<number>((resolve, reject) => {
      const seen = new Map<number, number>();
      const stops = workers.map((worker) =>
        worker.onDelivered((seq) => {
          const count = (seen.get(seq) ?? 0) + 1;
          seen.set(seq, count);
          if (count === workers.length) {
            for (const stop of stops) stop();
            clearTimeout(timer);
            resolve(seq);
          }
        }),
      );
      const timer = setTimeout(() => {
        for (const stop of stops) stop();
        reject(new Error('failover: subscriptions never became active'));
      }, 20_000);
    });
    const onVictim = nodesBefore.filter((node) => node === victim.name).length;
    await Promise.all(workers.map((worker) => Promise.all([worker.markFailover(), worker.resetCounters()])));
    await sleep(200);
    const meter = startCpuMeter(options.components, options.nproc);
    const killedAt = wallClockMs();
    // kill() sends SIGKILL at once, then waits for the exit and closes the node's identity client;
    // recovery is watched meanwhile, so that bookkeeping does not stretch the CPU window.
    const killed = victim.kill('SIGKILL');
    const deadline = Date.now() + RECOVERY_TIMEOUT_MS;
    // Poll until the victim's clients have noticed the loss and then until everyone is back; the
    // per-client times come from the client processes.
    for (;;) {
      const totals = await statusTotals(workers);
      if ((totals.drops >= onVictim && totals.open === totals.total) || Date.now() > deadline) break;
      await sleep(20);
    }
    // What every process spent between the kill and the last reconnection: is recovery CPU-bound?
    const recoveryCpu = meter.stop();
    await killed;
    options.log(`  failover run ${run + 1}: killed ${victim.name} (-9)`);
    // Keep ticking a little so losses are counted up to a point every client saw live.
    await sleep(500);
    const lastSeq = ticks.stop();
    await sleep(300);
    const reports = (await Promise.all(workers.map((worker) => worker.failoverReport(firstFull, lastSeq)))).flat();
    const nodesAfter = (await Promise.all(workers.map((worker) => worker.identify()))).flat();
    const affected = reports.map((report, index) => ({ report, index })).filter(({ report }) => report.lostAt !== null);
    const backTimes = affected.filter(({ report }) => report.backAt !== null).map(({ report }) => report.backAt! - killedAt);
    const lostTimes = affected.map(({ report }) => report.lostAt! - killedAt);
    const lost = affected.map(({ report }) => report.missed);
    const unaffected = reports.filter((report) => report.lostAt === null);
    const result: FailoverRun = {
      run: run + 1,
      clients: reports.length,
      affected: affected.length,
      killedNode: victim.name,
      allBackMs: backTimes.length === affected.length && backTimes.length > 0 ? Math.round(Math.max(...backTimes)) : null,
      medianClientBackMs: backTimes.length > 0 ? Math.round(median(backTimes)) : null,
      medianClientLostMs: lostTimes.length > 0 ? Math.round(median(lostTimes)) : null,
      lastClientLostMs: lostTimes.length > 0 ? Math.round(Math.max(...lostTimes)) : null,
      notBack: affected.length - backTimes.length,
      eventsPublished: lastSeq - firstFull + 1,
      lostPerAffectedMean: lost.length > 0 ? Math.round((lost.reduce((a, b) => a + b, 0) / lost.length) * 10) / 10 : 0,
      lostPerAffectedMax: lost.length > 0 ? Math.max(...lost) : 0,
      lostByUnaffected: unaffected.reduce((total, report) => total + report.missed, 0),
      movedToSurvivor: affected.filter(({ index }) => nodesAfter[index] === survivor.name).length,
      recoveryCpu,
    };
    const wrongNode = affected.filter(({ index }) => nodesBefore[index] !== victim.name).length;
    options.log(
      `  failover run ${run + 1}: ${result.affected} affected (${wrongNode} of them not on ${victim.name}), ` +
        `all back after ${result.allBackMs ?? 'never'} ms, lost mean ${result.lostPerAffectedMean} max ${result.lostPerAffectedMax}`,
    );
    return result;
  } finally {
    ticks.stop();
    await closeClient(publisher);
    await Promise.all(workers.map((worker) => worker.closeAll()));
    if (!victim.isRunning()) await victim.restart();
  }
}

export async function measureFailover(options: FailoverOptions): Promise<FailoverResults> {
  const runs: FailoverRun[] = [];
  for (let run = 0; run < options.runs; run += 1) {
    runs.push(await runOnce(options, run));
    // The restarted node and its identity provider settle before the next run.
    await sleep(500);
  }
  const complete = runs.map((run) => run.allBackMs).filter((ms): ms is number => ms !== null);
  return {
    clientsPerRun: options.clients,
    tickIntervalMs: options.tickIntervalMs,
    runs,
    medianAllBackMs: complete.length === runs.length && complete.length > 0 ? median(complete) : null,
  };
}

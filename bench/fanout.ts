/**
 * Fan-out: one publisher, many subscribers spread over both nodes; every subscriber receives every
 * event. The publisher keeps a fixed window of events in flight: a new event goes out when every
 * subscriber has received an older one (client processes report each fully delivered event), so the
 * rate is what the path sustains, not what a queue absorbs. Delivery latency is publish-to-receipt
 * wall-clock time of every delivery. Paths are run in rotated order per round; medians over rounds.
 */
import type { DeepstreamClient } from '@deepstream/client';
import { closeClient, loginClient } from '../local/node-identity';
import { sleep } from '../local/readiness';
import type { ClientWorker } from './client-pool';
import { startCpuMeter } from './procfs';
import type { CpuProfile, FanoutPath, FanoutResults, FanoutRun } from './results';
import { PROXY_COMPONENT_PREFIXES, type BenchPath } from './setup';
import { interleavedOrder, median, ratio, spread, summarize } from './stats';
import { wallClockMs, type TickPayload } from './worker-protocol';

export interface FanoutPathPlan {
  readonly path: BenchPath;
  /** Subscribers connect here, round robin over the list (direct: one URL per node). */
  readonly subscriberUrls: readonly string[];
  /** The client processes holding this path's subscribers (one path per process). */
  readonly workers: readonly ClientWorker[];
}

export interface FanoutOptions {
  readonly plans: readonly FanoutPathPlan[];
  readonly subscribersPerPath: number;
  readonly eventsPerRun: number;
  readonly window: number;
  readonly rounds: number;
  readonly ca: string;
  readonly localAddresses: readonly string[];
  readonly components: Readonly<Record<string, () => readonly number[]>>;
  readonly nproc: number;
  readonly log: (line: string) => void;
}

interface ReadyPath {
  readonly plan: FanoutPathPlan;
  readonly event: string;
  readonly publisher: DeepstreamClient;
}

const round2 = (value: number): number => Math.round(value * 100) / 100;

/** Resolves when every worker has reported `seq` fully delivered; rejects after `timeoutMs`. */
function completions(workers: readonly ClientWorker[]) {
  const reported = new Map<number, number>();
  const waiters = new Map<number, () => void>();
  const unsubscribe = workers.map((worker) =>
    worker.onDelivered((seq) => {
      const count = (reported.get(seq) ?? 0) + 1;
      reported.set(seq, count);
      if (count === workers.length) {
        reported.delete(seq);
        const waiter = waiters.get(seq);
        waiters.delete(seq);
        waiter?.();
      }
    }),
  );
  return {
    wait(seq: number, timeoutMs: number): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(seq);
          reject(new Error(`event ${seq} not delivered to every subscriber within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.set(seq, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
    close(): void {
      for (const stop of unsubscribe) stop();
    },
  };
}

function tick(seq: number): TickPayload {
  return { seq, sentAt: wallClockMs() };
}

async function preparePath(plan: FanoutPathPlan, options: FanoutOptions, firstWorkerIndex: number): Promise<ReadyPath> {
  const event = `bench/fanout/${plan.path.name}`;
  const perWorker = spread(options.subscribersPerPath, plan.workers.length);
  await Promise.all(
    plan.workers.map(async (worker, index) => {
      const perUrl = spread(perWorker[index]!, plan.subscriberUrls.length);
      for (const [urlIndex, url] of plan.subscriberUrls.entries()) {
        const reply = await worker.connect({
          url,
          count: perUrl[urlIndex]!,
          ca: options.ca,
          localAddress: options.localAddresses[firstWorkerIndex + index]!,
          concurrency: 32,
          loginTimeoutMs: 20_000,
          kind: 'full',
        });
        if (reply.failed > 0) throw new Error(`fan-out ${plan.path.name}: ${reply.failed} subscribers failed to log in: ${reply.errors.join('; ')}`);
      }
      await worker.subscribe({ event, perClient: false });
    }),
  );
  const publisher = await loginClient(plan.path.url, { socketOptions: { ca: options.ca } });
  // Subscriptions register asynchronously: probe (negative sequence numbers) until one probe
  // reaches every subscriber, then forget the probes.
  const done = completions(plan.workers);
  try {
    const deadline = Date.now() + 20_000;
    for (let probe = -1; ; probe -= 1) {
      publisher.event.emit(event, tick(probe) as unknown as Parameters<DeepstreamClient['event']['emit']>[1]);
      try {
        await done.wait(probe, 500);
        break;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`fan-out ${plan.path.name}: subscriptions never became active: ${(error as Error).message}`);
      }
    }
  } finally {
    done.close();
  }
  await sleep(300);
  return { plan, event, publisher };
}

async function runOnce(ready: ReadyPath, options: FanoutOptions, round: number): Promise<FanoutRun> {
  const { workers } = ready.plan;
  await Promise.all(workers.map((worker) => worker.resetDeliveries()));
  const done = completions(workers);
  const started = wallClockMs();
  try {
    let nextSeq = 0;
    const publishNext = (): Promise<void> => {
      const seq = nextSeq++;
      const completion = done.wait(seq, 30_000);
      ready.publisher.event.emit(ready.event, tick(seq) as unknown as Parameters<DeepstreamClient['event']['emit']>[1]);
      return completion.then(() => (nextSeq < options.eventsPerRun ? publishNext() : undefined));
    };
    // `window` independent chains: each publishes its next event when its previous one is delivered.
    await Promise.all(Array.from({ length: Math.min(options.window, options.eventsPerRun) }, () => publishNext()));
  } finally {
    done.close();
  }
  const collected = await Promise.all(workers.map((worker) => worker.collectDeliveries()));
  const latencies = collected.flatMap((reply) => reply.latencies);
  const deliveries = collected.reduce((total, reply) => total + reply.deliveries, 0);
  const finished = Math.max(...collected.map((reply) => reply.lastDeliveryAt));
  const seconds = (finished - started) / 1000;
  const summary = summarize(latencies);
  return {
    path: ready.plan.path.name,
    round,
    deliveries,
    seconds: round2(seconds),
    deliveriesPerSecond: Math.round(deliveries / seconds),
    p50Ms: round2(summary.p50),
    p99Ms: round2(summary.p99),
  };
}

export async function measureFanout(options: FanoutOptions): Promise<FanoutResults> {
  const ready: ReadyPath[] = [];
  const runs: FanoutRun[] = [];
  const cpuSeconds = new Map<string, { wall: number; busyWeighted: number; seconds: Record<string, number> }>();
  const subscribersPerNode: Record<string, number> = {};
  try {
    let workerIndex = 0;
    for (const plan of options.plans) {
      ready.push(await preparePath(plan, options, workerIndex));
      workerIndex += plan.workers.length;
      options.log(`  fan-out ${plan.path.name}: ${options.subscribersPerPath} subscribers ready`);
    }
    for (const path of ready) {
      const nodes = (await Promise.all(path.plan.workers.map((worker) => worker.identify()))).flat();
      for (const node of nodes) {
        const key = `${path.plan.path.name} ${node ?? 'unknown'}`;
        subscribersPerNode[key] = (subscribersPerNode[key] ?? 0) + 1;
      }
    }
    for (let round = 0; round < options.rounds; round += 1) {
      for (const path of interleavedOrder(ready, round)) {
        const meter = startCpuMeter(options.components, options.nproc);
        const run = await runOnce(path, options, round);
        const cpu = meter.stop();
        const total = cpuSeconds.get(run.path) ?? { wall: 0, busyWeighted: 0, seconds: {} };
        total.wall += cpu.wallSeconds;
        total.busyWeighted += (cpu.machineBusyPercent ?? 0) * cpu.wallSeconds;
        for (const [name, value] of Object.entries(cpu.seconds)) total.seconds[name] = (total.seconds[name] ?? 0) + value;
        cpuSeconds.set(run.path, total);
        runs.push(run);
        options.log(`  fan-out ${run.path} round ${round + 1}: ${run.deliveriesPerSecond} deliveries/s, p99 ${run.p99Ms} ms`);
      }
    }
  } finally {
    await Promise.all(ready.map((path) => closeClient(path.publisher)));
    await Promise.all(options.plans.flatMap((plan) => plan.workers.map((worker) => worker.closeAll())));
  }
  const isProxy = (component: string): boolean => PROXY_COMPONENT_PREFIXES.some((prefix) => component.startsWith(prefix));
  const perPath = options.plans.map((plan) => {
    const mine = runs.filter((run) => run.path === plan.path.name);
    const deliveries = mine.reduce((total, run) => total + run.deliveries, 0);
    const spent = Object.entries(cpuSeconds.get(plan.path.name)?.seconds ?? {});
    const micros = (entries: Array<[string, number]>): number => (deliveries > 0 ? (entries.reduce((total, [, value]) => total + value, 0) * 1e6) / deliveries : 0);
    return {
      plan,
      cpuMicrosPerDelivery: micros(spent),
      proxyCpuMicrosPerDelivery: micros(spent.filter(([name]) => isProxy(name))),
      deliveriesPerSecond: median(mine.map((run) => run.deliveriesPerSecond)),
      p50Ms: median(mine.map((run) => run.p50Ms)),
      p99Ms: median(mine.map((run) => run.p99Ms)),
    };
  });
  const direct = perPath.find((entry) => entry.plan.path.name === 'direct') ?? perPath[0]!;
  const paths: FanoutPath[] = perPath.map((entry) => ({
    name: entry.plan.path.name,
    description: entry.plan.path.description,
    deliveriesPerSecond: entry.deliveriesPerSecond,
    p50Ms: entry.p50Ms,
    p99Ms: entry.p99Ms,
    ratioToDirect: ratio(entry.deliveriesPerSecond, direct.deliveriesPerSecond),
    cpuMicrosPerDelivery: round2(entry.cpuMicrosPerDelivery),
    proxyCpuMicrosPerDelivery: round2(entry.proxyCpuMicrosPerDelivery),
    cpuBoundCeiling: entry.cpuMicrosPerDelivery > 0 ? ratio(direct.cpuMicrosPerDelivery, entry.cpuMicrosPerDelivery) : 0,
  }));
  const cpu: Record<string, CpuProfile> = {};
  for (const [path, total] of cpuSeconds) {
    const seconds: Record<string, number> = {};
    const percentOfMachine: Record<string, number> = {};
    for (const [name, value] of Object.entries(total.seconds)) {
      seconds[name] = round2(value);
      percentOfMachine[name] = total.wall > 0 ? Math.round((value / (total.wall * options.nproc)) * 1000) / 10 : 0;
    }
    cpu[path] = {
      wallSeconds: round2(total.wall),
      seconds,
      percentOfMachine,
      machineBusyPercent: total.wall > 0 ? Math.round((total.busyWeighted / total.wall) * 10) / 10 : 0,
    };
  }
  return {
    subscribers: options.subscribersPerPath,
    subscribersPerNode,
    eventsPerRun: options.eventsPerRun,
    window: options.window,
    rounds: options.rounds,
    paths,
    runs,
    cpu,
  };
}

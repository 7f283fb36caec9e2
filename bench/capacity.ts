/**
 * Capacity: idle, logged-in WebSocket connections through one nginx to the two nodes, added in steps
 * and each step held for at least one heartbeat period (every client pings once and is answered, and
 * the server's silence check runs once). A step holds fully when every connection logged in and none
 * was lost by the end of its hold. Memory is read from /proc: nginx master + workers, and each node.
 */
import * as fs from 'node:fs';
import type { NodeHandle } from '../local/deepstream-node';
import type { NginxHandle } from '../local/nginx-process';
import { sleep } from '../local/readiness';
import { renderNginxConf } from '../nginx/conf';
import type { NginxSpec } from '../nginx/spec';
import type { ClientWorker } from './client-pool';
import { commandLines, processTree, sampleProcesses, sampleTree, startCpuMeter } from './procfs';
import type { CapacityRun, CapacityStep, MemoryPerConnection, NginxSettings } from './results';
import { spread } from './stats';
import type { StatusReply } from './worker-protocol';

export interface CapacityPlan {
  readonly name: string;
  readonly description: string;
  /** Which listener, for the report. */
  readonly listener: string;
  readonly url: string;
  readonly ca?: string;
  readonly nginx: NginxHandle;
  /** The spec nginx is reloaded to before the run. */
  readonly spec: NginxSpec;
  readonly steps: readonly number[];
  readonly holdSeconds: number;
  /** One source address per client process (each address has its own ephemeral ports). */
  readonly localAddresses: readonly string[];
  readonly workers: readonly ClientWorker[];
  readonly nodes: readonly NodeHandle[];
  readonly components: Readonly<Record<string, () => readonly number[]>>;
  readonly nproc: number;
  readonly log: (line: string) => void;
}

const MEGABYTE = 1024 * 1024;

/** Waits until no worker of an old nginx configuration is left, so memory is read from the new ones only. */
async function oldWorkersGone(pids: () => readonly number[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (commandLines(pids()).some((line) => line.includes('shutting down'))) {
    if (Date.now() > deadline) throw new Error('nginx workers of the previous configuration did not exit within 15 s');
    await sleep(100);
  }
}
const round2 = (value: number): number => Math.round(value * 100) / 100;

/** The worker settings nginx renders for a spec, read back from the rendered text. */
export function nginxSettingsOf(spec: NginxSpec): NginxSettings {
  const conf = renderNginxConf(spec);
  const read = (directive: string): string => {
    const match = new RegExp(`^\\s*${directive}\\s+([^;]+);`, 'm').exec(conf);
    if (!match) throw new Error(`rendered nginx.conf has no ${directive}`);
    return match[1]!.trim();
  };
  return {
    workerProcesses: read('worker_processes'),
    workerConnections: Number(read('worker_connections')),
    workerRlimitNofile: Number(read('worker_rlimit_nofile')),
    reuseport: /^\s*listen\s[^;]*\sreuseport[\s;]/m.test(conf),
  };
}

function errorLogSize(nginx: NginxHandle): number {
  try {
    return fs.statSync(nginx.paths.errorLog).size;
  } catch {
    return 0;
  }
}

/** Distinct error-log messages written since `offset` (timestamps and connection ids stripped). */
function newErrorLines(nginx: NginxHandle, offset: number): string[] {
  let text = '';
  try {
    const fd = fs.openSync(nginx.paths.errorLog, 'r');
    const size = fs.fstatSync(fd).size;
    const buffer = Buffer.alloc(Math.max(0, size - offset));
    fs.readSync(fd, buffer, 0, buffer.length, offset);
    fs.closeSync(fd);
    text = buffer.toString('utf8');
  } catch {
    return [];
  }
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const message = line.replace(/^\S+ \S+ /, '').replace(/\d+#\d+: \*\d+ /, '').replace(/, client: .*$/, '');
    counts.set(message, (counts.get(message) ?? 0) + 1);
  }
  return [...counts.entries()].slice(0, 8).map(([message, count]) => `${count}x ${message}`);
}

async function statusOf(workers: readonly ClientWorker[]): Promise<StatusReply[]> {
  return Promise.all(workers.map((worker) => worker.status()));
}

const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);

function nodePids(nodes: readonly NodeHandle[]): number[][] {
  return nodes.map((node) => (node.pid !== undefined ? [node.pid] : []));
}

/**
 * The client connections each node holds at a step: its open descriptors above its idle count. A run
 * that did not record the idle count (before nodeBaselineFds existed) splits the open connections in
 * proportion to the nodes' descriptors instead (each node's few idle ones shift that by well under 1%
 * at thousands of connections).
 */
export function nodeConnections(
  baselineFds: readonly number[] | undefined,
  step: Pick<CapacityStep, 'openAtEnd' | 'nodeFds'>,
): number[] {
  if (baselineFds) return step.nodeFds.map((fds, index) => Math.max(0, fds - (baselineFds[index] ?? 0)));
  const total = step.nodeFds.reduce((sum, fds) => sum + fds, 0);
  return step.nodeFds.map((fds) => (total > 0 ? Math.round((step.openAtEnd * fds) / total) : 0));
}

/**
 * Each node's RSS growth above its own idle RSS per 1,000 of the connections it holds; null for a
 * node that holds none. Node heaps grow and shrink with garbage collection, so the figure is noisy
 * and can be negative where a collection ran between the idle reading and the step's.
 */
export function nodeRssPer1000(
  run: Pick<CapacityRun, 'nodeBaselineRssMegabytes' | 'nodeBaselineFds'>,
  step: Pick<CapacityStep, 'openAtEnd' | 'nodeFds' | 'nodeRssMegabytes'>,
): Array<number | null> {
  const connections = nodeConnections(run.nodeBaselineFds, step);
  return step.nodeRssMegabytes.map((rss, index) => {
    const held = connections[index] ?? 0;
    const idle = run.nodeBaselineRssMegabytes[index];
    return held > 0 && idle !== undefined ? round2(((rss - idle) * 1000) / held) : null;
  });
}

/** A step holds fully when every login succeeded, every connection of the step is still logged in
 * at the end of its hold, and none was lost during it. */
export function stepHeldFully(step: Pick<CapacityStep, 'target' | 'failed' | 'openAtEnd' | 'drops'>): boolean {
  return step.failed === 0 && step.openAtEnd >= step.target && step.drops === 0;
}

export async function measureCapacity(plan: CapacityPlan): Promise<CapacityRun> {
  const { workers, log } = plan;
  if (plan.localAddresses.length < workers.length) throw new Error('capacity plan: one local address per client process is needed');
  await plan.nginx.reload(plan.spec);
  await oldWorkersGone(() => processTree(plan.nginx.masterPid));
  await sleep(1000);
  const nginxBaseline = sampleTree(plan.nginx.masterPid);
  const nodeBaseline = nodePids(plan.nodes).map((pids) => sampleProcesses(pids));
  const baselineRssMegabytes = nodeBaseline.map((node) => round2(node.rssBytes / MEGABYTE));
  const baselineFds = nodeBaseline.map((node) => node.fds[0] ?? 0);
  const meter = startCpuMeter(plan.components, plan.nproc);
  const steps: CapacityStep[] = [];
  const openedPerWorker = workers.map(() => 0);
  let highestHeld = 0;
  try {
    for (const target of plan.steps) {
      const errorOffset = errorLogSize(plan.nginx);
      const before = await statusOf(workers);
      const perWorker = spread(target, workers.length);
      const rampStarted = performance.now();
      const replies = await Promise.all(
        workers.map((worker, index) => {
          const count = Math.max(0, perWorker[index]! - openedPerWorker[index]!);
          return worker.connect({
            url: plan.url,
            count,
            ...(plan.ca ? { ca: plan.ca } : {}),
            localAddress: plan.localAddresses[index]!,
            concurrency: 48,
            loginTimeoutMs: 20_000,
            kind: 'idle',
          });
        }),
      );
      const rampSeconds = (performance.now() - rampStarted) / 1000;
      replies.forEach((reply, index) => (openedPerWorker[index] = openedPerWorker[index]! + reply.opened));
      const failed = sum(replies.map((reply) => reply.failed));
      // A step whose logins failed cannot hold fully: its figures are read at once, without the hold.
      const holdFor = failed === 0 ? plan.holdSeconds : 0;
      log(`  ${plan.name}: step ${target}: ${sum(openedPerWorker)} open after ${rampSeconds.toFixed(1)} s ramp, ${failed} failed; holding ${holdFor} s`);
      const holdStarted = performance.now();
      await sleep(holdFor * 1000);
      const holdSeconds = (performance.now() - holdStarted) / 1000;
      const after = await statusOf(workers);
      const nginx = sampleTree(plan.nginx.masterPid);
      const nodes = nodePids(plan.nodes).map((pids) => sampleProcesses(pids));
      const openAtEnd = sum(after.map((status) => status.open));
      const drops = sum(after.map((status) => status.drops)) - sum(before.map((status) => status.drops));
      const heldFully = stepHeldFully({ target, failed, openAtEnd, drops });
      const thousands = Math.max(openAtEnd, 1) / 1000;
      const workerFds = processTree(plan.nginx.masterPid)
        .slice(1)
        .map((pid) => sampleProcesses([pid]).fds[0] ?? 0);
      const nodeRssMegabytes = nodes.map((node) => round2(node.rssBytes / MEGABYTE));
      const nodeFds = nodes.map((node) => node.fds[0] ?? 0);
      steps.push({
        target,
        opened: sum(openedPerWorker),
        failed,
        openAtEnd,
        drops,
        heldFully,
        rampSeconds: round2(rampSeconds),
        holdSeconds: round2(holdSeconds),
        nginxRssMegabytes: round2(nginx.rssBytes / MEGABYTE),
        nginxPssMegabytes: round2(nginx.pssBytes / MEGABYTE),
        nginxRssPer1000Megabytes: round2((nginx.rssBytes - nginxBaseline.rssBytes) / MEGABYTE / thousands),
        nginxTotalRssPer1000Megabytes: round2(nginx.rssBytes / MEGABYTE / thousands),
        nginxMaxWorkerFds: Math.max(0, ...workerFds),
        nodeRssMegabytes,
        nodeRssAboveIdlePer1000Megabytes: nodeRssPer1000(
          { nodeBaselineRssMegabytes: baselineRssMegabytes, nodeBaselineFds: baselineFds },
          { openAtEnd, nodeRssMegabytes, nodeFds },
        ),
        nodeFds,
        clientErrors: [...new Set(replies.flatMap((reply) => reply.errors))].slice(0, 5),
        nginxErrors: newErrorLines(plan.nginx, errorOffset),
      });
      log(
        `  ${plan.name}: step ${target} ${heldFully ? 'held' : 'NOT held'}: ${openAtEnd} open, ${drops} dropped; ` +
          `nginx RSS ${round2(nginx.rssBytes / MEGABYTE)} MB, nodes ${nodes.map((node) => round2(node.rssBytes / MEGABYTE)).join(' / ')} MB`,
      );
      if (!heldFully) break;
      highestHeld = target;
    }
  } finally {
    await Promise.all(workers.map((worker) => worker.closeAll()));
  }
  const cpu = meter.stop();
  // Connections close asynchronously through nginx; give the nodes a moment before the next run.
  await sleep(2000);
  return {
    name: plan.name,
    description: plan.description,
    listener: plan.listener,
    nginx: nginxSettingsOf(plan.spec),
    nginxBaselineRssMegabytes: round2(nginxBaseline.rssBytes / MEGABYTE),
    nodeBaselineRssMegabytes: baselineRssMegabytes,
    nodeBaselineFds: baselineFds,
    steps,
    highestHeld,
    cpu,
  };
}

/** What a memory-probe row says about its failed logins: stored, or (runs before it was stored)
 * at least the gap to the most connections another path of the same probe opened, since every path
 * asks for the same number. A row with failures is approximate: their memory is in the growth. */
export interface ProbeFailures {
  /** Failed logins; a lower bound where `inferred`; undefined where nothing shows one. */
  readonly failed: number | undefined;
  readonly inferred: boolean;
  readonly firstError: string | undefined;
  readonly approximate: boolean;
}

export function memoryProbeFailures(row: MemoryPerConnection, rows: readonly MemoryPerConnection[]): ProbeFailures {
  if (row.failed !== undefined) {
    return { failed: row.failed, inferred: false, firstError: row.firstError, approximate: row.failed > 0 };
  }
  const mostOpened = Math.max(...rows.map((entry) => entry.connections));
  const gap = mostOpened - row.connections;
  return { failed: gap > 0 ? gap : undefined, inferred: true, firstError: undefined, approximate: gap > 0 };
}

export interface MemoryProbePlan {
  readonly paths: ReadonlyArray<{
    readonly name: string;
    readonly description: string;
    readonly url: string;
    readonly pids: () => readonly number[];
    /** Replaces the proxy's processes with fresh ones before the probe. */
    readonly fresh: () => Promise<void>;
  }>;
  readonly connections: number;
  readonly settleMs: number;
  readonly ca: string;
  readonly workers: readonly ClientWorker[];
  /** Third octet of the 127.0.x.y source addresses; one subnet per path after it. */
  readonly firstSubnet: number;
  readonly log: (line: string) => void;
}

/**
 * Memory one idle connection costs each proxy and mode: the same number of idle clients through every
 * listener in turn, each on fresh proxy processes, RSS and PSS of those processes before and after.
 * Separates what the L7 request state, the L4 session and TLS each add, and puts HAProxy's figures
 * next to nginx's.
 */
export async function measureMemoryPerConnection(plan: MemoryProbePlan): Promise<MemoryPerConnection[]> {
  const rows: MemoryPerConnection[] = [];
  for (const [index, path] of plan.paths.entries()) {
    await path.fresh();
    await oldWorkersGone(path.pids);
    await sleep(plan.settleMs);
    const before = sampleProcesses(path.pids());
    const perWorker = spread(plan.connections, plan.workers.length);
    let opened = 0;
    try {
      const replies = await Promise.all(
        plan.workers.map((worker, workerIndex) =>
          worker.connect({
            url: path.url,
            count: perWorker[workerIndex]!,
            ca: plan.ca,
            localAddress: `127.0.${plan.firstSubnet + index}.${workerIndex + 1}`,
            concurrency: 48,
            loginTimeoutMs: 20_000,
            kind: 'idle',
          }),
        ),
      );
      opened = sum(replies.map((reply) => reply.opened));
      const failed = sum(replies.map((reply) => reply.failed));
      const firstError = replies.flatMap((reply) => reply.errors)[0];
      // Let the last logins' transient buffers be released before reading memory.
      await sleep(plan.settleMs);
      const after = sampleProcesses(path.pids());
      const kilobytes = (bytes: number): number => Math.round((bytes / 1024 / Math.max(opened, 1)) * 10) / 10;
      rows.push({
        path: path.name,
        description: path.description,
        connections: opened,
        requested: plan.connections,
        failed,
        ...(firstError !== undefined ? { firstError } : {}),
        rssKilobytesPerConnection: kilobytes(after.rssBytes - before.rssBytes),
        pssKilobytesPerConnection: kilobytes(after.pssBytes - before.pssBytes),
      });
      plan.log(
        `  memory per connection via ${path.name}: ${rows[rows.length - 1]!.rssKilobytesPerConnection} KB RSS (${opened} connections` +
          (failed > 0 ? `, ${failed} failed: ${firstError ?? 'no error text'}; approximate` : '') +
          ')',
      );
    } finally {
      await Promise.all(plan.workers.map((worker) => worker.closeAll()));
    }
  }
  return rows;
}

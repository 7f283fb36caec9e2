/**
 * The targets of issue 5 and the hand-built anchors they must beat, judged against one run's figures.
 * Targets are reported, never asserted: a missed target is a row saying by how much and, from the
 * run's own profile figures, what limits it.
 */
import { waitingPercent, type CpuProfileSplit } from './cpu-profile';
import { memoryProbeFailures } from './capacity';
import { addedPerTraversalMicros, pathsOfProxy, TRAVERSALS_PER_ROUND_TRIP } from './latency';
import type { BenchResults, CapacityRun, FailoverResults, HeapProfile, LatencyResults, MemoryPerConnection, TargetVerdict } from './results';
import { describeHeapProfile, heapBreakdown } from './heap-profile';

/** Hand-built anchors (p50 ratio to direct, two runs of one harness on this machine; issue 5). The
 * issue gives one TLS anchor per proxy; it is shown for both of its TLS modes. */
export const LATENCY_ANCHORS: Readonly<Record<string, string>> = {
  'nginx-http': '1.31–1.43',
  'nginx-stream': '1.24–1.47',
  'nginx-https': '1.54–1.65',
  'nginx-stream-tls': '1.54–1.65',
  'haproxy-http': '1.51–1.54',
  'haproxy-tcp': '1.43–1.55',
  'haproxy-https': '1.66–1.88',
  'haproxy-tcp-tls': '1.66–1.88',
};

export const TARGETS = {
  httpP50Ratio: 1.25,
  streamP50Ratio: 1.2,
  tlsP50Ratio: 1.45,
  connections: 20_000,
  nginxMegabytesPer1000: 10,
  fanoutRatio: 0.9,
  failoverMs: 1000,
} as const;

/** nginx path -> the HAProxy path configured the same way. */
export const HAPROXY_EQUIVALENTS: ReadonlyArray<readonly [string, string]> = [
  ['nginx-http', 'haproxy-http'],
  ['nginx-stream', 'haproxy-tcp'],
  ['nginx-https', 'haproxy-https'],
  ['nginx-stream-tls', 'haproxy-tcp-tls'],
];

const round1 = (value: number): number => Math.round(value * 10) / 10;

function byHowMuch(measured: number, target: number, lowerIsBetter: boolean): string {
  const met = lowerIsBetter ? measured <= target : measured >= target;
  if (met) return '';
  const difference = Math.abs(measured - target);
  const percent = (difference / target) * 100;
  return `missed by ${Math.round(difference * 100) / 100} (${Math.round(percent)}%)`;
}

/** Above this share of all cores busy a run is taken as bound by CPU. */
const CPU_BOUND_PERCENT = 90;

function cpuBoundText(busyPercent: number | undefined): string {
  if (busyPercent === undefined) return '';
  return busyPercent >= CPU_BOUND_PERCENT
    ? `the cores were ${busyPercent}% busy: CPU-bound.`
    : `the cores were only ${busyPercent}% busy, so not purely CPU-bound;`;
}

/** "1.02 sendto, 1.1 epoll_wait" from syscall -> calls per message; calls rarer than 1 in 20 left out. */
function syscallList(calls: Readonly<Record<string, number>>): string {
  return Object.entries(calls)
    .filter(([, perMessage]) => perMessage >= 0.05)
    .map(([name, perMessage]) => `${perMessage} ${name}`)
    .join(', ');
}

function syscallText(calls: Readonly<Record<string, number>> | undefined): string {
  return calls ? `strace over untimed round trips of this path alone: ${syscallList(calls)} per relayed message; ` : '';
}

/** The CPU of the proxy serving `name` per message it relayed: the path's own figure where the run
 * measured it; else the process's, metered over the whole phase, so an average over every path
 * that process relays, and said so. */
function proxyCpuText(latency: LatencyResults, name: string): string {
  const ofPath = latency.proxyCpuMicrosPerMessageOfPath?.[name];
  if (ofPath !== undefined) return `its relay processes spent ${ofPath} µs CPU per message of this path (schedstat around each visit); `;
  const component = latency.proxyComponentOfPath[name];
  const cpu = component !== undefined ? latency.proxyCpuMicrosPerMessage[component] : undefined;
  if (component === undefined || cpu === undefined) return '';
  const served = pathsOfProxy(latency.proxyComponentOfPath, component);
  return served.length > 1
    ? `its proxy process (${component}) averaged ${cpu} µs CPU per relayed message over all ${served.length} paths it relays ` +
        `(${served.join(', ')}), a process figure, not this path's; `
    : `its proxy process (${component}) relays only this path and spent ${cpu} µs CPU per relayed message; `;
}

/** Both proxies' system calls per relayed message, when both paths were traced. */
function syscallComparison(latency: LatencyResults | undefined, nginxName: string, haproxyName: string): string {
  const nginx = latency?.syscallsPerMessage[nginxName];
  const haproxy = latency?.syscallsPerMessage[haproxyName];
  if (!nginx || !haproxy) return '';
  return `; system calls per relayed message (strace): nginx ${syscallList(nginx)}; HAProxy ${syscallList(haproxy)}`;
}

/** "perf: 61% of the proxy's CPU wakes ... ; its own code 12%; " from a path's profile. */
function cpuSplitText(split: CpuProfileSplit | undefined): string {
  if (!split) return '';
  return (
    `perf: ${waitingPercent(split)}% of the proxy's CPU is waking the process on the other side (${split.percent.wake}%) and sleeping until the next ` +
    `message (${split.percent.switch}%), ${split.percent.kernel}% other kernel work, ${split.percent.user}% the proxy's own code; `
  );
}

/** Both proxies' share of CPU spent waking and sleeping, and their CPU time over the same round
 * trips, when both paths were profiled. */
function cpuSplitComparison(latency: LatencyResults | undefined, nginxName: string, haproxyName: string, nginxSlower: boolean): string {
  const nginx = latency?.proxyCpuSplits?.[nginxName];
  const haproxy = latency?.proxyCpuSplits?.[haproxyName];
  if (!nginx || !haproxy) return '';
  // Both profiles sample CPU time at one rate over the same number of round trips.
  const workedLess = nginxSlower && nginx.samples <= haproxy.samples;
  return (
    `; CPU spent waking the other side and sleeping (perf): nginx ${waitingPercent(nginx)}%, HAProxy ${waitingPercent(haproxy)}%; ` +
    `in their own code: nginx ${nginx.percent.user}%, HAProxy ${haproxy.percent.user}%; ` +
    `CPU time over the same untimed round trips (perf samples): nginx ${nginx.samples}, HAProxy ${haproxy.samples}` +
    (workedLess ? ': nginx used no more CPU yet answered later, so the gap is time waiting to run, not the proxy\'s work' : '')
  );
}

function latencyLimit(latency: LatencyResults, name: string, target: number): string {
  const direct = latency.paths.find((path) => path.name === 'direct');
  const path = latency.paths.find((entry) => entry.name === name);
  if (!direct || !path) return '';
  const addedMicros = addedPerTraversalMicros(path.p50Ms, direct.p50Ms);
  const budgetMicros = Math.round((((target - 1) * direct.p50Ms) / TRAVERSALS_PER_ROUND_TRIP) * 1000);
  return (
    `each of the ${TRAVERSALS_PER_ROUND_TRIP} traversals of a round trip adds ${addedMicros} µs at p50; ` +
    proxyCpuText(latency, name) +
    syscallText(latency.syscallsPerMessage[name]) +
    cpuSplitText(latency.proxyCpuSplits?.[name]) +
    `the target allows ${budgetMicros} µs per traversal against a direct round trip of ${Math.round(direct.p50Ms * 1000)} µs` +
    acrossNodesText(latency, name) +
    relayFloorText(latency) +
    processShareText(latency)
  );
}

/** The A/B control of the process a path shares: one plain stream listener on the nginx that relays
 * the other nginx stream and TLS paths, and the same listener in an nginx of its own. */
const SHARED_AND_ALONE = ['nginx-stream', 'nginx-stream-alone'] as const;

/** Per traversal, how much later the listener relays in an nginx that relays no other path than in
 * the shared one (negative: sooner); undefined without the control. */
export function aloneExtraMicros(paths: readonly { readonly name: string; readonly p50Ms: number }[]): number | undefined {
  const [shared, alone] = SHARED_AND_ALONE.map((name) => paths.find((path) => path.name === name));
  return shared && alone ? Math.round(((alone.p50Ms - shared.p50Ms) * 1000) / TRAVERSALS_PER_ROUND_TRIP) : undefined;
}

function processShareText(latency: LatencyResults): string {
  const direct = latency.paths.find((path) => path.name === 'direct');
  const [shared, alone] = SHARED_AND_ALONE.map((name) => latency.paths.find((path) => path.name === name));
  if (!direct || !shared || !alone) return '';
  return (
    `; one plain stream listener added ${addedPerTraversalMicros(alone.p50Ms, direct.p50Ms)} µs per traversal in an nginx that relays ` +
    `no other path (${SHARED_AND_ALONE[1]}) and ${addedPerTraversalMicros(shared.p50Ms, direct.p50Ms)} µs in the nginx shared with the ` +
    `TLS paths (${SHARED_AND_ALONE[0]}): how its process is scheduled on these shared cores moves a path by that much, whatever its configuration`
  );
}

/** The path's ratio when the call also crosses Redis between two nodes, as context for the one-node verdict. */
function acrossNodesText(latency: LatencyResults, name: string): string {
  const across = latency.acrossNodes?.paths;
  const path = across?.find((entry) => entry.name === name);
  const direct = across?.find((entry) => entry.name === 'direct');
  if (!path || !direct) return '';
  return `; with caller and provider on different nodes (Redis between them, ${Math.round(direct.p50Ms * 1000)} µs direct) the ratio is ${path.ratioP50}`;
}

/** What a bare TCP relay costs per traversal on this machine (bench/relay-floor.ts), as evidence of the floor. */
function relayFloorText(latency: LatencyResults): string {
  const floor = latency.relayFloor?.paths;
  const added = (name: string): number | undefined => floor?.find((path) => path.name === name)?.addedPerTraversalMicros;
  const rendered = added('nginx-rendered');
  const bare = added('nginx-bare');
  const haproxy = added('haproxy-tcp');
  if (rendered === undefined || bare === undefined) return '';
  return (
    `; a bare TCP ping-pong on this machine adds ${rendered} µs per traversal through the rendered stream config, ` +
    `${bare} µs through nginx with only listen + proxy_pass` +
    (haproxy !== undefined ? ` and ${haproxy} µs through HAProxy` : '') +
    ': the relay floor of these shared cores, not a setting'
  );
}

type CapacityLabel = 'plain' | 'stream' | 'TLS';

/** The HAProxy listener configured like each capacity run's nginx listener. */
const HAPROXY_OF_CAPACITY: Readonly<Record<CapacityLabel, readonly [string, string]>> = {
  plain: ['HAProxy http', 'haproxy-http'],
  stream: ['HAProxy tcp', 'haproxy-tcp'],
  TLS: ['HAProxy https', 'haproxy-https'],
};

/** The heap profile of the listener a capacity run measures (none for stream mode). */
const HEAP_PROFILE_OF_CAPACITY: Readonly<Record<CapacityLabel, string | null>> = { plain: 'nginx-http', stream: null, TLS: 'nginx-https' };

/** What the heap profile says of a missed memory target: which part of a connection's memory no
 * directive sizes, against what the target allows per connection. */
function heapProfileLimit(profiles: readonly HeapProfile[], label: CapacityLabel, allowed: number): string {
  const profile = profiles.find((entry) => entry.path === HEAP_PROFILE_OF_CAPACITY[label]);
  if (!profile) return '';
  const { nginxObjects, pools, libraries } = heapBreakdown(profile);
  const fixed = Math.round(((nginxObjects + pools + libraries) / 1024) * 10) / 10;
  return (
    `. Heap profile of nginx ${profile.nginx} (${profile.connections} connections): ${describeHeapProfile(profile)}; ` +
    `${fixed} KB of it is nginx's objects and pool space${libraries > 0 ? ' and OpenSSL\'s state' : ''}, which no buffer directive ` +
    'shrinks (pool blocks below 1k measured no smaller: nginx/conf-defaults.ts), ' +
    `${fixed > allowed ? 'above' : 'within'} the ${allowed} KB the target allows per connection`
  );
}

function memoryLimit(run: CapacityRun, memory: readonly MemoryPerConnection[], label: CapacityLabel, profiles: readonly HeapProfile[]): string {
  const top = [...run.steps].reverse().find((step) => step.heldFully);
  if (!top) return '';
  const perConnection = Math.round(top.nginxRssPer1000Megabytes * 1.024 * 10) / 10;
  const allowed = Math.round(((TARGETS.nginxMegabytesPer1000 * top.target) / 1000 - run.nginxBaselineRssMegabytes) * 1024 / top.target * 10) / 10;
  const rowOf = (path: string): MemoryPerConnection | undefined => memory.find((row) => row.path === path);
  const kb = (path: string): number | undefined => rowOf(path)?.rssKilobytesPerConnection;
  const approximate = (path: string): boolean => {
    const row = rowOf(path);
    return row !== undefined && memoryProbeFailures(row, memory).approximate;
  };
  const modes: ReadonlyArray<readonly [string, string]> = [
    ['nginx http with nginx defaults only', 'nginx-http-bare'],
    ['nginx http', 'nginx-http'],
    ['nginx stream', 'nginx-stream'],
    ['nginx https', 'nginx-https'],
    ['nginx stream+TLS', 'nginx-stream-tls'],
    HAPROXY_OF_CAPACITY[label],
  ];
  const byMode = modes
    .flatMap(([mode, path]) => {
      const value = kb(path);
      return value === undefined ? [] : [`${mode} ${approximate(path) ? '≈ ' : ''}${value}`];
    })
    .join(', ');
  return (
    `${perConnection} KB per connection above an idle ${run.nginxBaselineRssMegabytes} MB (preallocated ` +
    `${run.nginx.workerConnections} connection slots in each of ${run.nginx.workerProcesses} workers); the target allows ${allowed} KB at ` +
    `${top.target.toLocaleString('en-US')}` +
    (byMode ? `. KB per idle connection by mode (memory probe): ${byMode}` : '') +
    layerCost(kb, label, allowed) +
    heapProfileLimit(profiles, label, allowed)
  );
}

/** What one layer of the listener costs per connection, in nginx and in HAProxy: the L7 state of
 * http over stream mode for plain WebSockets, TLS over plain http for wss. Stated only when the
 * probe measured all four figures, and compared with the whole per-connection budget. */
function layerCost(kb: (path: string) => number | undefined, label: CapacityLabel, allowed: number): string {
  const layers = {
    plain: { name: 'the L7 state of http mode over stream mode', nginx: ['nginx-http', 'nginx-stream'], haproxy: ['haproxy-http', 'haproxy-tcp'] },
    TLS: { name: 'TLS over plain http mode', nginx: ['nginx-https', 'nginx-http'], haproxy: ['haproxy-https', 'haproxy-http'] },
  } as const;
  if (label === 'stream') return '';
  const layer = layers[label];
  const cost = ([withLayer, without]: readonly [string, string]): number | undefined => {
    const [a, b] = [kb(withLayer), kb(without)];
    return a === undefined || b === undefined ? undefined : Math.round((a - b) * 10) / 10;
  };
  const [nginx, haproxy] = [cost(layer.nginx), cost(layer.haproxy)];
  if (nginx === undefined || haproxy === undefined) return '';
  const verdict = Math.min(nginx, haproxy) > allowed ? `; either alone exceeds the ${allowed} KB the target allows per connection` : '';
  return `. ${layer.name[0]!.toUpperCase()}${layer.name.slice(1)} costs ${nginx} KB per connection in nginx and ${haproxy} KB in HAProxy${verdict}`;
}

function capacityVerdicts(
  run: CapacityRun | undefined,
  memory: readonly MemoryPerConnection[],
  label: CapacityLabel,
  profiles: readonly HeapProfile[],
): TargetVerdict[] {
  if (!run) return [];
  const top = [...run.steps].reverse().find((step) => step.heldFully);
  const failedStep = run.steps.find((step) => !step.heldFully);
  const verdicts: TargetVerdict[] = [
    {
      target: `${TARGETS.connections.toLocaleString('en-US')} connections held through one nginx (${label})`,
      measured: `${run.highestHeld.toLocaleString('en-US')} held`,
      met: run.highestHeld >= TARGETS.connections,
      note: run.highestHeld >= TARGETS.connections ? '' : `missed by ${(TARGETS.connections - run.highestHeld).toLocaleString('en-US')} connections`,
      limit: failedStep
        ? `step ${failedStep.target.toLocaleString('en-US')}: ${failedStep.failed} logins failed, ${failedStep.drops} dropped; ${[...failedStep.clientErrors, ...failedStep.nginxErrors].slice(0, 2).join('; ')}`
        : '',
    },
  ];
  if (top) {
    const met = top.nginxTotalRssPer1000Megabytes <= TARGETS.nginxMegabytesPer1000;
    verdicts.push({
      target: `≤ ${TARGETS.nginxMegabytesPer1000} MB nginx RSS per 1,000 connections (${label})`,
      measured: `${top.nginxTotalRssPer1000Megabytes} MB total (${top.nginxRssPer1000Megabytes} MB above idle) at ${top.target.toLocaleString('en-US')}`,
      met,
      note: byHowMuch(top.nginxTotalRssPer1000Megabytes, TARGETS.nginxMegabytesPer1000, true),
      limit: met ? '' : memoryLimit(run, memory, label, profiles),
    });
  }
  return verdicts;
}

/** For a missed failover target, per run: when the slowest and the median affected client were back,
 * when the clients noticed the loss (where recorded), and how busy the cores were meanwhile. */
function failoverLimit(failover: FailoverResults): string {
  return failover.runs
    .map((run) => {
      const back =
        run.allBackMs === null
          ? `${run.notBack} of ${run.affected} affected clients not back within the 30 s watched`
          : `slowest affected client back after ${run.allBackMs} ms, median client ${run.medianClientBackMs ?? 'n/a'} ms`;
      const noticed =
        run.lastClientLostMs === undefined
          ? 'when clients noticed the loss not recorded in this run'
          : run.lastClientLostMs === null
            ? 'no client noticed a loss'
            : `loss noticed by the median client after ${run.medianClientLostMs} ms, by the last after ${run.lastClientLostMs} ms`;
      const busiest = Object.entries(run.recoveryCpu.percentOfMachine)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 2)
        .map(([name, share]) => `${name} ${share}%`)
        .join(', ');
      const cpu = run.recoveryCpu.machineBusyPercent !== undefined ? `; cores ${run.recoveryCpu.machineBusyPercent}% busy meanwhile (${busiest})` : '';
      return `run ${run.run} (${run.killedNode} killed): ${back}; ${noticed}${cpu}`;
    })
    .join('. ');
}

/** Which process relays each side of an nginx-vs-HAProxy comparison, where the two differ in how many
 * paths their process relays, with what the A/B control measured that to cost. */
function processLayoutText(latency: LatencyResults | undefined, nginxName: string, haproxyName: string): string {
  const components = latency?.proxyComponentOfPath ?? {};
  const relays = (name: string): readonly string[] | undefined =>
    components[name] === undefined ? undefined : Object.keys(components).filter((path) => components[path] === components[name]);
  const [nginx, haproxy] = [relays(nginxName), relays(haproxyName)];
  if (!latency || !nginx || !haproxy || nginx.length === haproxy.length) return '';
  const extra = aloneExtraMicros(latency.paths);
  return (
    `; ${nginxName}'s nginx relays ${nginx.length === 1 ? 'no other path' : `${nginx.length} paths`}, ${haproxyName}'s HAProxy ${haproxy.length}` +
    (extra === undefined
      ? ''
      : ` (in this run one listener relayed ${Math.abs(extra)} µs per traversal ${extra >= 0 ? 'later' : 'sooner'} alone in its nginx than shared: the A/B control)`)
  );
}

export function judgeTargets(results: Omit<BenchResults, 'targets'>): TargetVerdict[] {
  const verdicts = judgeFigures(results);
  // A smoke run's counts are too small for its figures to mean anything against a target.
  return results.quick ? verdicts.map((verdict) => ({ ...verdict, met: null, note: 'quick run: small counts, no verdict', limit: '' })) : verdicts;
}

/** The A/A control: one nginx stream listener and its identical twin, measured in the same run. */
const TWIN_PATHS = ['nginx-stream', 'nginx-stream-twin'] as const;

/** How far the p50s of two identical paths lie apart in this run; undefined without the twin. */
function twinDifferenceMicros(paths: ReadonlyMap<string, { readonly p50Ms: number }>): number | undefined {
  const [path, twin] = TWIN_PATHS.map((name) => paths.get(name));
  return path && twin ? Math.round(Math.abs(path.p50Ms - twin.p50Ms) * 1000) : undefined;
}

function judgeFigures(results: Omit<BenchResults, 'targets'>): TargetVerdict[] {
  const verdicts: TargetVerdict[] = [];
  const latency = results.latency;
  const paths = new Map((latency?.paths ?? []).map((path) => [path.name, path]));
  for (const [name, target, label] of [
    ['nginx-http', TARGETS.httpP50Ratio, 'http'],
    ['nginx-stream', TARGETS.streamP50Ratio, 'stream'],
    ['nginx-https', TARGETS.tlsP50Ratio, 'TLS (http mode)'],
    ['nginx-stream-tls', TARGETS.tlsP50Ratio, 'TLS (stream mode)'],
  ] as const) {
    const path = paths.get(name);
    if (!path || !latency) continue;
    const met = path.ratioP50 <= target;
    verdicts.push({
      target: `RPC p50 ratio to direct ≤ ${target} via ${label}`,
      measured: `${path.ratioP50} (p50 ${path.p50Ms} ms; anchor ${LATENCY_ANCHORS[name] ?? 'none'})`,
      met,
      note: byHowMuch(path.ratioP50, target, true),
      limit: met ? '' : latencyLimit(latency, name, target),
    });
  }
  for (const [nginxName, haproxyName] of HAPROXY_EQUIVALENTS) {
    const nginx = paths.get(nginxName);
    const haproxy = paths.get(haproxyName);
    if (!nginx || !haproxy) continue;
    const met = nginx.p50Ms <= haproxy.p50Ms;
    const differenceMicros = Math.round(Math.abs(nginx.p50Ms - haproxy.p50Ms) * 1000);
    const noiseMicros = Math.round(Math.max(nginx.p50SplitHalfSpreadMs, haproxy.p50SplitHalfSpreadMs) * 1000);
    const twinMicros = twinDifferenceMicros(paths);
    verdicts.push({
      target: `${nginxName} no slower than ${haproxyName} (p50, same run)`,
      measured: `${nginx.p50Ms} ms vs ${haproxy.p50Ms} ms (ratios ${nginx.ratioP50} vs ${haproxy.ratioP50}; p99 ${nginx.p99Ms} vs ${haproxy.p99Ms} ms)`,
      met,
      note: met ? '' : `slower by ${differenceMicros} µs`,
      limit:
        `${differenceMicros} µs apart; the p50 of even and odd rounds of one path differs by up to ${noiseMicros} µs in this run` +
        (twinMicros === undefined ? '' : `, and two identical nginx stream listeners (${TWIN_PATHS.join(' and ')}) by ${twinMicros} µs`) +
        `, so the order is ${differenceMicros <= Math.max(noiseMicros, twinMicros ?? 0) ? 'within noise' : 'beyond that noise'}` +
        processLayoutText(latency, nginxName, haproxyName) +
        syscallComparison(latency, nginxName, haproxyName) +
        cpuSplitComparison(latency, nginxName, haproxyName, !met),
    });
  }
  const runs = results.capacity?.runs ?? [];
  const memory = results.capacity?.memoryPerConnection ?? [];
  const profiles = results.capacity?.heapProfiles ?? [];
  verdicts.push(...capacityVerdicts(runs.find((run) => run.name === 'plain'), memory, 'plain', profiles));
  verdicts.push(...capacityVerdicts(runs.find((run) => run.name === 'stream'), memory, 'stream', profiles));
  verdicts.push(...capacityVerdicts(runs.find((run) => run.name === 'tls'), memory, 'TLS', profiles));
  const fanoutDirect = results.fanout?.paths.find((path) => path.name === 'direct');
  const fanoutHaproxy = results.fanout?.paths.find((path) => path.name.startsWith('haproxy'));
  for (const path of results.fanout?.paths ?? []) {
    // The targets are nginx's; HAProxy is the reference relay its limit is compared with.
    if (path.name === 'direct' || !path.name.startsWith('nginx')) continue;
    const met = path.ratioToDirect >= TARGETS.fanoutRatio;
    const busy = results.fanout?.cpu[path.name]?.machineBusyPercent;
    verdicts.push({
      target: `fan-out via ${path.name} ≥ ${TARGETS.fanoutRatio}× direct deliveries/s`,
      measured: `${path.ratioToDirect}× (${path.deliveriesPerSecond.toLocaleString('en-US')}/s; anchor 0.57×)`,
      met,
      note: byHowMuch(path.ratioToDirect, TARGETS.fanoutRatio, false),
      limit:
        met || !fanoutDirect
          ? ''
          : `${cpuBoundText(busy)} nginx spends ${path.proxyCpuMicrosPerDelivery} µs CPU per delivery on ` +
            `cores that also run nodes and clients (${fanoutDirect.cpuMicrosPerDelivery} µs per delivery direct, ${path.cpuMicrosPerDelivery} µs ` +
            `through nginx), which caps the ratio at ${path.cpuBoundCeiling}; ${TARGETS.fanoutRatio}× needs ≤ ` +
            `${round1(fanoutDirect.cpuMicrosPerDelivery * (1 / TARGETS.fanoutRatio - 1))} µs per delivery in the proxy` +
            (fanoutHaproxy
              ? `; HAProxy relaying the same run spends ${fanoutHaproxy.proxyCpuMicrosPerDelivery} µs per delivery and reaches ${fanoutHaproxy.ratioToDirect}×`
              : ''),
    });
  }
  if (results.failover) {
    const ms = results.failover.medianAllBackMs;
    const met = ms !== null && ms <= TARGETS.failoverMs;
    verdicts.push({
      target: `failover: all affected clients back within ${TARGETS.failoverMs} ms (median of runs)`,
      measured: ms === null ? 'not all clients came back' : `${ms} ms`,
      met,
      note: ms === null ? 'some clients never logged in again' : byHowMuch(ms, TARGETS.failoverMs, true),
      limit: met ? '' : failoverLimit(results.failover),
    });
  }
  return verdicts;
}

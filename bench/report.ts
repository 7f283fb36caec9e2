/**
 * bench/RESULTS.md from one run's results. Pure: results in, Markdown out (unit-tested).
 */
import { PROFILE_KIND_LABELS, PROFILE_KINDS, waitingPercent } from './cpu-profile';
import { memoryProbeFailures, nodeRssPer1000 } from './capacity';
import { describeHeapProfile } from './heap-profile';
import { addedPerTraversalMicros, pathsOfProxy, TRAVERSALS_PER_ROUND_TRIP } from './latency';
import type { BenchResults, CapacityRun, CpuProfile, LatencyPath, LatencyResults, MemoryPerConnection } from './results';

type Cell = string | number;

/** A GitHub-flavoured Markdown table; numbers are right-aligned, `|` in cells escaped. */
export function markdownTable(headers: readonly string[], rows: ReadonlyArray<readonly Cell[]>): string {
  for (const [index, row] of rows.entries()) {
    if (row.length !== headers.length) {
      throw new Error(`markdownTable: row ${index} has ${row.length} cells; allowed: ${headers.length} (one per header)`);
    }
  }
  const numeric = headers.map((_, column) => rows.length > 0 && rows.every((row) => typeof row[column] === 'number'));
  const escape = (cell: Cell): string => String(cell).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    `| ${headers.map(escape).join(' | ')} |`,
    `| ${numeric.map((isNumber) => (isNumber ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((row) => `| ${row.map(escape).join(' | ')} |`),
  ].join('\n');
}

/** `value` with thousands separators (en-US), for counts and rates. */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/**
 * How far ratios moved between runs: read from the 14 distinct full runs in the git history of
 * bench/results.json up to the one dated 2026-12-04T20:33Z (each commit's latency.paths[].ratioP50
 * of nginx-http, nginx-https and nginx-stream), not from this run. A fixed statement about those runs: later runs
 * do not update it.
 */
const ACROSS_RUNS =
  'How far they move: over the 14 full runs committed up to 2026-12-04T20:33Z (read from the git history of ' +
  'bench/results.json; the harness also changed between some of them, and the last two ran on a newer kernel build, ' +
  '6.18.44-fc-v1252 against fc-v782), ' +
  'the p50 ratio to direct of one path spanned up to 1.67 (nginx-https 1.63–3.30, nginx-stream 1.33–2.71, nginx-http 1.52–2.20).';

function verdictCell(met: boolean | null): string {
  if (met === null) return 'n/a';
  return met ? 'met' : 'MISSED';
}

function cpuTable(profile: CpuProfile): string {
  const rows = Object.entries(profile.seconds)
    .filter(([, seconds]) => seconds > 0.005)
    .sort((a, b) => b[1] - a[1])
    .map(([name, seconds]): Cell[] => [name, seconds, profile.percentOfMachine[name] ?? 0]);
  const ours = Object.values(profile.percentOfMachine).reduce((sum, share) => sum + share, 0);
  if (profile.machineBusyPercent !== undefined) {
    rows.push(['whole machine (/proc/stat; other work included)', '', profile.machineBusyPercent]);
    rows.push(['of which not this benchmark', '', Math.max(0, Math.round((profile.machineBusyPercent - ours) * 10) / 10)]);
  }
  return markdownTable(['component', 'CPU s', '% of all cores'], rows);
}

function syscallSection(latency: LatencyResults): string[] {
  const paths = Object.entries(latency.syscallsPerMessage);
  if (paths.length === 0) return [];
  const syscalls = [...new Set(paths.flatMap(([, calls]) => Object.keys(calls)))].sort();
  return [
    '',
    'System calls the proxy made per relayed message (`strace -c` on its processes over extra, untimed round trips):',
    '',
    markdownTable(
      ['path', ...syscalls],
      paths.map(([path, calls]): Cell[] => [path, ...syscalls.map((syscall) => calls[syscall] ?? 0)]),
    ),
    '',
  ];
}

function acrossNodesSection(latency: LatencyResults): string[] {
  const across = latency.acrossNodes;
  if (!across) return [];
  const direct = across.paths.find((path) => path.name === 'direct');
  const sameNode = new Map(latency.paths.map((path) => [path.name, path]));
  return [
    `The same paths with the provider on ${across.providerNode} and the caller on ${across.callerNode}, measured right after: ` +
      `${formatCount(across.roundTripsPerPath)} round trips per path, interleaved the same way. Redis carries every call and every answer ` +
      'between the nodes, which is what most calls do in a cluster (with n nodes, n−1 of n pairs sit on different ones); ' +
      'the proxy adds the same four traversals to a longer round trip. The targets are judged on the one-node figures above.',
    '',
    markdownTable(
      ['path', 'round trips', 'p50 ms', 'p99 ms', 'p50 / direct', 'p99 / direct', 'p50 / direct on one node', 'added per traversal µs (p50)'],
      across.paths.map((path): Cell[] => [
        path.name,
        path.samples,
        path.p50Ms,
        path.p99Ms,
        path.ratioP50,
        path.ratioP99,
        sameNode.get(path.name)?.ratioP50 ?? '',
        direct && path.name !== 'direct' ? addedPerTraversalMicros(path.p50Ms, direct.p50Ms) : 0,
      ]),
    ),
    '',
    p99Caveat(across.paths),
    '',
  ];
}

/** What the p99 columns measure: the callers and providers of every path live in the one bench
 * process, so its own stalls (GC, timers, other clients' heartbeats) set the tail on every path. */
function p99Caveat(paths: readonly LatencyPath[]): string {
  const below = paths.filter((path) => path.name !== 'direct' && path.ratioP99 < 1);
  return (
    'p99 ms and p99 / direct: the caller and provider of every path run as clients in one Node process (the bench ' +
    'process), so a p99 includes that process\'s own stalls (garbage collection, timers, the other clients\' heartbeats), ' +
    'which land on whichever path is being measured, direct included' +
    (below.length > 0
      ? `; that is how the p99 of ${below.map((path) => `${path.name} (${path.ratioP99})`).join(', ')} can lie below direct's, which no relay causes`
      : '') +
    '. The p99 columns are the tail of that shared client process as much as of the path; the targets are judged on p50 only.'
  );
}

/** "44–52" (rounded) from shares in percent; one figure when all agree. */
function percentRange(values: readonly number[]): string {
  const low = Math.round(Math.min(...values));
  const high = Math.round(Math.max(...values));
  return low === high ? String(low) : `${low}–${high}`;
}

function cpuSplitSection(latency: LatencyResults): string[] {
  const paths = Object.entries(latency.proxyCpuSplits ?? {});
  if (paths.length === 0) return [];
  return [
    "Where the proxy's CPU went per relayed message (`perf record -e cpu-clock -g` on its processes over extra, untimed round trips; " +
      'each sample sorted by its stack, the first matching row wins; percent of samples):',
    '',
    markdownTable(
      ['path', 'samples', ...PROFILE_KINDS.map((kind) => PROFILE_KIND_LABELS[kind])],
      paths.map(([path, split]): Cell[] => [path, split.samples, ...PROFILE_KINDS.map((kind) => split.percent[kind])]),
    ),
    '',
    'A send on loopback runs the receiving socket\'s TCP input in the sender\'s context and wakes the process waiting on it; a proxy ' +
      'that slept in epoll_wait is switched back in for each message. Here those two took ' +
      `${percentRange(paths.map(([, split]) => waitingPercent(split)))}% of the proxies' CPU and their own code ` +
      `${percentRange(paths.map(([, split]) => split.percent.user))}%: a relay adds one wake-up and one sleep per traversal, whatever its configuration.`,
    '',
  ];
}

function relayFloorSection(latency: LatencyResults): string[] {
  const floor = latency.relayFloor;
  if (!floor) return [];
  return [
    '### The relay floor of this machine',
    '',
    `A bare TCP ping-pong (${floor.messageBytes}-byte message, echoed by a separate process) straight to the echo process and through ` +
      `three relays of it, interleaved the same way: ${formatCount(floor.roundTripsPerPath)} round trips per path after ` +
      `${formatCount(floor.warmupPerPath)} warm-up ones. No deepstream and no WebSocket framing, so the difference to direct is the relay ` +
      'alone; a round trip crosses it twice.',
    '',
    markdownTable(
      ['path', 'what', 'round trips', 'p50 µs', 'p99 µs', 'added per traversal µs (p50)'],
      floor.paths.map((path): Cell[] => [path.name, path.description, path.samples, path.p50Micros, path.p99Micros, path.addedPerTraversalMicros]),
    ),
    '',
  ];
}

function latencySection(latency: LatencyResults): string[] {
  const direct = latency.paths.find((path) => path.name === 'direct');
  const ofPath = latency.proxyCpuMicrosPerMessageOfPath;
  const rows = latency.paths.map((path): Cell[] => [
    path.name,
    path.description,
    path.samples,
    path.p50Ms,
    path.p99Ms,
    path.ratioP50,
    path.ratioP99,
    path.anchor ?? '',
    direct && path.name !== 'direct' ? addedPerTraversalMicros(path.p50Ms, direct.p50Ms) : 0,
    ...(ofPath ? [ofPath[path.name] ?? ''] : []),
  ]);
  return [
    '## 1. RPC latency',
    '',
    `Client B makes an RPC that client A provides; both connect through the path and are pinned to the same node, so a round trip ` +
      `crosses the path four times and never Redis: the proxy's share of a round trip is the largest it can be. ${formatCount(latency.roundTripsPerPath)} measured round trips per path after ` +
      `${formatCount(latency.warmupPerPath)} warm-up ones; paths interleaved in batches of ${latency.batch}, order rotated every round` +
      ((latency.pairsPerPath ?? 1) > 1
        ? `; ${latency.pairsPerPath} caller/provider pairs per path on their own connections, one per visit in turn, so which worker or ` +
          'thread each connection landed on is averaged out (the even/odd split below then includes that placement).'
        : '.'),
    '',
    markdownTable(
      [
        'path',
        'what',
        'round trips',
        'p50 ms',
        'p99 ms',
        'p50 / direct',
        'p99 / direct',
        'anchor (p50 ratio, by hand)',
        'added per traversal µs (p50)',
        ...(ofPath ? ['proxy CPU µs per relayed message (this path)'] : []),
      ],
      rows,
    ),
    '',
    ...(ofPath
      ? [
          "proxy CPU µs per relayed message (this path): the CPU time of the path's relay processes (all their threads, " +
            '/proc/<pid>/task/*/schedstat in ns) read before and after each measured visit, while only that path\'s round trips ' +
            'cross them, divided by the messages of those visits. Work a process finishes after the read (going back to sleep) ' +
            'counts on its next visit.',
          '',
        ]
      : []),
    p99Caveat(latency.paths),
    '',
    ...acrossNodesSection(latency),
    `CPU during the latency phase (${latency.cpu.wallSeconds} s), and what each proxy process spent per message it relayed ` +
      `(a round trip is ${TRAVERSALS_PER_ROUND_TRIP} messages through the proxy):`,
    '',
    cpuTable(latency.cpu),
    '',
    markdownTable(
      ['proxy process', 'paths it relays', 'CPU µs per relayed message', 'context switches per relayed message'],
      Object.entries(latency.proxyCpuMicrosPerMessage).map(([name, micros]): Cell[] => [
        name,
        pathsOfProxy(latency.proxyComponentOfPath, name).join(', '),
        micros,
        latency.proxyContextSwitchesPerMessage[name] ?? 0,
      ]),
    ),
    '',
    'Each process is metered as a whole over the phase, so these are its averages over every path it relays (all of them ' +
      'carry the same number of round trips), not figures of any one path: they do not compare paths. Per-path evidence is ' +
      (ofPath ? "the proxy CPU column of the table above, and " : '') +
      'the strace and perf tables below, each taken over untimed round trips of one path alone.',
    '',
    ...syscallSection(latency),
    ...cpuSplitSection(latency),
    'CPU time comes from /proc/<pid>/stat in 10 ms ticks. A proxy asleep in epoll_wait between messages is woken once per ' +
      'message; what a traversal adds beyond its CPU time is the wait for that wake-up on cores the nodes and clients also use.',
    '',
    ...relayFloorSection(latency),
  ];
}

/** The memory probe's rows; a row whose logins partly failed is marked approximate (≈). */
function memoryProbeTable(rows: readonly MemoryPerConnection[]): string[] {
  const failures = rows.map((row) => memoryProbeFailures(row, rows));
  const approximate = (value: number, index: number): Cell => (failures[index]!.approximate ? `≈ ${value}` : value);
  const anyInferred = failures.some((entry) => entry.inferred);
  return [
    markdownTable(
      ['path', 'what', 'connections', 'failed logins', 'first error', 'RSS KB per connection', 'PSS KB per connection'],
      rows.map((row, index): Cell[] => {
        const { failed, inferred, firstError } = failures[index]!;
        return [
          row.path,
          row.description,
          row.connections,
          failed === undefined ? (inferred ? 'not recorded in this run' : 0) : inferred ? `at least ${failed}` : failed,
          firstError ?? (inferred ? 'not recorded in this run' : failed ? 'none reported' : ''),
          approximate(row.rssKilobytesPerConnection, index),
          approximate(row.pssKilobytesPerConnection, index),
        ];
      }),
    ),
    '',
    ...(failures.some((entry) => entry.approximate)
      ? [
          '≈: some logins of that probe failed; the growth is divided by the connections that logged in, yet includes what the ' +
            'failed attempts left behind, so the figure is approximate.' +
            (anyInferred
              ? ' This run did not record failed logins or their errors: "at least N" is how many fewer connections the path ' +
                'opened than another path of the same probe (every path asks for the same number).'
              : ''),
          '',
        ]
      : []),
  ];
}

function heapProfileSection(capacity: NonNullable<BenchResults['capacity']>): string[] {
  const profiles = capacity.heapProfiles ?? [];
  if (profiles.length === 0 && capacity.heapProfileSkipped === undefined) return [];
  const lines = [
    '### Where nginx\'s memory per idle connection goes (heap profile)',
    '',
    'The nginx the build script compiled (it keeps symbols), under valgrind massif as one process, with the rendered http ' +
      'listener of the memory probe: a heap snapshot before and after the idle, logged-in clients connected, each ' +
      'allocation site\'s growth divided by the connections. A site is the first function under nginx\'s and OpenSSL\'s ' +
      'allocators; "pool block" is a new block of a pool that site started, "new pool" a pool it created. "sized by" names ' +
      'the directive that sets the size; where it is empty, nginx\'s (or OpenSSL\'s) code does.',
    '',
  ];
  if (profiles.length === 0) return [...lines, `Not run: ${capacity.heapProfileSkipped}.`, ''];
  for (const profile of profiles) {
    lines.push(
      `**${profile.path}** (${profile.description}; nginx ${profile.nginx}; ${profile.connections} connections` +
        `${profile.failed > 0 ? `, ${profile.failed} failed` : ''}): ${describeHeapProfile(profile)}.`,
      '',
      markdownTable(
        ['allocation site', 'allocation', 'bytes per connection', 'sized by'],
        profile.sites.map((site): Cell[] => [site.site, site.allocation, site.bytes, site.directive ?? '']),
      ),
      '',
    );
  }
  return lines;
}

/** How long the steps were held, as measured: a step whose logins failed is read at once, unheld. */
function holdText(run: CapacityRun, holdSeconds: number): string {
  const held = run.steps.filter((step) => step.failed === 0);
  const unheld = run.steps.filter((step) => step.failed > 0);
  const range = (values: readonly number[]): string =>
    Math.min(...values) === Math.max(...values) ? `${values[0]} s` : `${Math.min(...values)}–${Math.max(...values)} s`;
  return (
    (held.length > 0
      ? `Each step whose logins all succeeded was held for ${holdSeconds} s (measured ${range(held.map((step) => step.holdSeconds))}).`
      : '') +
    (unheld.length > 0
      ? `${held.length > 0 ? ' ' : ''}A step with failed logins is read at once, without the hold: ` +
        `${unheld.map((step) => `step ${formatCount(step.target)} held ${step.holdSeconds} s`).join(', ')}.`
      : '')
  );
}

function capacityRunSection(run: CapacityRun, holdSeconds: number): string[] {
  const rows = run.steps.map((step): Cell[] => [
    formatCount(step.target),
    step.heldFully ? 'yes' : 'NO',
    formatCount(step.openAtEnd),
    step.failed,
    step.drops,
    step.rampSeconds,
    step.nginxRssMegabytes,
    step.nginxTotalRssPer1000Megabytes,
    step.nginxRssPer1000Megabytes,
    step.nginxMaxWorkerFds,
    step.nodeRssMegabytes.join(' / '),
    (step.nodeRssAboveIdlePer1000Megabytes ?? nodeRssPer1000(run, step)).map((value) => value ?? 'n/a').join(' / '),
    step.nodeFds.join(' / '),
  ]);
  const problems = run.steps.flatMap((step) => [
    ...step.clientErrors.map((error) => `- step ${formatCount(step.target)}, client: ${error}`),
    ...step.nginxErrors.map((error) => `- step ${formatCount(step.target)}, nginx error log: ${error}`),
  ]);
  return [
    `### ${run.description}`,
    '',
    `Listener: ${run.listener}. nginx: \`worker_processes ${run.nginx.workerProcesses}; worker_connections ${run.nginx.workerConnections};\` ` +
      `worker_rlimit_nofile ${run.nginx.workerRlimitNofile}, reuseport ${run.nginx.reuseport ? 'on' : 'off'}. ` +
      `Idle nginx RSS ${run.nginxBaselineRssMegabytes} MB; idle nodes ${run.nodeBaselineRssMegabytes.join(' / ')} MB. ` +
      `${holdText(run, holdSeconds)} **Highest step held fully: ${formatCount(run.highestHeld)}.**`,
    '',
    markdownTable(
      [
        'step',
        'held',
        'open at end',
        'failed logins',
        'dropped',
        'ramp s',
        'nginx RSS MB',
        'nginx MB / 1k (total)',
        'nginx MB / 1k (above idle)',
        'max fds of a worker',
        'node RSS MB',
        'node MB / 1k (above idle)',
        'node fds',
      ],
      rows,
    ),
    '',
    'node MB / 1k (above idle): each node\'s RSS growth above its own idle RSS, divided by the thousands of connections it ' +
      (run.nodeBaselineFds
        ? 'holds (its open descriptors above idle). '
        : 'holds (this run did not record the nodes\' idle descriptors, so the connections open at the end are split in ' +
          'proportion to each node\'s descriptors). ') +
      'Node heaps grow and shrink with garbage collection, so these figures are noisy and can be negative.',
    '',
    ...(problems.length > 0 ? ['Errors seen:', '', ...problems, ''] : []),
    `CPU over this run (${run.cpu.wallSeconds} s):`,
    '',
    cpuTable(run.cpu),
    '',
  ];
}

export function renderResultsMarkdown(results: BenchResults): string {
  const { machine, versions } = results;
  const lines: string[] = [
    '# Benchmark results',
    '',
    '<!-- Written by `npm run bench` (bench/run.ts, bench/report.ts). Re-run instead of editing. -->',
    '',
    ...(results.quick ? ['**Quick run (`--quick`): small counts and short holds, a smoke check. Figures are not comparable to a full run.**', ''] : []),
    `- Date: ${results.date}`,
    `- Command: \`${results.command}\` (${Math.round(results.durationSeconds)} s)`,
    `- Machine: ${machine.nproc} × ${machine.cpuModel}, ${formatCount(machine.memoryMegabytes)} MB memory, Linux ${machine.kernel}, ` +
      `open-file limit ${machine.openFileLimit ?? 'unknown'} per process, 1-minute load ${machine.loadAverageAtStart} at start`,
    `- Versions: Node ${versions.node}, nginx ${versions.nginx} (Debian), HAProxy ${versions.haproxy} (Debian), ` +
      `deepstream server ${versions.deepstream} / client ${versions.deepstreamClient}, Redis ${versions.redis}, ${versions.openssl}`,
    '- Everything on loopback on this one machine: clients, proxies, both nodes and Redis share its cores, so figures are ' +
      `comparable only inside one run: compare paths within a run, never a ratio with another run's. ${ACROSS_RUNS}`,
    '',
    '## Targets',
    '',
    markdownTable(
      ['target', 'measured', 'verdict', 'by how much', 'what limits it (from this run\'s figures)'],
      results.targets.map((verdict): Cell[] => [verdict.target, verdict.measured, verdictCell(verdict.met), verdict.note, verdict.limit]),
    ),
    '',
  ];
  if (results.latency) lines.push(...latencySection(results.latency));
  if (results.capacity) {
    lines.push(
      '## 2. Capacity',
      '',
      `Idle, logged-in WebSocket connections through one nginx to the 2-node cluster, from ${results.capacity.clientProcesses} client ` +
        'processes (each under the 20,000 open-file limit, each with its own 127.0.0.x source address). Connections are added ' +
        'step by step and kept: a step holds fully when every connection logged in and none was lost by the end of its hold. ' +
        'RSS is the sum over nginx master and workers (and per node) from /proc; "above idle" subtracts the RSS before the first step.',
      '',
    );
    if (results.capacity.memoryPerConnection.length > 0) {
      lines.push(
        '### Memory per idle connection, by proxy and mode',
        '',
        'The same number of idle, logged-in clients through each listener in turn, each time on fresh proxy processes ' +
          '(nginx reloaded, HAProxy restarted, so no memory freed by an earlier probe is reused), listeners at the settings ' +
          'the latency phase used; growth of the proxy\'s RSS and PSS divided by the connections. This is what each mode costs ' +
          'per connection: the L7 request state and buffers of http mode, the L4 session of stream mode, and what TLS adds.',
        '',
        ...memoryProbeTable(results.capacity.memoryPerConnection),
      );
    }
    lines.push(...heapProfileSection(results.capacity));
    for (const run of results.capacity.runs) lines.push(...capacityRunSection(run, results.capacity.holdSeconds));
  }
  if (results.fanout) {
    const fanout = results.fanout;
    lines.push(
      '## 3. Fan-out',
      '',
      `One publisher, ${formatCount(fanout.subscribers)} subscribers per path spread over both nodes ` +
        `(${Object.entries(fanout.subscribersPerNode)
          .map(([key, count]) => `${key}: ${count}`)
          .join(', ')}). ${fanout.eventsPerRun} events per run, ${fanout.window} in flight (a new one when an older one reached every ` +
        `subscriber); ${fanout.rounds} rounds with the path order rotated; medians over rounds. The publisher connects through the same path.`,
      '',
      markdownTable(
        [
          'path',
          'what',
          'deliveries/s',
          'ratio to direct',
          'delivery p50 ms',
          'delivery p99 ms',
          'CPU µs per delivery (all processes)',
          'of which proxy',
          'CPU-bound ceiling of the ratio',
        ],
        fanout.paths.map((path): Cell[] => [
          path.name,
          path.description,
          formatCount(path.deliveriesPerSecond),
          path.ratioToDirect,
          path.p50Ms,
          path.p99Ms,
          path.cpuMicrosPerDelivery,
          path.proxyCpuMicrosPerDelivery,
          path.cpuBoundCeiling,
        ]),
      ),
      '',
      'The ceiling is direct\'s CPU per delivery divided by the path\'s: on cores shared by clients, nodes and proxy, a run that ' +
        'uses them all cannot deliver faster through the proxy than that ratio allows.',
      '',
      'Each run:',
      '',
      markdownTable(
        ['round', 'path', 'deliveries', 's', 'deliveries/s', 'p50 ms', 'p99 ms'],
        fanout.runs.map((run): Cell[] => [run.round + 1, run.path, run.deliveries, run.seconds, formatCount(run.deliveriesPerSecond), run.p50Ms, run.p99Ms]),
      ),
      '',
    );
    for (const [path, profile] of Object.entries(fanout.cpu)) {
      lines.push(`CPU during the ${path} runs (${profile.wallSeconds} s):`, '', cpuTable(profile), '');
    }
  }
  if (results.failover) {
    const failover = results.failover;
    lines.push(
      '## 4. Failover',
      '',
      `${failover.clientsPerRun} clients through the TLS http listener, subscribed to a tick published every ${failover.tickIntervalMs} ms ` +
        'straight to the surviving node; kill -9 of the other node. "All back" runs from the kill until the last affected client is ' +
        `logged in again. **Median of runs: ${failover.medianAllBackMs === null ? 'not all clients came back' : `${failover.medianAllBackMs} ms`}.**`,
      '',
      markdownTable(
        [
          'run',
          'killed',
          'clients',
          'affected',
          'loss noticed ms (median / last client)',
          'all back ms',
          'median client back ms',
          'not back',
          'moved to survivor',
          'ticks',
          'lost per affected (mean / max)',
          'lost by unaffected',
        ],
        failover.runs.map((run): Cell[] => [
          run.run,
          run.killedNode,
          run.clients,
          run.affected,
          run.lastClientLostMs === undefined ? 'not recorded in this run' : `${run.medianClientLostMs ?? 'n/a'} / ${run.lastClientLostMs ?? 'n/a'}`,
          run.allBackMs ?? 'never',
          run.medianClientBackMs ?? 'n/a',
          run.notBack,
          run.movedToSurvivor,
          run.eventsPublished,
          `${run.lostPerAffectedMean} / ${run.lostPerAffectedMax}`,
          run.lostByUnaffected,
        ]),
      ),
      '',
      'CPU from the kill until every client was back, % of all cores (a sum near 100% means recovery waited for CPU):',
      '',
      markdownTable(
        ['run', 'window s', 'benchmark processes', 'whole machine', 'busiest'],
        failover.runs.map((run): Cell[] => {
          const shares = Object.entries(run.recoveryCpu.percentOfMachine).sort((a, b) => b[1] - a[1]);
          const total = Math.round(shares.reduce((sum, [, share]) => sum + share, 0) * 10) / 10;
          return [
            run.run,
            run.recoveryCpu.wallSeconds,
            `${total}%`,
            `${run.recoveryCpu.machineBusyPercent ?? 'n/a'}%`,
            shares.slice(0, 3).map(([name, share]) => `${name} ${share}%`).join(', '),
          ];
        }),
      ),
      '',
    );
  }
  if (results.tooling) {
    lines.push(
      '## 5. Tooling',
      '',
      markdownTable(
        ['tool', 'command', 'wall s', 'ok', 'note'],
        results.tooling.map((tool): Cell[] => [tool.name, `\`${tool.command}\``, tool.seconds ?? 'n/a', tool.ok ? 'yes' : 'NO', tool.note]),
      ),
      '',
    );
  }
  if (results.errors.length > 0) {
    lines.push('## Errors', '', ...results.errors.map((error) => `- ${error}`), '');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

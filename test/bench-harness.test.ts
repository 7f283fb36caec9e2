/**
 * The benchmark's pure pieces: percentiles, interleaving, the spread of connections over client
 * processes, loss counting, the target verdicts, the Markdown tables of RESULTS.md, and the seed
 * configuration expressed as renderer input (checked with the real `nginx -t`). No timing here.
 */
import fc from 'fast-check';
import { memoryProbeFailures, nginxSettingsOf, nodeConnections, nodeRssPer1000, stepHeldFully } from '../bench/capacity';
import { CAPACITY_NGINX, SEED_NGINX } from '../bench/plan';
import { markdownTable, renderResultsMarkdown } from '../bench/report';
import type { BenchResults, CapacityRun, LatencyPath, MemoryPerConnection } from '../bench/results';
import { classifyStack, parsePerfScript, splitProfile } from '../bench/cpu-profile';
import { parseStraceSummary, pathFigures, splitHalfSpread, type RecordedPath } from '../bench/latency';
import { bareHttpConf, bareStreamConf } from '../bench/bare-nginx';
import { interleavedOrder, median, missingInRange, quantile, ratio, spread, summarize } from '../bench/stats';
import { judgeTargets } from '../bench/targets';
import { renderNginxConf } from '../nginx/conf';
import type { NginxSpec } from '../nginx/spec';
import { deepstreamBackend } from '../servers/deepstream';
import { checkNginxConf, makeNginxPrefix } from './helpers/nginx';

describe('percentiles', () => {
  it('uses the nearest rank: p50 and p99 of 1..100 are 50 and 99, p100 the maximum, p0 the minimum', () => {
    const samples = Array.from({ length: 100 }, (_, index) => 100 - index);
    expect(quantile(samples, 0.5)).toBe(50);
    expect(quantile(samples, 0.99)).toBe(99);
    expect(quantile(samples, 1)).toBe(100);
    expect(quantile(samples, 0)).toBe(1);
    expect(quantile([7], 0.99)).toBe(7);
  });

  it('never invents a value: p50 of an even count is the lower middle sample', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(median([10, 40, 20, 30])).toBe(20);
  });

  it('returns a sample with at least q of the samples at or below it, and none smaller qualifies', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 300 }), fc.double({ min: 0, max: 1, noNaN: true }), (samples, q) => {
        const value = quantile(samples, q);
        expect(samples).toContain(value);
        const atOrBelow = samples.filter((sample) => sample <= value).length;
        expect(atOrBelow / samples.length).toBeGreaterThanOrEqual(q);
        const below = samples.filter((sample) => sample < value).length;
        expect(below / samples.length).toBeLessThan(Math.max(q, Number.MIN_VALUE));
      }),
      { numRuns: 200 },
    );
  });

  it('is monotonic in q', () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { minLength: 1, maxLength: 100 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (samples, a, b) => {
        const [low, high] = a <= b ? [a, b] : [b, a];
        expect(quantile(samples, low)).toBeLessThanOrEqual(quantile(samples, high));
      }),
    );
  });

  it('summarize agrees with quantile and computes the mean', () => {
    const summary = summarize([5, 1, 4, 2, 3]);
    expect(summary).toEqual({ count: 5, min: 1, p50: 3, p90: 5, p99: 5, max: 5, mean: 3 });
  });

  it('summarize orders samples by value, not as text: multi-digit samples', () => {
    // As strings these sort 10, 100, 2, 25, 9, 950: min 10, p50 2, max 950.
    const summary = summarize([25, 9, 100, 2, 950, 10]);
    expect(summary).toEqual({ count: 6, min: 2, p50: 10, p90: 950, p99: 950, max: 950, mean: 1096 / 6 });
    expect(summarize([0.35, 1.2, 12.5, 0.9]).p50).toBe(0.9);
    expect(quantile([25, 9, 100, 2, 950, 10], 0.5)).toBe(10);
  });

  it('refuses empty samples and q outside 0..1 with a clear message', () => {
    expect(() => quantile([], 0.5)).toThrow('quantile: no samples');
    expect(() => quantile([1], 1.5)).toThrow('quantile: q 1.5; allowed: a number from 0 to 1');
    expect(() => summarize([])).toThrow('summarize: no samples');
  });

  it('ratio rounds to two decimals and refuses a zero baseline', () => {
    expect(ratio(0.55, 0.4)).toBe(1.38);
    expect(ratio(3, 3)).toBe(1);
    expect(() => ratio(1, 0)).toThrow('ratio: baseline 0; allowed: a positive number');
  });
});

describe('interleaving and spreading', () => {
  it('every round visits every path once, and over n rounds each path holds each position once', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 1000 }), (count, start) => {
        const paths = Array.from({ length: count }, (_, index) => `p${index}`);
        const positions = new Map(paths.map((path) => [path, new Set<number>()]));
        for (let round = start; round < start + count; round += 1) {
          const order = interleavedOrder(paths, round);
          expect([...order].sort()).toEqual([...paths].sort());
          order.forEach((path, position) => positions.get(path)!.add(position));
        }
        for (const seen of positions.values()) expect(seen.size).toBe(count);
      }),
    );
  });

  it('spread sums to the total and differs by at most one between parts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 1, max: 64 }), (total, parts) => {
        const shares = spread(total, parts);
        expect(shares).toHaveLength(parts);
        expect(shares.reduce((a, b) => a + b, 0)).toBe(total);
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
      }),
    );
    expect(spread(20_000, 4)).toEqual([5000, 5000, 5000, 5000]);
    expect(() => spread(10, 0)).toThrow('spread: parts 0; allowed: an integer >= 1');
  });

  it('missingInRange counts the sequence numbers a client never received, ignoring duplicates and strays', () => {
    expect(missingInRange([1, 2, 3, 7, 8, 8, 100], 1, 10)).toBe(5);
    expect(missingInRange([], 5, 4)).toBe(0);
    expect(missingInRange([5], 5, 5)).toBe(0);
  });
});

describe('RESULTS.md tables', () => {
  it('renders a Markdown table with numeric columns right-aligned and pipes escaped', () => {
    expect(
      markdownTable(
        ['path', 'p50 ms', 'note'],
        [
          ['direct', 0.4, 'a|b'],
          ['nginx-http', 0.5, ''],
        ],
      ),
    ).toBe(['| path | p50 ms | note |', '| --- | ---: | --- |', '| direct | 0.4 | a\\|b |', '| nginx-http | 0.5 |  |'].join('\n'));
  });

  it('refuses a row whose cell count differs from the headers', () => {
    expect(() => markdownTable(['a', 'b'], [['x']])).toThrow('markdownTable: row 0 has 1 cells; allowed: 2 (one per header)');
  });
});

function latencyPath(name: string, p50Ms: number, directP50 = 0.4): LatencyPath {
  return {
    name,
    description: name,
    samples: 2000,
    p50Ms,
    p90Ms: p50Ms * 1.5,
    p99Ms: p50Ms * 3,
    meanMs: p50Ms * 1.1,
    ratioP50: ratio(p50Ms, directP50),
    ratioP99: ratio(p50Ms * 3, directP50 * 3),
    p50SplitHalfSpreadMs: 0.015,
  };
}

function capacityRun(name: string, highestHeld: number, totalPer1000: number): CapacityRun {
  return {
    name,
    description: `${name} run`,
    listener: 'test',
    nginx: { workerProcesses: '4', workerConnections: 12756, workerRlimitNofile: 13780, reuseport: true },
    nginxBaselineRssMegabytes: 40,
    nodeBaselineRssMegabytes: [80, 80],
    steps: [
      {
        target: highestHeld,
        opened: highestHeld,
        failed: 0,
        openAtEnd: highestHeld,
        drops: 0,
        heldFully: true,
        rampSeconds: 10,
        holdSeconds: 30,
        nginxRssMegabytes: (totalPer1000 * highestHeld) / 1000,
        nginxPssMegabytes: 1,
        nginxRssPer1000Megabytes: totalPer1000 - 2,
        nginxTotalRssPer1000Megabytes: totalPer1000,
        nginxMaxWorkerFds: 100,
        nodeRssMegabytes: [100, 100],
        nodeFds: [10, 10],
        clientErrors: [],
        nginxErrors: [],
      },
    ],
    highestHeld,
    cpu: { wallSeconds: 1, seconds: {}, percentOfMachine: {} },
  };
}

const baseResults: Omit<BenchResults, 'targets'> = {
  quick: false,
  date: '2026-11-25T00:00:00.000Z',
  command: 'npm run bench',
  durationSeconds: 600,
  machine: { nproc: 2, cpuModel: 'Test CPU', memoryMegabytes: 1024, kernel: '6.0', loadAverageAtStart: 0.1, openFileLimit: 20000 },
  versions: {
    node: 'v20',
    nginx: '1.22.1',
    haproxy: '2.6.12',
    deepstream: '7.0.2',
    deepstreamClient: '7.0.5',
    redis: '7.0.15',
    openssl: 'OpenSSL 3',
  },
  latency: {
    roundTripsPerPath: 2000,
    warmupPerPath: 200,
    batch: 5,
    paths: [
      latencyPath('direct', 0.4),
      latencyPath('nginx-http', 0.48),
      latencyPath('nginx-stream', 0.5),
      latencyPath('nginx-https', 0.56),
      latencyPath('haproxy-http', 0.5),
      latencyPath('haproxy-tcp', 0.49),
      latencyPath('haproxy-https', 0.6),
    ],
    cpu: { wallSeconds: 10, seconds: { 'nginx (plain http)': 1.5 }, percentOfMachine: { 'nginx (plain http)': 7.5 } },
    proxyCpuMicrosPerMessage: { 'nginx (plain http)': 17 },
    proxyContextSwitchesPerMessage: { 'nginx (plain http)': 1.02 },
    proxyComponentOfPath: { 'nginx-http': 'nginx (plain http)', 'nginx-stream': 'nginx (TLS: https, stream)' },
    syscallsPerMessage: { 'nginx-http': { recvfrom: 1.1, sendto: 1.1, epoll_wait: 1.3 } },
  },
  capacity: {
    holdSeconds: 30,
    clientProcesses: 4,
    memoryPerConnection: [
      { path: 'nginx-http', description: 'nginx http', connections: 3000, rssKilobytesPerConnection: 18, pssKilobytesPerConnection: 17.8 },
      { path: 'nginx-https', description: 'nginx https', connections: 3000, rssKilobytesPerConnection: 53, pssKilobytesPerConnection: 47.3 },
    ],
    runs: [capacityRun('plain', 20_000, 8.5), capacityRun('tls', 15_000, 12)],
  },
  failover: { clientsPerRun: 200, tickIntervalMs: 10, runs: [], medianAllBackMs: 1200 },
  errors: [],
};

describe('target verdicts', () => {
  const verdicts = judgeTargets(baseResults);
  const verdict = (start: string) => {
    const found = verdicts.find((entry) => entry.target.startsWith(start));
    if (!found) throw new Error(`no verdict starting with ${start}: ${verdicts.map((entry) => entry.target).join('; ')}`);
    return found;
  };

  it('judges latency ratios against their targets and says by how much one is missed', () => {
    expect(verdict('RPC p50 ratio to direct ≤ 1.25 via http')).toMatchObject({ met: true, note: '' });
    expect(verdict('RPC p50 ratio to direct ≤ 1.2 via stream')).toMatchObject({ met: false, note: 'missed by 0.05 (4%)' });
    expect(verdict('RPC p50 ratio to direct ≤ 1.45 via TLS (http mode)')).toMatchObject({ met: true });
  });

  it('explains a missed latency target with the time per traversal, the proxy\'s CPU and syscalls, and the budget', () => {
    expect(verdict('RPC p50 ratio to direct ≤ 1.2 via stream').limit).toBe(
      'each of the 4 traversals of a round trip adds 25 µs at p50; the target allows 20 µs per traversal against a direct round trip of 400 µs',
    );
    const withProfile = judgeTargets({
      ...baseResults,
      latency: {
        ...baseResults.latency!,
        proxyComponentOfPath: { ...baseResults.latency!.proxyComponentOfPath, 'nginx-stream-tls': 'nginx (TLS: https, stream)' },
        proxyCpuMicrosPerMessage: { 'nginx (TLS: https, stream)': 30 },
        syscallsPerMessage: { 'nginx-stream': { recvfrom: 1, writev: 1, epoll_wait: 1.2 } } },
    }).find((entry) => entry.target.includes('via stream'))!;
    expect(withProfile.limit).toContain(
      'its proxy process (nginx (TLS: https, stream)) averaged 30 µs CPU per relayed message over all 2 paths it relays ' +
        "(nginx-stream, nginx-stream-tls), a process figure, not this path's; " +
        'strace over untimed round trips of this path alone: 1 recvfrom, 1 writev, 1.2 epoll_wait per relayed message; ',
    );
    expect(verdict('RPC p50 ratio to direct ≤ 1.25 via http').limit).toBe('');
    const withSplit = judgeTargets({
      ...baseResults,
      latency: { ...baseResults.latency!, proxyCpuSplits: { 'nginx-stream': { samples: 2000, percent: { wake: 40, switch: 22.5, kernel: 25, user: 12.5 } } } },
    }).find((entry) => entry.target.includes('via stream'))!;
    expect(withSplit.limit).toContain(
      "perf: 62.5% of the proxy's CPU is waking the process on the other side (40%) and sleeping until the next message (22.5%), 25% other kernel work, 12.5% the proxy's own code; ",
    );
  });

  it('uses the path\'s own proxy CPU when the run measured it per path, and shows it as a column', () => {
    const latency = { ...baseResults.latency!, proxyCpuMicrosPerMessageOfPath: { 'nginx-http': 21.5, 'nginx-stream': 33.2 } };
    const stream = judgeTargets({ ...baseResults, latency }).find((entry) => entry.target.includes('via stream'))!;
    expect(stream.limit).toContain('its relay processes spent 33.2 µs CPU per message of this path (schedstat around each visit); ');
    expect(stream.limit).not.toContain('averaged');
    const markdown = renderResultsMarkdown({ ...baseResults, latency, targets: [] });
    expect(markdown).toContain('proxy CPU µs per relayed message (this path)');
    expect(markdown.split('\n').find((line) => line.startsWith('| nginx-stream |'))).toMatch(/\| 25 \| 33\.2 \|$/);
  });

  it('compares each nginx path with the HAProxy path configured the same way, against the run\'s own noise', () => {
    expect(verdict('nginx-http no slower than haproxy-http')).toMatchObject({ met: true });
    expect(verdict('nginx-stream no slower than haproxy-tcp')).toMatchObject({
      met: false,
      note: 'slower by 10 µs',
      limit: '10 µs apart; the p50 of even and odd rounds of one path differs by up to 15 µs in this run, so the order is within noise',
    });
    expect(verdict('nginx-https no slower than haproxy-https')).toMatchObject({ met: true });
    expect(verdicts.some((entry) => entry.target.startsWith('nginx-stream-tls'))).toBe(false);
    const latency = baseResults.latency!;
    const withSwitches = judgeTargets({
      ...baseResults,
      latency: {
        ...latency,
        proxyComponentOfPath: { ...latency.proxyComponentOfPath, 'haproxy-tcp': 'haproxy' },
        proxyContextSwitchesPerMessage: { 'nginx (TLS: https, stream)': 1.1, haproxy: 0.6 },
      },
    }).find((entry) => entry.target.startsWith('nginx-stream no slower'))!;
    // Process averages over every path a process relays do not compare two paths.
    expect(withSwitches.limit).not.toContain('context switches');
  });

  it('compares the CPU time nginx and HAProxy spent on the same untimed round trips of a path', () => {
    // nginx-stream (0.5 ms) is slower than haproxy-tcp (0.49 ms) in baseResults.
    const split = (samples: number) => ({ samples, percent: { wake: 20, switch: 30, kernel: 30, user: 20 } });
    const comparing = (nginxSamples: number) =>
      judgeTargets({
        ...baseResults,
        latency: { ...baseResults.latency!, proxyCpuSplits: { 'nginx-stream': split(nginxSamples), 'haproxy-tcp': split(800) } },
      }).find((entry) => entry.target.startsWith('nginx-stream no slower'))!.limit;
    expect(comparing(600)).toMatch(
      /CPU time over the same untimed round trips \(perf samples\): nginx 600, HAProxy 800: nginx used no more CPU yet answered later, so the gap is time waiting to run, not the proxy's work$/,
    );
    expect(comparing(900)).toMatch(/\(perf samples\): nginx 900, HAProxy 800$/);
  });

  it('takes the difference between two identical nginx listeners as noise too when the run measured the twin', () => {
    // nginx-stream 0.5 ms against haproxy-tcp 0.47 ms: 30 µs apart, beyond the 15 µs split-half spread.
    const withTwin = (twinP50: number) =>
      judgeTargets({
        ...baseResults,
        latency: {
          ...baseResults.latency!,
          paths: [
            ...baseResults.latency!.paths.filter((path) => path.name !== 'haproxy-tcp'),
            latencyPath('haproxy-tcp', 0.47),
            latencyPath('nginx-stream-twin', twinP50),
          ],
        },
      }).find((entry) => entry.target.startsWith('nginx-stream no slower'))!;
    expect(withTwin(0.465)).toMatchObject({
      met: false,
      note: 'slower by 30 µs',
      limit:
        '30 µs apart; the p50 of even and odd rounds of one path differs by up to 15 µs in this run, and two identical nginx stream ' +
        'listeners (nginx-stream and nginx-stream-twin) by 35 µs, so the order is within noise',
    });
    expect(withTwin(0.49).limit).toContain('by 10 µs, so the order is beyond that noise');
  });

  it('says when the two sides of a comparison run in processes that relay different numbers of paths, with the A/B control', () => {
    const latency = {
      ...baseResults.latency!,
      paths: [...baseResults.latency!.paths, latencyPath('nginx-stream-alone', 0.54)],
      proxyComponentOfPath: {
        'nginx-http': 'nginx (plain http)',
        'nginx-stream': 'nginx (TLS: https, stream)',
        'nginx-https': 'nginx (TLS: https, stream)',
        'nginx-stream-alone': 'nginx (plain stream, no other path)',
        'haproxy-http': 'haproxy',
        'haproxy-tcp': 'haproxy',
        'haproxy-https': 'haproxy',
      },
    };
    const verdicts = judgeTargets({ ...baseResults, latency });
    // nginx-stream 0.5 ms shared, 0.54 ms alone: 40 µs per round trip, 10 µs per traversal.
    expect(verdicts.find((entry) => entry.target.startsWith('nginx-http no slower'))!.limit).toContain(
      "; nginx-http's nginx relays no other path, haproxy-http's HAProxy 3 (in this run one listener relayed 10 µs per traversal later alone in its nginx than shared: the A/B control)",
    );
    // Two paths against three still differ; equal counts say nothing.
    expect(verdicts.find((entry) => entry.target.startsWith('nginx-stream no slower'))!.limit).toContain("nginx-stream's nginx relays 2 paths, haproxy-tcp's HAProxy 3");
    const even = judgeTargets({
      ...baseResults,
      latency: { ...latency, proxyComponentOfPath: { ...latency.proxyComponentOfPath, 'haproxy-https': 'haproxy (TLS)' } },
    });
    expect(even.find((entry) => entry.target.startsWith('nginx-stream no slower'))!.limit).not.toContain('relays');
    expect(verdicts.find((entry) => entry.target.startsWith('RPC p50 ratio to direct ≤ 1.2 via stream'))!.limit).toContain(
      'one plain stream listener added 35 µs per traversal in an nginx that relays no other path (nginx-stream-alone) and 25 µs in the nginx shared with the TLS paths (nginx-stream)',
    );
  });

  it('judges capacity, memory per 1,000 connections and failover', () => {
    expect(verdict('20,000 connections held through one nginx (plain)')).toMatchObject({ met: true });
    expect(verdict('20,000 connections held through one nginx (TLS)')).toMatchObject({ met: false, note: 'missed by 5,000 connections' });
    expect(verdict('≤ 10 MB nginx RSS per 1,000 connections (plain)')).toMatchObject({ met: true });
    expect(verdict('≤ 10 MB nginx RSS per 1,000 connections (TLS)')).toMatchObject({ met: false, note: 'missed by 2 (20%)' });
    // 10 MB per 1,000 at 15,000 is 150 MB, 40 MB of it idle: 110 MB / 15,000 = 7.5 KB per connection.
    expect(verdict('≤ 10 MB nginx RSS per 1,000 connections (TLS)').limit).toBe(
      '10.2 KB per connection above an idle 40 MB (preallocated 12756 connection slots in each of 4 workers); the target allows 7.5 KB at 15,000. ' +
        'KB per idle connection by mode (memory probe): nginx http 18, nginx https 53',
    );
    const probed = (path: string, kilobytes: number) => ({ path, description: path, connections: 3000, rssKilobytesPerConnection: kilobytes, pssKilobytesPerConnection: kilobytes });
    const withHaproxy = judgeTargets({
      ...baseResults,
      capacity: {
        ...baseResults.capacity!,
        memoryPerConnection: [probed('nginx-http', 12.4), probed('nginx-https', 35.4), probed('haproxy-http', 4.7), probed('haproxy-https', 20.4)],
      },
    }).find((entry) => entry.target === '≤ 10 MB nginx RSS per 1,000 connections (TLS)')!;
    expect(withHaproxy.limit).toMatch(/TLS over plain http mode costs 23 KB per connection in nginx and 15.7 KB in HAProxy; either alone exceeds the 7.5 KB the target allows per connection$/);
    expect(verdict('failover')).toMatchObject({ met: false, measured: '1200 ms', note: 'missed by 200 (20%)' });
  });

  it('explains a missed fan-out target from CPU per delivery when the cores were saturated', () => {
    const path = (name: string, perSecond: number, cpu: number, proxy: number) => ({
      name,
      description: name,
      deliveriesPerSecond: perSecond,
      p50Ms: 100,
      p99Ms: 200,
      ratioToDirect: ratio(perSecond, 50_000),
      cpuMicrosPerDelivery: cpu,
      proxyCpuMicrosPerDelivery: proxy,
      cpuBoundCeiling: ratio(40, cpu),
    });
    const cpu = (busy: number) => ({ wallSeconds: 10, seconds: {}, percentOfMachine: {}, machineBusyPercent: busy });
    const fanout = {
      subscribers: 1000,
      subscribersPerNode: {},
      eventsPerRun: 120,
      window: 8,
      rounds: 3,
      paths: [path('direct', 50_000, 40, 0), path('nginx-http', 38_000, 52, 11)],
      runs: [],
      cpu: { direct: cpu(97), 'nginx-http': cpu(98) },
    };
    const found = judgeTargets({ ...baseResults, fanout }).find((entry) => entry.target.startsWith('fan-out via nginx-http'))!;
    expect(found).toMatchObject({ met: false, note: 'missed by 0.14 (16%)' });
    expect(found.limit).toBe(
      'the cores were 98% busy: CPU-bound. nginx spends 11 µs CPU per delivery on cores that also run nodes and clients ' +
        '(40 µs per delivery direct, 52 µs through nginx), which caps the ratio at 0.77; 0.9× needs ≤ 4.4 µs per delivery in the proxy',
    );
  });

  it('RESULTS.md says what the p99 columns measure, names paths whose p99 lies below direct\'s, and that targets use p50', () => {
    const latency = baseResults.latency!;
    const paths = [...latency.paths, { ...latencyPath('nginx-stream-tls', 0.52), p99Ms: 1.1, ratioP99: 0.92 }];
    const markdown = renderResultsMarkdown({ ...baseResults, latency: { ...latency, paths }, targets: [] });
    expect(markdown).toContain('p99 ms and p99 / direct: the caller and provider of every path run as clients in one Node process');
    expect(markdown).toContain("that is how the p99 of nginx-stream-tls (0.92) can lie below direct's");
    expect(markdown).toContain('the targets are judged on p50 only');
  });

  it('RESULTS.md says ratios compare only inside one run, with how far they moved across the committed runs', () => {
    const markdown = renderResultsMarkdown({ ...baseResults, targets: [] });
    expect(markdown).not.toContain('±0.1');
    expect(markdown).toContain('compare paths within a run');
    expect(markdown).toContain('nginx-stream 1.33–2.71');
  });

  it('RESULTS.md states machine, versions and command, and has a row per target and per latency path', () => {
    const markdown = renderResultsMarkdown({ ...baseResults, targets: verdicts });
    expect(markdown).toContain('- Machine: 2 × Test CPU, 1,024 MB memory, Linux 6.0');
    expect(markdown).toContain('nginx 1.22.1 (Debian), HAProxy 2.6.12 (Debian), deepstream server 7.0.2');
    expect(markdown).toContain('- Command: `npm run bench` (600 s)');
    const rows = markdown.split('\n');
    for (const entry of verdicts) expect(rows.some((row) => row.startsWith(`| ${entry.target} |`))).toBe(true);
    expect(rows).toContain('| nginx-http | nginx-http | 2000 | 0.48 | 1.44 | 1.2 | 1.2 |  | 20 |');
    expect(rows).toContain('| nginx (plain http) | nginx-http | 17 | 1.02 |');
    expect(rows).toContain('| path | epoll_wait | recvfrom | sendto |');
    expect(rows).toContain('| nginx-http | 1.3 | 1.1 | 1.1 |');
    expect(markdown).not.toContain('Quick run');
  });

  it('puts the across-nodes figures next to the one-node ratio, and the proxy\'s CPU split in a table of its own', () => {
    const latency = {
      ...baseResults.latency!,
      acrossNodes: { providerNode: 'deepstream-0', callerNode: 'deepstream-1', roundTripsPerPath: 2000, paths: [latencyPath('direct', 0.9, 0.9), latencyPath('nginx-stream', 1.06, 0.9)] },
      proxyCpuSplits: { 'nginx-stream': { samples: 2000, percent: { wake: 40, switch: 22.5, kernel: 25, user: 12.5 } } },
    };
    const results = { ...baseResults, latency };
    const markdown = renderResultsMarkdown({ ...results, targets: judgeTargets(results) });
    const rows = markdown.split('\n');
    // p50 1.06 against 0.9: ratio 1.18, 40 µs per traversal; the same path on one node was 1.25.
    expect(rows).toContain('| nginx-stream | 2000 | 1.06 | 3.18 | 1.18 | 1.18 | 1.25 | 40 |');
    expect(rows).toContain('| nginx-stream | 2000 | 40 | 22.5 | 25 | 12.5 |');
    expect(markdown).toContain("Here those two took 63% of the proxies' CPU and their own code 13%");
    expect(judgeTargets(results).find((entry) => entry.target.includes('via stream'))!.limit).toContain(
      'with caller and provider on different nodes (Redis between them, 900 µs direct) the ratio is 1.18',
    );
  });
});

describe('nginx settings of the capacity runs, rendered by renderNginxConf', () => {
  const prefix = makeNginxPrefix('bench-seed');
  afterAll(() => prefix.cleanup());
  const spec = (settings: Pick<NginxSpec, 'maxConnections' | 'workerProcesses' | 'reuseport'>): NginxSpec => ({
    http: {
      listenPort: 18080,
      tls: null,
      redirectHttpPort: null,
      backends: [{ profile: deepstreamBackend.profile, servers: [{ host: '127.0.0.1', port: 16020 }] }],
    },
    statusPort: null,
    listenAddress: '127.0.0.1',
    paths: prefix.paths,
    ...settings,
  });

  it('the seed configuration renders exactly worker_processes 1; worker_connections 1024; and nginx -t accepts it', async () => {
    const seed = spec(SEED_NGINX);
    expect(nginxSettingsOf(seed)).toMatchObject({ workerProcesses: '1', workerConnections: 1024, reuseport: false });
    const result = await checkNginxConf(renderNginxConf(seed));
    expect(result.output).toContain('test is successful');
    expect(result.ok).toBe(true);
  });

  it('the 20,000-connection settings keep every worker under the 20,000 open files a process may have here', async () => {
    const capacity = spec(CAPACITY_NGINX);
    const settings = nginxSettingsOf(capacity);
    expect(settings.workerProcesses).toBe('4');
    expect(settings.reuseport).toBe(true);
    // 5,000 clients per worker (plus reuseport skew) are 10,000+ sockets: they must fit worker_connections.
    expect(settings.workerConnections).toBeGreaterThanOrEqual(2 * (CAPACITY_NGINX.maxConnections / 4));
    expect(settings.workerRlimitNofile).toBeLessThan(20_000);
    const result = await checkNginxConf(renderNginxConf(capacity));
    expect(result.ok).toBe(true);
  });
});

describe('a capacity step', () => {
  const step = { target: 10_000, failed: 0, openAtEnd: 10_000, drops: 0 };
  it('holds fully only when every login succeeded and every connection is still open, none dropped', () => {
    expect(stepHeldFully(step)).toBe(true);
    expect(stepHeldFully({ ...step, failed: 1 })).toBe(false);
    expect(stepHeldFully({ ...step, openAtEnd: 9_999 })).toBe(false);
    expect(stepHeldFully({ ...step, drops: 3 })).toBe(false);
  });
});

describe('node memory per 1,000 connections', () => {
  // The plain run at 20,000 of the stored full run: idle nodes 110.12 / 113.75 MB.
  const step = { openAtEnd: 20_000, nodeRssMegabytes: [137.7, 141.39], nodeFds: [10_025, 10_023] };
  const run = { nodeBaselineRssMegabytes: [110.12, 113.75] };

  it('is each node\'s growth above its own idle RSS per 1,000 of its own connections, not its whole RSS', () => {
    expect(nodeConnections([25, 23], step)).toEqual([10_000, 10_000]);
    expect(nodeRssPer1000({ ...run, nodeBaselineFds: [25, 23] }, step)).toEqual([2.76, 2.76]);
  });

  it('splits the open connections by descriptors when the run did not record the idle ones', () => {
    expect(nodeConnections(undefined, step)).toEqual([10_001, 9_999]);
    expect(nodeRssPer1000(run, step)).toEqual([2.76, 2.76]);
  });

  it('is null for a node holding no connection, and may be negative after a collection', () => {
    const shrunk = { openAtEnd: 5000, nodeRssMegabytes: [83.54, 110.12], nodeFds: [5025, 23] };
    expect(nodeRssPer1000({ ...run, nodeBaselineFds: [25, 23] }, shrunk)).toEqual([-5.32, null]);
  });

  it('is a column of each capacity table, computed from the stored step data of older runs', () => {
    const markdown = renderResultsMarkdown({ ...baseResults, targets: [] });
    expect(markdown).toContain('node MB / 1k (above idle)');
    // capacityRun(): nodes at 100 MB over an idle 80 MB, 10 descriptors each, 20,000 open.
    const row = markdown.split('\n').find((line) => line.startsWith('| 20,000 |'))!;
    expect(row).toContain('| 100 / 100 | 2 / 2 | 10 / 10 |');
  });
});

describe('memory probe rows with failed logins', () => {
  const row = (path: string, connections: number, extra: Partial<MemoryPerConnection> = {}): MemoryPerConnection => ({
    path,
    description: path,
    connections,
    rssKilobytesPerConnection: 17.8,
    pssKilobytesPerConnection: 17.6,
    ...extra,
  });

  it('show the failed count and first error, and mark the KB figures approximate', () => {
    const rows = [
      row('nginx-http-bare', 2842, { requested: 3000, failed: 158, firstError: 'login timed out after 20000 ms' }),
      row('nginx-http', 3000, { requested: 3000, failed: 0 }),
    ];
    const markdown = renderResultsMarkdown({ ...baseResults, capacity: { ...baseResults.capacity!, memoryPerConnection: rows }, targets: [] });
    expect(markdown).toContain('| nginx-http-bare | nginx-http-bare | 2842 | 158 | login timed out after 20000 ms | ≈ 17.8 | ≈ 17.6 |');
    expect(markdown).toContain('| nginx-http | nginx-http | 3000 | 0 |  | 17.8 | 17.6 |');
    expect(markdown).toContain('≈: some logins of that probe failed');
  });

  it('of runs that did not record failures: at least the gap to another path, and the error not recorded', () => {
    const rows = [row('nginx-http-bare', 2842), row('nginx-http', 3000)];
    expect(memoryProbeFailures(rows[0]!, rows)).toEqual({ failed: 158, inferred: true, firstError: undefined, approximate: true });
    expect(memoryProbeFailures(rows[1]!, rows)).toMatchObject({ failed: undefined, approximate: false });
    const markdown = renderResultsMarkdown({ ...baseResults, capacity: { ...baseResults.capacity!, memoryPerConnection: rows }, targets: [] });
    expect(markdown).toContain('| nginx-http-bare | nginx-http-bare | 2842 | at least 158 | not recorded in this run | ≈ 17.8 |');
  });
});

describe('capacity hold and failover wording', () => {
  it('says how long steps were held, and that a step with failed logins was read at once', () => {
    const run = capacityRun('seed', 250, 40);
    const failedStep = { ...run.steps[0]!, target: 500, opened: 480, failed: 20, openAtEnd: 480, heldFully: false, holdSeconds: 0 };
    const seed = { ...run, steps: [{ ...run.steps[0]!, holdSeconds: 30.02 }, failedStep] };
    const markdown = renderResultsMarkdown({ ...baseResults, capacity: { ...baseResults.capacity!, runs: [seed] }, targets: [] });
    expect(markdown).not.toContain('Each step held 30 s');
    expect(markdown).toContain(
      'Each step whose logins all succeeded was held for 30 s (measured 30.02 s). A step with failed logins is read at once, without the hold: step 500 held 0 s.',
    );
  });

  const failoverRun = (allBackMs: number | null, extra: object = {}) => ({
    run: 1,
    clients: 200,
    affected: 100,
    killedNode: 'deepstream-1',
    allBackMs,
    medianClientBackMs: 331,
    notBack: allBackMs === null ? 4 : 0,
    eventsPublished: 107,
    lostPerAffectedMean: 36.7,
    lostPerAffectedMax: 40,
    lostByUnaffected: 0,
    movedToSurvivor: 100,
    recoveryCpu: { wallSeconds: 1.3, seconds: {}, percentOfMachine: { 'client processes': 47.1, 'deepstream-0': 22.3, redis: 1 }, machineBusyPercent: 93.4 },
    ...extra,
  });
  const failoverVerdict = (runs: ReturnType<typeof failoverRun>[], medianAllBackMs: number | null) =>
    judgeTargets({ ...baseResults, failover: { clientsPerRun: 200, tickIntervalMs: 10, runs, medianAllBackMs } }).find((entry) =>
      entry.target.startsWith('failover'),
    )!;

  it('explains a missed failover target from the run\'s reconnect and detection times and CPU; a met one needs nothing', () => {
    expect(failoverVerdict([failoverRun(1300, { medianClientLostMs: 3, lastClientLostMs: 12 })], 1300)).toMatchObject({
      met: false,
      limit:
        'run 1 (deepstream-1 killed): slowest affected client back after 1300 ms, median client 331 ms; loss noticed by the median ' +
        'client after 3 ms, by the last after 12 ms; cores 93.4% busy meanwhile (client processes 47.1%, deepstream-0 22.3%)',
    });
    expect(failoverVerdict([failoverRun(null)], null).limit).toContain(
      'run 1 (deepstream-1 killed): 4 of 100 affected clients not back within the 30 s watched; when clients noticed the loss not recorded in this run',
    );
    expect(failoverVerdict([failoverRun(400)], 400)).toMatchObject({ met: true, limit: '' });
  });
});

describe('quick runs', () => {
  it('give no verdicts: their counts are too small to judge a target', () => {
    const verdicts = judgeTargets({ ...baseResults, quick: true });
    expect(verdicts.length).toBeGreaterThan(0);
    for (const verdict of verdicts) expect(verdict).toMatchObject({ met: null, note: 'quick run: small counts, no verdict' });
    expect(renderResultsMarkdown({ ...baseResults, quick: true, targets: verdicts })).toContain('**Quick run (`--quick`)');
  });
});

describe('latency figures of a path from its rounds', () => {
  // Warm-up rounds are far slower than measured ones, so keeping them shows in every figure.
  const warm = [50, 60];
  const recorded: RecordedPath[] = [
    { name: 'direct', rounds: [warm, warm, [10, 12], [12, 14], [11, 13]] },
    { name: 'nginx-stream', rounds: [warm, warm, [20, 24], [24, 28], [22, 26]] },
  ];

  it('drops the warm-up rounds and keeps every measured one', () => {
    const [direct, stream] = pathFigures(recorded, 2);
    expect(direct!.summary).toMatchObject({ count: 6, min: 10, p50: 12, max: 14 });
    expect(stream!.summary).toMatchObject({ count: 6, min: 20, p50: 24, max: 28 });
  });

  it('divides each path\'s p50 and p99 by direct\'s, not by its own', () => {
    const [direct, stream] = pathFigures(recorded, 2);
    expect(direct).toMatchObject({ ratioP50: 1, ratioP99: 1 });
    expect(stream).toMatchObject({ ratioP50: 2, ratioP99: 2 });
    // Direct listed second: still the baseline.
    expect(pathFigures([...recorded].reverse(), 2)[0]).toMatchObject({ name: 'nginx-stream', ratioP50: 2 });
  });

  it('splits the measured rounds into even and odd ones for the noise figure', () => {
    // Measured rounds 2 and 4 (even) give p50 22; round 3 (odd) gives 24.
    expect(pathFigures(recorded, 2)[1]!.p50SplitHalfSpreadMs).toBe(2);
  });
});

describe('split-half noise', () => {
  it('is the distance between the p50s of the two halves, 0 when a half is empty', () => {
    expect(splitHalfSpread([[1, 2, 3], [2, 3, 4]])).toBe(1);
    expect(splitHalfSpread([[0.4], []])).toBe(0);
  });
});

describe('strace -c summary', () => {
  it('reads calls per syscall from strace 6 output, with and without an errors column, skipping the total', () => {
    const output = [
      'strace: Process 4242 attached',
      '% time     seconds  usecs/call     calls    errors syscall',
      '------ ----------- ----------- --------- --------- ----------------',
      ' 43.46    0.091992          20      4454           sendto',
      ' 34.76    0.073581          14      5065           epoll_wait',
      ' 21.78    0.046113          10      4454        12 recvfrom',
      '------ ----------- ----------- --------- --------- ----------------',
      '100.00    0.211686          15     13973        12 total',
    ].join('\n');
    expect(parseStraceSummary(output)).toEqual({ sendto: 4454, epoll_wait: 5065, recvfrom: 4454 });
  });
});

describe('perf profile of a proxy', () => {
  // Two samples as `perf script -F comm,tid,ip,sym,dso` prints them (frames leaf first), then a
  // user-space sample and a kernel sample outside any wake-up or switch.
  const script = [
    'nginx 10039 ',
    '\tffffffff8225fd19 pvm_irq_enable ([kernel.kallsyms])',
    '\tffffffff8225fc41 __raw_callee_save_pvm_irq_enable ([kernel.kallsyms])',
    '\tffffffff813ae292 finish_task_switch.isra.0 ([kernel.kallsyms])',
    '\tffffffff82265c84 __schedule ([kernel.kallsyms])',
    '\tffffffff8175261c __x64_sys_epoll_wait ([kernel.kallsyms])',
    '\t          108ef3 epoll_wait (/usr/lib/x86_64-linux-gnu/libc.so.6)',
    '',
    'nginx 10040 ',
    '\tffffffff8225fd19 pvm_irq_enable+0x19 ([kernel.kallsyms])',
    '\tffffffff81e8a1b2 _raw_spin_unlock_irqrestore ([kernel.kallsyms])',
    '\tffffffff81e8a1b2 sock_def_readable ([kernel.kallsyms])',
    '\tffffffff82059c01 tcp_data_queue ([kernel.kallsyms])',
    '\tffffffff81e810e0 __x64_sys_sendto ([kernel.kallsyms])',
    '\t          10a929 __send (/usr/lib/x86_64-linux-gnu/libc.so.6)',
    '',
    'nginx 10040 ',
    '\t           54174 [unknown] (/usr/sbin/nginx)',
    '',
    'nginx 10039 ',
    '\tffffffff81706216 fdget ([kernel.kallsyms])',
    '\tffffffff81750a4a do_epoll_wait ([kernel.kallsyms])',
    '\t          108ef3 epoll_wait (/usr/lib/x86_64-linux-gnu/libc.so.6)',
    '',
  ].join('\n');

  it('reads each sample\'s frames, symbols without offsets, kernel frames marked', () => {
    const samples = parsePerfScript(script);
    expect(samples).toHaveLength(4);
    expect(samples[1]![0]).toEqual({ symbol: 'pvm_irq_enable', kernel: true });
    expect(samples[2]).toEqual([{ symbol: '[unknown]', kernel: false }]);
  });

  it('sorts a sample by its whole stack: a wake-up anywhere wins over a switch, then the leaf decides', () => {
    expect(parsePerfScript(script).map(classifyStack)).toEqual(['switch', 'wake', 'user', 'kernel']);
    expect(classifyStack([{ symbol: 'sock_def_readable', kernel: false }])).toBe('user');
    expect(splitProfile(parsePerfScript(script))).toEqual({ samples: 4, percent: { wake: 25, switch: 25, kernel: 25, user: 25 } });
    expect(splitProfile([])).toEqual({ samples: 0, percent: { wake: 0, switch: 0, kernel: 0, user: 0 } });
  });
});

describe('the bare nginx configs bench/ compares the rendered one with', () => {
  const tuning = /worker_|_buffer|_timeout|keepalive|request_pool|reuseport/;
  it('stream (listen + proxy_pass, nginx defaults otherwise) passes the real nginx -t', async () => {
    const prefix = makeNginxPrefix('bare-stream');
    try {
      const conf = bareStreamConf({ dir: prefix.dir, listenPort: 18080, upstreamPort: 18081 });
      expect(conf).not.toMatch(tuning);
      expect(await checkNginxConf(conf)).toMatchObject({ ok: true, warnings: [] });
    } finally {
      prefix.cleanup();
    }
  });

  it('http (proxy_pass + the upgrade headers, nginx defaults otherwise) passes the real nginx -t', async () => {
    const prefix = makeNginxPrefix('bare-http');
    try {
      const conf = bareHttpConf({ dir: prefix.dir, listenPort: 18080, upstreamPorts: [18081, 18082], clients: 3000 });
      // Room for the probe's clients is the one setting it has.
      expect(conf.replace('worker_connections 6064;', '')).not.toMatch(tuning);
      expect(await checkNginxConf(conf, { addStreamModule: false })).toMatchObject({ ok: true, warnings: [] });
    } finally {
      prefix.cleanup();
    }
  });
});

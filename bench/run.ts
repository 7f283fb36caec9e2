/**
 * `npm run bench [-- --quick] [-- --only latency,fanout,failover,capacity,tooling] [-- --out DIR]`
 * `npm run bench -- --report-only bench/results.json` re-renders RESULTS.md from stored figures.
 *
 * Runs every measurement of issue 5 on the local topology, side by side in one run, and writes
 * bench/results.json and bench/RESULTS.md. `--quick` is the CI smoke check: small counts, short
 * holds, under two minutes; it, and a run of some phases (`--only`), writes to a temp folder (or
 * --out), never over the full results.
 * Exits non-zero when a phase failed (its error is in the results), so a broken harness or a broken
 * tool it times fails CI.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pickFreePort } from '../local/ports';
import { stopWhenLauncherExits, type ManagedProcess } from '../local/processes';
import { bareHttpConf, startBareNginx } from './bare-nginx';
import { measureCapacity, measureMemoryPerConnection, nginxSettingsOf } from './capacity';
import { startClientWorkers, stopClientWorkers, type ClientWorker } from './client-pool';
import { loadAverage, machineInfo, softwareVersions } from './environment';
import { measureFailover } from './failover';
import { measureFanout } from './fanout';
import { measureLatency, TRAVERSALS_PER_ROUND_TRIP } from './latency';
import { measureRelayFloor } from './relay-floor';
import { renderResultsMarkdown } from './report';
import type { BenchResults, CapacityRun, FanoutResults, FailoverResults, HeapProfile, LatencyResults, MemoryPerConnection, ToolTiming } from './results';
import { PATH_NAMES, startBenchEnvironment, type BenchEnvironment, type PathName } from './setup';
import { processTree, startCpuMeter } from './procfs';
import { CAPACITY_NGINX, FULL, QUICK, SEED_NGINX } from './plan';
import { judgeTargets, LATENCY_ANCHORS } from './targets';
import { timeMockTests, timeNginxBuild, timeRender, type BuiltNginx } from './tooling';
import { idleDeepstreamClients, profileNginxHeap } from './heap-profile';
import { nginxPathsIn } from '../local/nginx-process';
import { findExecutable } from '../local/system';
import type { NginxSpec } from '../nginx/spec';

/** About the size of a deepstream RPC request on the wire. */
const RELAY_FLOOR_MESSAGE_BYTES = 120;

/** Fan-out paths: direct, the nginx levers (worker count, stream mode, TLS) and HAProxy as the reference relay. */
const FANOUT_PATHS = ['direct', 'nginx-http', 'nginx-http-per-core', 'nginx-stream', 'nginx-https', 'haproxy-http'] as const satisfies readonly PathName[];

/** Proxied paths whose relaying processes are traced (strace, perf) after the latency measurement:
 * each nginx listener kind and its HAProxy equivalent. */
const PROFILED_PATHS = [
  'nginx-http',
  'nginx-stream',
  'haproxy-http',
  'nginx-https',
  'haproxy-https',
  'haproxy-tcp',
  'nginx-stream-tls',
  'haproxy-tcp-tls',
] as const satisfies readonly PathName[];

const PHASES = ['latency', 'fanout', 'failover', 'capacity', 'tooling'] as const;
type Phase = (typeof PHASES)[number];

interface Arguments {
  readonly quick: boolean;
  readonly phases: ReadonlySet<Phase>;
  readonly outDir: string | null;
  /** Re-render RESULTS.md (and the verdicts) next to this results.json; measure nothing. */
  readonly reportOnly: string | null;
}

function parseArguments(argv: readonly string[]): Arguments {
  let quick = false;
  let phases = new Set<Phase>(PHASES);
  let outDir: string | null = null;
  let reportOnly: string | null = null;
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index]!;
    if (arg === '--quick') quick = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg.includes('=') ? arg.slice('--only='.length) : argv[++index];
      const names = (value ?? '').split(',').filter(Boolean);
      const unknown = names.filter((name) => !(PHASES as readonly string[]).includes(name));
      if (names.length === 0 || unknown.length > 0) {
        throw new Error(`--only: got ${JSON.stringify(value ?? '')}; allowed: a comma-separated list of ${PHASES.join(', ')}`);
      }
      phases = new Set(names as Phase[]);
    } else if (arg === '--out' || arg.startsWith('--out=')) {
      outDir = arg.includes('=') ? arg.slice('--out='.length) : (argv[++index] ?? null);
      if (!outDir) throw new Error('--out: a directory is required');
    } else if (arg === '--report-only' || arg.startsWith('--report-only=')) {
      reportOnly = arg.includes('=') ? arg.slice('--report-only='.length) : (argv[++index] ?? null);
      if (!reportOnly) throw new Error('--report-only: a results.json path is required');
    } else {
      throw new Error(`unknown argument ${JSON.stringify(arg)}; allowed: --quick, --only <phases>, --out <dir>, --report-only <results.json>`);
    }
  }
  return { quick, phases, outDir, reportOnly };
}

/** Writes `RESULTS.md` next to `jsonPath` from its figures, judging the targets again (no measurement). */
function rerender(jsonPath: string): number {
  const { targets: _stored, ...figures } = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as BenchResults;
  const results: BenchResults = { ...figures, targets: judgeTargets(figures) };
  writeAtomically(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  writeAtomically(path.join(path.dirname(jsonPath), 'RESULTS.md'), renderResultsMarkdown(results));
  process.stdout.write(`re-rendered ${path.join(path.dirname(jsonPath), 'RESULTS.md')} from ${jsonPath}\n`);
  return 0;
}

/** `url` (a path's URL) with another port: the same listener kind on another nginx. */
function withPort(url: string, port: number): string {
  const moved = new URL(url);
  moved.port = String(port);
  return moved.toString();
}

/** Written next to the target and renamed, so an interrupted run never leaves half a file. */
function writeAtomically(file: string, content: string): void {
  fs.writeFileSync(`${file}.tmp`, content);
  fs.renameSync(`${file}.tmp`, file);
}

async function main(): Promise<number> {
  const args = parseArguments(process.argv.slice(2));
  if (args.reportOnly) return rerender(args.reportOnly);
  stopWhenLauncherExits();
  const plan = args.quick ? QUICK : FULL;
  // A hung phase must fail CI, not stall it: every process this run started ends with it. The timer
  // also keeps the event loop alive, so a promise that never settles cannot end the run with exit 0.
  setTimeout(() => {
    process.stderr.write(`bench: still running after ${plan.watchdogMinutes} minutes; giving up\n`);
    process.exit(3);
  }, plan.watchdogMinutes * 60_000);
  const startedAt = performance.now();
  const log = (line: string): void => {
    process.stdout.write(`[bench ${((performance.now() - startedAt) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
  };
  const machine = machineInfo();
  const versions = softwareVersions();
  log(`${args.quick ? 'quick' : 'full'} run on ${machine.nproc} × ${machine.cpuModel}, load ${machine.loadAverageAtStart}`);
  const errors: string[] = [];
  async function phase<T>(name: string, body: () => Promise<T>): Promise<T | undefined> {
    log(`${name} (load ${loadAverage().toFixed(2)})`);
    try {
      return await body();
    } catch (error) {
      const message = `${name}: ${(error as Error).stack ?? String(error)}`;
      errors.push(message.split('\n').slice(0, 4).join(' '));
      log(`FAILED ${message}`);
      return undefined;
    }
  }

  // Tooling first, on an otherwise idle machine: its wall times are not shared with the topology,
  // and the nginx it builds (with symbols) is kept for the heap profile of the capacity phase.
  let tooling: ToolTiming[] | undefined;
  let builtNginx: BuiltNginx | null = null;
  if (args.phases.has('tooling')) {
    tooling = await phase('tooling', async () => {
      const timings = [await timeRender()];
      timings.push(
        plan.tooling.mockTests
          ? await timeMockTests()
          : { name: 'mock test suite', command: 'npx jest test/components-', seconds: null, ok: true, note: 'skipped in --quick' },
      );
      if (plan.tooling.nginxBuild) {
        const build = await timeNginxBuild({ keepInstall: args.phases.has('capacity') });
        timings.push(build.timing);
        builtNginx = build.built;
      } else {
        timings.push({ name: 'nginx build script', command: 'configure + make', seconds: null, ok: true, note: 'skipped in --quick' });
      }
      for (const timing of timings) if (!timing.ok) errors.push(`tooling: ${timing.name} failed: ${timing.note}`);
      return timings;
    });
  }

  let latency: LatencyResults | undefined;
  let fanout: FanoutResults | undefined;
  let failover: FailoverResults | undefined;
  const capacityRuns: CapacityRun[] = [];
  let memoryPerConnection: MemoryPerConnection[] = [];
  let heapProfiles: HeapProfile[] = [];
  let heapProfileSkipped: string | undefined;
  const needsTopology = PHASES.some((name) => name !== 'tooling' && args.phases.has(name));
  if (needsTopology) {
    let env: BenchEnvironment | undefined;
    let workers: ClientWorker[] = [];
    try {
      env = await startBenchEnvironment({ log });
      const environment = env;
      const fanoutWorkers = FANOUT_PATHS.length * plan.fanout.workersPerPath;
      workers = await startClientWorkers(Math.max(fanoutWorkers, plan.capacity.clientProcesses));
      const clientWorkers = workers;
      log(`${workers.length} client processes started`);
      const components = { ...env.components, 'client processes': () => clientWorkers.flatMap((worker) => (worker.pid ? [worker.pid] : [])) };
      const [firstNode, secondNode] = env.topology.nodes.map((node) => node.name);

      if (args.phases.has('latency')) {
        latency = await phase('latency', async () => {
          const measured = await measureLatency({
            paths: PATH_NAMES.map((name) => environment.paths[name]),
            roundTrips: plan.latency.roundTrips,
            warmup: plan.latency.warmup,
            batch: plan.latency.batch,
            pairsPerPath: plan.latency.pairsPerPath,
            ca: environment.ca,
            placement: { provider: firstNode!, caller: firstNode! },
            anchors: LATENCY_ANCHORS,
            proxyPidsOf: (name) =>
              Object.values(environment.proxyPaths).flat().includes(name as PathName) ? environment.relayPids(name as PathName) : undefined,
            startMeter: () => startCpuMeter(components, machine.nproc),
            ...(plan.latency.proxyProfileRoundTrips > 0
              ? {
                  proxyProfiles: PROFILED_PATHS.map((path) => ({ path, pids: () => environment.relayPids(path) })),
                  proxyProfileRoundTrips: plan.latency.proxyProfileRoundTrips,
                  profileDir: environment.topology.runFolder,
                }
              : {}),
            log,
          });
          // The same paths with caller and provider on different nodes: what a proxy adds to a call
          // that also crosses Redis. Fewer round trips: each takes about four times as long.
          const acrossNodes = await measureLatency({
            paths: PATH_NAMES.map((name) => environment.paths[name]),
            roundTrips: plan.latency.acrossNodesRoundTrips,
            warmup: Math.round(plan.latency.warmup / 2),
            batch: plan.latency.batch,
            pairsPerPath: plan.latency.pairsPerPath,
            ca: environment.ca,
            placement: { provider: firstNode!, caller: secondNode! },
            startMeter: () => startCpuMeter(components, machine.nproc),
            log,
          });
          // After the RPC paths, so its processes never share the cores with their measurement.
          const relayFloor = await measureRelayFloor({
            dir: path.join(environment.topology.runFolder, 'relay-floor'),
            baseSpec: environment.nginxTls.spec,
            roundTrips: plan.latency.relayFloorRoundTrips,
            warmup: plan.latency.warmup,
            batch: plan.latency.batch,
            messageBytes: RELAY_FLOOR_MESSAGE_BYTES,
            log,
          });
          const { cpu } = measured;
          const proxyCpuMicrosPerMessage: Record<string, number> = {};
          const proxyContextSwitchesPerMessage: Record<string, number> = {};
          // A process is metered as a whole: these are its averages over every path it relays (the
          // report says so), never one path's figure.
          for (const [component, served] of Object.entries(environment.proxyPaths)) {
            const messages = served.length * measured.totalRoundTripsPerPath * TRAVERSALS_PER_ROUND_TRIP;
            proxyCpuMicrosPerMessage[component] = Math.round(((cpu.seconds[component] ?? 0) * 1e6) / messages);
            proxyContextSwitchesPerMessage[component] = Math.round(((cpu.contextSwitches?.[component] ?? 0) / messages) * 100) / 100;
          }
          return {
            roundTripsPerPath: plan.latency.roundTrips,
            warmupPerPath: plan.latency.warmup,
            batch: plan.latency.batch,
            pairsPerPath: plan.latency.pairsPerPath,
            paths: measured.paths,
            cpu,
            proxyCpuMicrosPerMessage,
            proxyCpuMicrosPerMessageOfPath: measured.proxyCpuMicrosPerMessageOfPath,
            proxyContextSwitchesPerMessage,
            proxyComponentOfPath: Object.fromEntries(
              Object.entries(environment.proxyPaths).flatMap(([component, served]) => served.map((path) => [path, component])),
            ),
            syscallsPerMessage: measured.syscallsPerMessage,
            proxyCpuSplits: measured.cpuSplits,
            acrossNodes: {
              providerNode: firstNode!,
              callerNode: secondNode!,
              roundTripsPerPath: plan.latency.acrossNodesRoundTrips,
              paths: acrossNodes.paths,
            },
            relayFloor,
          };
        });
      }

      if (args.phases.has('fanout')) {
        fanout = await phase('fan-out', () => {
          const perPath = plan.fanout.workersPerPath;
          return measureFanout({
            plans: FANOUT_PATHS.map((name, index) => ({
              path: environment.paths[name],
              subscriberUrls: name === 'direct' ? environment.nodeUrls : [environment.paths[name].url],
              workers: clientWorkers.slice(index * perPath, (index + 1) * perPath),
            })),
            subscribersPerPath: plan.fanout.subscribers,
            eventsPerRun: plan.fanout.events,
            window: plan.fanout.window,
            rounds: plan.fanout.rounds,
            ca: environment.ca,
            localAddresses: clientWorkers.map((_, index) => `127.0.1.${index + 1}`),
            components,
            nproc: machine.nproc,
            log,
          });
        });
      }

      if (args.phases.has('failover')) {
        failover = await phase('failover', () =>
          measureFailover({
            topology: environment.topology,
            url: environment.paths['nginx-https'].url,
            ca: environment.ca,
            clients: plan.failover.clients,
            runs: plan.failover.runs,
            tickIntervalMs: plan.failover.tickIntervalMs,
            workers: clientWorkers.slice(0, 2),
            localAddresses: ['127.0.2.1', '127.0.2.2'],
            components,
            nproc: machine.nproc,
            log,
          }),
        );
      }

      if (args.phases.has('capacity')) {
        const capacityWorkers = clientWorkers.slice(0, plan.capacity.clientProcesses);
        // Each probe starts on fresh proxy processes: memory freed by an earlier probe's connections
        // would otherwise be reused and hide what the next listener costs. A reload gives nginx new
        // workers; HAProxy, which keeps freed memory in its own pools, is restarted.
        const nginxTls = { pids: () => processTree(environment.nginxTls.masterPid), fresh: () => environment.nginxTls.reload(environment.nginxTls.spec) };
        const nginxPlain = { pids: () => processTree(environment.nginxPlain.masterPid), fresh: () => environment.nginxPlain.reload(environment.nginxPlain.spec) };
        const haproxy = (name: PathName) => ({ pids: () => [environment.haproxyPid(name)], fresh: () => environment.restartHaproxy(name) });
        // nginx's own defaults behind the same clients: what http mode costs before any tuning.
        const bareDir = path.join(environment.topology.runFolder, 'nginx-http-bare');
        const barePort = await pickFreePort();
        const bareConf = bareHttpConf({
          dir: bareDir,
          listenPort: barePort,
          upstreamPorts: environment.topology.ports.nodes,
          clients: plan.capacity.memoryProbeConnections,
        });
        let bare: ManagedProcess | undefined;
        const nginxBare = {
          pids: () => (bare ? processTree(bare.pid) : []),
          fresh: async () => {
            await bare?.stop();
            bare = await startBareNginx(bareDir, bareConf, barePort);
          },
        };
        const probe = (name: PathName, proxy: typeof nginxPlain) => ({ ...environment.paths[name], ...proxy });
        const probePaths = [
          {
            name: 'nginx-http-bare',
            description: 'nginx http mode, `proxy_pass` + upgrade headers and nginx defaults only',
            url: withPort(environment.paths['nginx-http'].url, barePort),
            ...nginxBare,
          },
          probe('nginx-http', nginxPlain),
          probe('nginx-https', nginxTls),
          probe('nginx-stream', nginxTls),
          probe('nginx-stream-tls', nginxTls),
          probe('haproxy-http', haproxy('haproxy-http')),
          probe('haproxy-https', haproxy('haproxy-https')),
          probe('haproxy-tcp', haproxy('haproxy-tcp')),
          probe('haproxy-tcp-tls', haproxy('haproxy-tcp-tls')),
        ];
        memoryPerConnection =
          (await phase('memory per connection', () =>
            measureMemoryPerConnection({
              paths: probePaths,
              connections: plan.capacity.memoryProbeConnections,
              settleMs: plan.capacity.memoryProbeSettleMs,
              ca: environment.ca,
              workers: capacityWorkers,
              firstSubnet: 10,
              log,
            }).finally(() => bare?.stop()),
          )) ?? [];
        // Assigned inside the tooling phase callback, which TypeScript does not follow.
        const built = builtNginx as BuiltNginx | null;
        const missingTool = ['valgrind', 'vgdb'].find((tool) => findExecutable(tool) === undefined);
        if (built === null) {
          heapProfileSkipped = plan.tooling.nginxBuild && args.phases.has('tooling')
            ? 'the nginx build of the tooling phase failed, so there was no nginx with symbols to profile'
            : 'needs the nginx the tooling phase builds (not built in --quick or without the tooling phase)';
        } else if (missingTool !== undefined) {
          heapProfileSkipped = `\`${missingTool}\` is not installed (Debian: apt-get install valgrind)`;
        } else {
          heapProfiles =
            (await phase('heap profile', () => {
              const base = environment.plainSpec('plain');
              const tls = environment.tlsSpec().http?.tls ?? null;
              const listener = async (name: PathName, withTls: boolean) => {
                const dir = path.join(environment.topology.runFolder, `nginx-heap-${name}`);
                const port = await pickFreePort();
                const spec: NginxSpec = {
                  ...base,
                  http: { ...base.http!, listenPort: port, tls: withTls ? tls : null },
                  paths: nginxPathsIn(dir),
                  streamModule: { kind: 'static' },
                };
                const url = withPort(environment.paths[name].url, port);
                return { name, description: `${environment.paths[name].description}, under valgrind massif`, dir, spec, url };
              };
              return Promise.all([listener('nginx-http', false), listener('nginx-https', true)]).then((listeners) =>
                profileNginxHeap({
                  nginxBinary: built.binary,
                  nginxVersion: built.version,
                  listeners,
                  connections: plan.capacity.heapProfileConnections,
                  settleMs: plan.capacity.memoryProbeSettleMs,
                  clients: idleDeepstreamClients(capacityWorkers, environment.ca, 20),
                  log,
                }),
              );
            })) ?? [];
        }
        const common = {
          holdSeconds: plan.capacity.holdSeconds,
          workers: capacityWorkers,
          nodes: environment.topology.nodes,
          components,
          nproc: machine.nproc,
          log,
        };
        const runs = [
          {
            name: 'plain',
            description: `Plain WebSocket (nginx http mode), ${CAPACITY_NGINX.workerProcesses} workers sized for ${CAPACITY_NGINX.maxConnections.toLocaleString('en-US')} clients`,
            listener: 'nginx http mode, plain (ws://)',
            url: environment.paths['nginx-http'].url,
            nginx: environment.nginxPlain,
            spec: environment.plainSpec('plain', CAPACITY_NGINX),
            steps: plan.capacity.steps,
            subnet: 3,
          },
          {
            name: 'stream',
            description: `Plain TCP (nginx stream mode), ${CAPACITY_NGINX.workerProcesses} workers sized for ${CAPACITY_NGINX.maxConnections.toLocaleString('en-US')} clients`,
            listener: 'nginx stream mode, plain (ws:// passed through as TCP), the topology nginx',
            url: environment.paths['nginx-stream'].url,
            nginx: environment.nginxTls,
            spec: environment.tlsSpec(CAPACITY_NGINX),
            steps: plan.capacity.streamSteps,
            subnet: 6,
          },
          {
            name: 'tls',
            description: `TLS WebSocket (nginx http mode + TLS), ${CAPACITY_NGINX.workerProcesses} workers sized for ${CAPACITY_NGINX.maxConnections.toLocaleString('en-US')} clients`,
            listener: 'nginx http mode + TLS (wss://), the topology nginx',
            url: environment.paths['nginx-https'].url,
            nginx: environment.nginxTls,
            spec: environment.tlsSpec(CAPACITY_NGINX),
            steps: plan.capacity.tlsSteps,
            subnet: 4,
          },
          {
            name: 'seed',
            description: 'The seed configuration: worker_processes 1; worker_connections 1024 (plain WebSocket)',
            listener: 'nginx http mode, plain (ws://)',
            url: environment.paths['nginx-http-per-core'].url,
            nginx: environment.nginxPerCore,
            spec: environment.plainSpec('per-core', SEED_NGINX),
            steps: plan.capacity.seedSteps,
            subnet: 5,
          },
        ];
        for (const run of runs) {
          const result = await phase(`capacity ${run.name}`, async () => {
            if (run.name === 'seed') {
              const settings = nginxSettingsOf(run.spec);
              if (settings.workerProcesses !== '1' || settings.workerConnections !== 1024) {
                throw new Error(
                  `the seed configuration renders as worker_processes ${settings.workerProcesses}; worker_connections ${settings.workerConnections}; ` +
                    'expected 1 and 1024 (the renderer has no worker_connections override; see SEED_NGINX)',
                );
              }
            }
            return measureCapacity({
              ...common,
              ...run,
              ca: environment.ca,
              localAddresses: capacityWorkers.map((_, index) => `127.0.${run.subnet}.${index + 1}`),
            });
          });
          if (result) capacityRuns.push(result);
        }
      }
    } catch (error) {
      errors.push(`setup: ${(error as Error).message}`);
      log(`FAILED setup: ${(error as Error).stack}`);
    } finally {
      await stopClientWorkers(workers).catch(() => undefined);
      await env?.stop().catch(() => undefined);
    }
  }
  (builtNginx as BuiltNginx | null)?.remove();

  const partial = {
    quick: args.quick,
    date: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    durationSeconds: Math.round((performance.now() - startedAt) / 1000),
    machine,
    versions,
    ...(latency ? { latency } : {}),
    ...(capacityRuns.length > 0 || memoryPerConnection.length > 0
      ? {
          capacity: {
            holdSeconds: plan.capacity.holdSeconds,
            clientProcesses: plan.capacity.clientProcesses,
            memoryPerConnection,
            ...(heapProfiles.length > 0 ? { heapProfiles } : {}),
            ...(heapProfileSkipped !== undefined ? { heapProfileSkipped } : {}),
            runs: capacityRuns,
          },
        }
      : {}),
    ...(fanout ? { fanout } : {}),
    ...(failover ? { failover } : {}),
    ...(tooling ? { tooling } : {}),
    errors,
  };
  const results: BenchResults = { ...partial, targets: judgeTargets(partial) };
  // Only a full run of every phase may replace bench/results.json and bench/RESULTS.md.
  const complete = !args.quick && args.phases.size === PHASES.length;
  const outDir = args.outDir ?? (complete ? __dirname : fs.mkdtempSync(path.join(os.tmpdir(), `realtime-edge-bench-${args.quick ? 'quick' : 'partial'}-`)));
  fs.mkdirSync(outDir, { recursive: true });
  const jsonPath = path.join(outDir, 'results.json');
  const markdownPath = path.join(outDir, 'RESULTS.md');
  writeAtomically(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  writeAtomically(markdownPath, renderResultsMarkdown(results));
  log(`wrote ${jsonPath} and ${markdownPath}`);
  const verdictWord = (met: boolean | null): string => (met === null ? 'n/a   ' : met ? 'met   ' : 'MISSED');
  for (const verdict of results.targets) log(`  ${verdictWord(verdict.met)} ${verdict.target}: ${verdict.measured}`);
  if (errors.length > 0) {
    log(`${errors.length} phase(s) failed:`);
    for (const error of errors) log(`  ${error}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(2);
  },
);

/**
 * `npm run local [-- --stack NAME|PATH] [--smoke] [--http-port N] [--stream-port N] ...`
 *
 * Runs the stack's topology on loopback (Redis, the deepstream nodes, nginx with TLS) until
 * SIGINT/SIGTERM, or with `--smoke` checks it once and exits 0 (passed) or 1.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { loadStackFile, resolveStackFile } from '../config/stack';
import { smokeCheck } from './checks';
import { onShutdownSignal, stopWhenLauncherExits } from './processes';
import { PROJECT_ROOT } from './run-folder';
import { ensurePrerequisites } from './system';
import { startTopology, topologyOptionsFromStack, type TopologyPorts } from './topology';

/** Fixed defaults for an interactive run, so URLs stay the same between runs. `--smoke` picks
 * free ports instead (it is a check, nobody connects to it). Redis avoids 6379, where a distribution
 * redis-server usually runs. */
const INTERACTIVE_PORTS = { http: 8443, stream: 8444, status: 8081, redis: 6380, firstNode: 6020 } as const;

const USAGE = `usage: npm run local [-- options]
  --stack NAME|PATH    stack file: Pulumi.NAME.yaml or a path (default: dev)
  --smoke              start, check a TLS round trip and cross-node delivery through nginx, stop; exit 0/1
  --http-port N        nginx http (L7) listener with TLS (default ${INTERACTIVE_PORTS.http})
  --stream-port N      nginx stream (L4) listener with TLS (default ${INTERACTIVE_PORTS.stream})
  --status-port N      nginx stub_status on loopback (default ${INTERACTIVE_PORTS.status})
  --redis-port N       redis-server (default ${INTERACTIVE_PORTS.redis})
  --node-ports N,N...  one port per deepstream node (default ${INTERACTIVE_PORTS.firstNode}, ${INTERACTIVE_PORTS.firstNode + 1}, ...)
  --keep               keep the run folder (configs, logs) after stopping
With --smoke, ports not given are picked free.`;

function portArg(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1 || port > 65535) {
    throw new Error(`--${name}: got ${JSON.stringify(value)}; allowed: a port number from 1 to 65535`);
  }
  return port;
}

const OPTIONS = {
  stack: { type: 'string', default: 'dev' },
  smoke: { type: 'boolean', default: false },
  'http-port': { type: 'string' },
  'stream-port': { type: 'string' },
  'status-port': { type: 'string' },
  'redis-port': { type: 'string' },
  'node-ports': { type: 'string' },
  keep: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function parseCommandLine() {
  try {
    return parseArgs({ options: OPTIONS, strict: true }).values;
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${USAGE}`);
  }
}

async function main(): Promise<number> {
  const values = parseCommandLine();
  if (values.help) {
    console.log(USAGE);
    return 0;
  }

  stopWhenLauncherExits();
  const prerequisites = ensurePrerequisites((line) => console.log(line));
  if (prerequisites.missing.length > 0) {
    console.error(`missing: ${prerequisites.missing.join(', ')}`);
    console.error(`install them with:\n  ${prerequisites.hint ?? ''}`);
    return 1;
  }

  const stackFile = path.resolve(resolveStackFile(values.stack, PROJECT_ROOT));
  if (!fs.existsSync(stackFile)) {
    const stacks = fs
      .readdirSync(PROJECT_ROOT)
      .map((file) => /^Pulumi\.(.+)\.ya?ml$/.exec(file)?.[1])
      .filter((name): name is string => name !== undefined);
    throw new Error(`--stack: ${values.stack} -> ${stackFile} does not exist; allowed: ${[...stacks, 'a path to a stack file'].join(', ')}`);
  }
  const stack = loadStackFile(stackFile);
  const fromStack = topologyOptionsFromStack(stack);
  const nodeCount = fromStack.nodes ?? 2;
  const smoke = values.smoke;
  const given = {
    http: portArg('http-port', values['http-port']),
    stream: portArg('stream-port', values['stream-port']),
    status: portArg('status-port', values['status-port']),
    redis: portArg('redis-port', values['redis-port']),
    nodes: values['node-ports']?.split(',').map((value) => portArg('node-ports', value.trim()) as number),
  };
  if (given.nodes && given.nodes.length !== nodeCount) {
    throw new Error(
      `--node-ports: got ${given.nodes.length} ports for ${nodeCount} nodes (deepstreamNodes of ${values.stack}); allowed: one port per node`,
    );
  }
  const ports: TopologyPorts = smoke
    ? Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined))
    : {
        http: given.http ?? INTERACTIVE_PORTS.http,
        stream: given.stream ?? INTERACTIVE_PORTS.stream,
        status: given.status ?? INTERACTIVE_PORTS.status,
        redis: given.redis ?? INTERACTIVE_PORTS.redis,
        nodes: given.nodes ?? Array.from({ length: nodeCount }, (_, index) => INTERACTIVE_PORTS.firstNode + index),
      };

  const balance = fromStack.balance;
  console.log(
    `realtime-edge local topology from ${path.relative(process.cwd(), stackFile) || stackFile}: ` +
      `${nodeCount} deepstream nodes, proxy mode ${fromStack.proxyMode}, balance ${balance?.strategy ?? 'round-robin'}` +
      `${balance?.hashKey ? ` ${balance.hashKey}` : ''}`,
  );
  const skipped = Object.keys(stack.backends).filter((name) => name !== 'deepstream');
  if (skipped.length > 0) console.log(`not run locally (no server binary here): ${skipped.join(', ')}`);

  const topology = await startTopology({
    ...fromStack,
    label: smoke ? 'smoke' : 'local',
    ports,
    keepRunFolder: values.keep || !smoke,
    log: smoke ? undefined : (line) => console.log(`  ${line}`),
  });

  if (smoke) {
    try {
      const result = await smokeCheck(topology);
      console.log(result.line);
      return result.ok ? 0 : 1;
    } finally {
      await topology.stop();
    }
  }

  const relative = (file: string): string => path.relative(process.cwd(), file);
  console.log('');
  if (topology.urls.httpWebSocket) console.log(`deepstream via nginx http (L7) + TLS:   ${topology.urls.httpWebSocket}`);
  if (topology.urls.streamWebSocket) {
    console.log(`deepstream via nginx stream (L4) + TLS: ${topology.urls.streamWebSocket}  (TCP port ${topology.ports.stream}, every path goes to a node)`);
  }
  if (topology.urls.httpHealth) console.log(`cluster health via nginx:               ${topology.urls.httpHealth}`);
  for (const node of topology.nodes) {
    console.log(`node ${node.name}: ${node.directUrl}  health ${node.healthUrl} -> ${await node.health()}`);
  }
  console.log(`redis: 127.0.0.1:${topology.ports.redis}`);
  console.log(`self-signed certificate (trust it as ca): ${relative(topology.certificatePath)}`);
  console.log(`configs and logs: ${relative(topology.runFolder)}`);
  console.log('running; Ctrl-C (SIGINT) or SIGTERM stops everything');

  onShutdownSignal(async () => {
    await topology.stop();
    console.log('stopped: nginx, the deepstream nodes and redis have exited');
  });
  // Keeps the process alive: the children do not (they are unref'd) and the signal handler exits.
  setInterval(() => undefined, 1 << 30);
  return await new Promise<number>(() => undefined);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`npm run local: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);

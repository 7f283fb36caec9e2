/**
 * `npm run local` as a user runs it (the CLI under tsx, real processes): the smoke check, the
 * interactive run stopped by SIGTERM, and the clear failures (port in use, unknown stack).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { pickFreePort } from '../local/ports';
import { processesWorkingIn, PROJECT_ROOT, RUN_ROOT } from '../local/run-folder';

interface CliRun {
  readonly child: ChildProcess;
  readonly output: () => { stdout: string; stderr: string };
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: ChildProcess[] = [];

/** `node --import tsx local/cli.ts ARGS`: the same program `npm run local` runs, with its own pid. */
function runCli(args: readonly string[]): CliRun {
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/cli.ts', ...args], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => ({ stdout, stderr }), exited };
}

function runFoldersOf(pid: number): string[] {
  if (!fs.existsSync(RUN_ROOT)) return [];
  return fs
    .readdirSync(RUN_ROOT)
    .filter((entry) => entry.includes(`-${pid}-`))
    .map((entry) => path.join(RUN_ROOT, entry));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

afterAll(async () => {
  // Whatever failed: SIGTERM lets the CLI stop its topology; SIGKILL is the last resort.
  const running = () => started.filter((child) => child.exitCode === null && child.signalCode === null);
  for (const child of running()) child.kill('SIGTERM');
  for (let waited = 0; running().length > 0 && waited < 10_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
  for (const child of running()) child.kill('SIGKILL');
  for (const child of started) for (const folder of runFoldersOf(child.pid!)) fs.rmSync(folder, { recursive: true, force: true });
}, 20_000);

test('--smoke: a TLS round trip and cross-node delivery through nginx, one result line, exit 0, nothing left', async () => {
  const run = runCli(['--smoke']);
  const { code } = await run.exited;
  const { stdout, stderr } = run.output();
  expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  const smokeLines = stdout.split('\n').filter((line) => line.startsWith('smoke '));
  expect(smokeLines).toHaveLength(1);
  expect(smokeLines[0]).toMatch(/^smoke OK: .*http\+TLS deepstream-\d->deepstream-\d.*stream\+TLS deepstream-\d->deepstream-\d/);
  // The smoke run removes its run folder, and no process works in one.
  expect(runFoldersOf(run.child.pid!)).toEqual([]);
});

test('interactive: prints every URL and node health, keeps running, and SIGTERM stops every process', async () => {
  const [http, stream, status, redis, node0, node1] = await Promise.all(Array.from({ length: 6 }, () => pickFreePort()));
  const run = runCli([
    '--http-port', String(http),
    '--stream-port', String(stream),
    '--status-port', String(status),
    '--redis-port', String(redis),
    '--node-ports', `${node0},${node1}`,
  ]);
  const deadline = Date.now() + 60_000;
  while (!run.output().stdout.includes('running;') && run.child.exitCode === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const { stdout } = run.output();
  expect(stdout).toContain('running;');
  expect(stdout).toContain(`wss://127.0.0.1:${http}/deepstream`);
  expect(stdout).toContain(`wss://127.0.0.1:${stream}/deepstream`);
  expect(stdout).toContain(`https://127.0.0.1:${http}/health-check`);
  expect(stdout).toContain(`health http://127.0.0.1:${node0}/health-check -> 200`);
  expect(stdout).toContain(`health http://127.0.0.1:${node1}/health-check -> 200`);

  const [folder] = runFoldersOf(run.child.pid!);
  expect(folder).toBeDefined();
  const pids = processesWorkingIn([folder!]);
  // nginx master + workers, redis, two nodes.
  expect(pids.length).toBeGreaterThanOrEqual(5);

  run.child.kill('SIGTERM');
  const { code } = await run.exited;
  expect(code).toBe(143);
  expect(run.output().stdout).toContain('stopped: nginx, the deepstream nodes and redis have exited');
  expect(pids.filter(isAlive)).toEqual([]);
});

test('a port in use fails with a message naming the port; an unknown stack lists the stacks; --node-ports must match the nodes', async () => {
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as net.AddressInfo).port;
  try {
    // Both runs at once: most of their time is loading the program.
    const inUse = runCli(['--smoke', '--http-port', String(port)]);
    const unknown = runCli(['--stack', 'no-such-stack']);
    const tooManyPorts = runCli(['--smoke', '--node-ports', '7001,7002,7003']);
    expect((await inUse.exited).code).toBe(1);
    expect(inUse.output().stderr).toContain(`port ${port} (nginx http listener) is already in use on 127.0.0.1`);
    expect((await unknown.exited).code).toBe(1);
    expect(unknown.output().stderr).toMatch(/--stack: no-such-stack -> .*Pulumi\.no-such-stack\.yaml does not exist; allowed: dev, prod/);
    expect((await tooManyPorts.exited).code).toBe(1);
    expect(tooManyPorts.output().stderr).toContain('--node-ports: got 3 ports for 2 nodes (deepstreamNodes of dev); allowed: one port per node');
  } finally {
    await new Promise((resolve) => busy.close(resolve));
  }
});

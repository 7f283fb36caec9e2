/**
 * The local topology's machinery with real sockets and processes: port checks, stale-run cleanup,
 * process-group stops and nginx reloads.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { assertPortFree, pickFreePort, resolvePorts } from '../local/ports';
import { startProcess } from '../local/processes';
import { sleep } from '../local/readiness';
import { cleanStaleRuns, createRunFolder, hasExited, processesWorkingIn, RUN_ROOT } from '../local/run-folder';
import { checkPrerequisites, INSTALL_COMMAND, isDebianLike, planInstall } from '../local/system';
import { smokeCheck } from '../local/checks';
import { startTopology, streamBalanceOf } from '../local/topology';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const state = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== 'Z';
  } catch {
    return false;
  }
}

async function occupiedPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('ports', () => {
  test('a port in use is refused with a message naming the port and its purpose', async () => {
    const busy = await occupiedPort();
    try {
      await expect(assertPortFree(busy.port, 'nginx http listener')).rejects.toThrow(
        `port ${busy.port} (nginx http listener) is already in use on 127.0.0.1`,
      );
      await expect(startTopology({ label: 'ports', ports: { stream: busy.port } })).rejects.toThrow(
        `port ${busy.port} (nginx stream listener) is already in use`,
      );
    } finally {
      await busy.close();
    }
  });

  test('picked ports lie below the ephemeral range (outgoing connections cannot take them) and never repeat', async () => {
    const ephemeralStart = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const ports: number[] = [];
    for (let index = 0; index < 200; index += 1) ports.push(await pickFreePort());
    expect(new Set(ports).size).toBe(200);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(20000);
      expect(port).toBeLessThan(ephemeralStart);
    }
  });

  test('free ports are picked distinct, given ones are kept, a port given twice is refused', async () => {
    const given = await pickFreePort();
    const ports = await resolvePorts([
      { key: 'a', purpose: 'first' },
      { key: 'b', purpose: 'second', port: given },
      { key: 'c', purpose: 'third' },
    ]);
    expect(ports.b).toBe(given);
    expect(new Set([ports.a, ports.b, ports.c]).size).toBe(3);
    await expect(
      resolvePorts([
        { key: 'a', purpose: 'first', port: given },
        { key: 'b', purpose: 'second', port: given },
      ]),
    ).rejects.toThrow(`port ${given} (second) is requested twice`);
    await expect(assertPortFree(70000, 'redis-server')).rejects.toThrow('redis-server: port 70000 is not valid');
  });
});

test('streamBalanceOf maps ip-hash to its stream equivalent and refuses HTTP-only hash keys', () => {
  expect(streamBalanceOf({ strategy: 'ip-hash' })).toEqual({ strategy: 'hash', hashKey: '$remote_addr' });
  expect(streamBalanceOf({ strategy: 'least-conn' })).toEqual({ strategy: 'least-conn' });
  expect(streamBalanceOf(undefined)).toBeUndefined();
  expect(() => streamBalanceOf({ strategy: 'hash', hashKey: '$cookie_session' })).toThrow(
    'balance hashKey $cookie_session is an HTTP variable and cannot be used by the stream listener',
  );
});

describe('prerequisites', () => {
  test('this host has every tool the topology runs (found by the same check the CLI uses)', () => {
    expect(checkPrerequisites().filter((item) => !item.present)).toEqual([]);
  });

  test('missing tools: apt-get as root on Debian/Ubuntu, otherwise the exact command to run', () => {
    expect(planInstall([], { isRoot: false, debianLike: false })).toEqual({ kind: 'nothing-missing' });
    expect(planInstall(['redis-server'], { isRoot: true, debianLike: true })).toEqual({
      kind: 'apt-get',
      packages: ['nginx', 'libnginx-mod-stream', 'redis-server', 'openssl'],
    });
    expect(planInstall(['nginx'], { isRoot: false, debianLike: true })).toEqual({ kind: 'manual', command: INSTALL_COMMAND });
    expect(INSTALL_COMMAND).toBe('sudo apt-get update && sudo apt-get install -y nginx libnginx-mod-stream redis-server openssl');
    const elsewhere = planInstall(['openssl'], { isRoot: true, debianLike: false });
    expect(elsewhere.kind).toBe('manual');
  });

  test('Debian and Ubuntu are recognized from os-release, other systems are not', () => {
    fs.mkdirSync(RUN_ROOT, { recursive: true });
    const dir = fs.mkdtempSync(path.join(RUN_ROOT, 'os-release-'));
    try {
      const write = (name: string, text: string) => {
        fs.writeFileSync(path.join(dir, name), text);
        return path.join(dir, name);
      };
      expect(isDebianLike(write('debian', 'PRETTY_NAME="Debian GNU/Linux 12"\nID=debian\n'))).toBe(true);
      expect(isDebianLike(write('ubuntu', 'ID=ubuntu\nID_LIKE=debian\n'))).toBe(true);
      expect(isDebianLike(write('mint', 'ID=linuxmint\nID_LIKE="ubuntu debian"\n'))).toBe(true);
      expect(isDebianLike(write('amazon', 'ID="amzn"\nID_LIKE="fedora"\n'))).toBe(false);
      expect(isDebianLike(path.join(dir, 'missing'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('processes', () => {
  test('stop() ends the whole process group, children included', async () => {
    const run = createRunFolder('process-test');
    try {
      // A shell whose child ignores SIGTERM: only the group SIGKILL after the grace period ends it.
      const proc = startProcess({
        name: 'group',
        command: 'bash',
        // The pid file appears by rename, so it is never read half-written (empty).
        args: ['-c', "trap '' TERM; (trap '' TERM; sleep 60) & echo $! > child.pid.tmp && mv child.pid.tmp child.pid; wait"],
        cwd: run.path,
        logPath: path.join(run.path, 'group.log'),
      });
      const childPidFile = path.join(run.path, 'child.pid');
      for (let i = 0; i < 50 && !fs.existsSync(childPidFile); i++) await sleep(50);
      const childPid = Number(fs.readFileSync(childPidFile, 'utf8'));
      expect(isAlive(childPid)).toBe(true);
      await proc.stop({ graceMs: 300 });
      expect(proc.isRunning()).toBe(false);
      for (let i = 0; i < 50 && isAlive(childPid); i++) await sleep(20);
      expect(isAlive(childPid)).toBe(false);
    } finally {
      run.remove();
    }
  });

  test('a run folder whose owner died is cleaned: its processes ended, the folder removed', async () => {
    // A real pid that is certainly dead: a process that already exited.
    const gone = spawn('true');
    const deadPid = await new Promise<number>((resolve) => gone.on('exit', () => resolve(gone.pid!)));
    const stale = path.join(RUN_ROOT, `stale-test-${process.pid}`);
    fs.mkdirSync(stale, { recursive: true });
    fs.writeFileSync(path.join(stale, 'owner.json'), JSON.stringify({ ownerPid: deadPid }));
    const leftover = spawn('sleep', ['60'], { cwd: stale, stdio: 'ignore', detached: true });
    leftover.unref();
    const live = createRunFolder('live-owner');
    try {
      expect(isAlive(leftover.pid!)).toBe(true);
      const ended = await cleanStaleRuns();
      expect(ended).toContain(leftover.pid);
      // Already exited when it resolves (a zombie until this process reaps it), so its ports are free.
      expect(hasExited(leftover.pid!)).toBe(true);
      expect(fs.existsSync(stale)).toBe(false);
      // This process's own folder is left alone.
      expect(fs.existsSync(live.path)).toBe(true);
    } finally {
      if (isAlive(leftover.pid!)) process.kill(leftover.pid!, 'SIGKILL');
      fs.rmSync(stale, { recursive: true, force: true });
      live.remove();
    }
  });
});

test('a one-node stream-only topology starts, reloads nginx with a new spec, and stops leaving nothing behind', async () => {
  const topology = await startTopology({ label: 'single', nodes: 1, proxyMode: 'stream' });
  let stopped = false;
  try {
    expect(topology.listeners).toEqual(['stream']);
    expect(topology.urls.httpWebSocket).toBeUndefined();
    const conf = fs.readFileSync(topology.nginx.confPath, 'utf8');
    expect(conf).toContain('load_module /usr/lib/nginx/modules/ngx_stream_module.so;');
    expect(conf).toContain(`listen 127.0.0.1:${topology.ports.stream} ssl`);
    expect(conf).not.toContain('location /deepstream');
    // The smoke check needs no second node.
    expect(await smokeCheck(topology)).toMatchObject({ ok: true, line: expect.stringMatching(/on the only node/) });

    const client = await topology.connect('stream');
    expect(await topology.nodeOf(client)).toBe('deepstream-0');
    client.close();

    await topology.nginx.reload(topology.nginxSpec({ streamBalance: { strategy: 'least-conn' } }));
    expect(fs.readFileSync(topology.nginx.confPath, 'utf8')).toContain('least_conn;');
    const again = await topology.connect('stream');
    expect(await topology.nodeOf(again)).toBe('deepstream-0');
    again.close();

    // Every process runs inside the run folder: nginx master and workers, redis, the node.
    const runFolder = topology.runFolder;
    const pids = processesWorkingIn([runFolder]);
    expect(pids).toContain(topology.nginx.masterPid);
    expect(pids).toContain(topology.nodes[0]!.pid);
    expect(pids.length).toBeGreaterThanOrEqual(4);
    await topology.stop();
    stopped = true;
    expect(pids.filter(isAlive)).toEqual([]);
    expect(topology.nodes.every((node) => !node.isRunning())).toBe(true);
    expect(topology.redis.isRunning()).toBe(false);
    expect(topology.nginx.isRunning()).toBe(false);
    expect(fs.existsSync(runFolder)).toBe(false);
  } finally {
    if (!stopped) await topology.stop();
  }
});

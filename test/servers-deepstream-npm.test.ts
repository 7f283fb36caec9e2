/**
 * Runs the real `npm install` step of the rendered deepstream user data in a staging root (npm
 * registry needed, as for `npm ci`), then starts the server it installed with the rendered config.
 * This proves the pinned package.json, the uWebSockets.js override and its stub install, and that
 * the rendered launcher runs the installed server.
 */
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { deepstreamBackend, deepstreamLauncherArgs } from '../servers/deepstream';
import type { NodeRenderInput } from '../servers/profile';
import { freePort, makeTempDir, ProcessGroup, removeDir, runScriptInRootAsync, stepNumber, waitForHttp200 } from './servers-helpers';

describe('deepstream user data: npm install step (real npm) and the installed server', () => {
  let dir: string;
  const processes = new ProcessGroup();
  afterAll(async () => {
    await processes.stopAll();
    removeDir(dir);
  });

  it('installs the pinned server with the stub, links Node.js, is idempotent, and the installed server starts', async () => {
    dir = makeTempDir('deepstream-npm');
    const root = join(dir, 'root');
    const redisPort = await freePort();
    const port = await freePort();
    const input: NodeRenderInput = { nodeName: 'deepstream-npm', version: '7.0.2', listenHost: '127.0.0.1', listenPort: port, redis: { host: '127.0.0.1', port: redisPort, tls: false } };
    const script = deepstreamBackend.renderUserData(input);
    const env = {
      REALTIME_EDGE_ROOT: root,
      REALTIME_EDGE_STEPS: String(stepNumber(script, 'npm install')),
      // Reuse the developer's npm cache; the step's own default is a cache under the root.
      npm_config_cache: join(homedir(), '.npm'),
      npm_config_prefer_offline: 'true',
    };
    const first = await runScriptInRootAsync(dir, script, env);
    expect(first.stdout + first.stderr).not.toMatch(/FAILED/);
    expect(first.status).toBe(0);
    const installDir = join(root, 'opt/deepstream');
    expect(JSON.parse(readFileSync(join(installDir, 'node_modules/@deepstream/server/package.json'), 'utf8')).version).toBe('7.0.2');
    expect(JSON.parse(readFileSync(join(installDir, 'node_modules/@deepstream/clusternode-redis/package.json'), 'utf8')).version).toBe('1.0.1');
    expect(JSON.parse(readFileSync(join(installDir, 'node_modules/@deepstream/cache-redis/package.json'), 'utf8')).version).toBe('2.0.9');
    expect(readlinkSync(join(installDir, 'node_modules/uWebSockets.js'))).toBe('../vendor/uwebsockets-stub');
    expect(lstatSync(join(installDir, 'bin/node')).isSymbolicLink()).toBe(true);

    const again = await runScriptInRootAsync(dir, script, env);
    expect(again.status).toBe(0);
    expect(again.stdout + again.stderr).toContain('deepstream packages already installed');

    // The installed tree serves the rendered config (files written by the same run).
    expect(existsSync(join(root, 'etc/deepstream/config.yml'))).toBe(true);
    processes.start('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
    // Started as the systemd unit starts it: the installed Node.js runs the rendered launcher on
    // the rendered config and the installed server package.
    const args = deepstreamLauncherArgs({
      launcher: join(root, 'etc/deepstream/deepstream-launcher.js'),
      config: join(root, 'etc/deepstream/config.yml'),
      serverPackageDir: join(installDir, 'node_modules/@deepstream/server'),
    });
    processes.start('deepstream', join(installDir, 'bin/node'), args);
    try {
      await waitForHttp200(`http://127.0.0.1:${port}/health-check`);
    } catch (error) {
      throw new Error(`${String(error)}\n${processes.output('deepstream')}`);
    }
  });
});

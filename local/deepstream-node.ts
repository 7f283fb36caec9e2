/**
 * One deepstream node of the local topology: the files rendered by the deepstream backend (the
 * same renderer as EC2 user data, with a loopback listen address and port) written into the node's
 * folder, and `@deepstream/server` from node_modules started on them by the rendered launcher, the
 * same file systemd runs on EC2.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEEPSTREAM_LAUNCHER_KIND, deepstreamBackend, deepstreamLauncherArgs } from '../servers/deepstream';
import type { NodeRenderInput, RenderedFile } from '../servers/profile';
import { startIdentityProvider, type IdentityProvider } from './node-identity';
import { LOOPBACK } from './ports';
import { startProcess, type ManagedProcess } from './processes';
import { httpGetStatus, waitUntil } from './readiness';

/** deepstream's main config file name; its sibling files (permissions.yml) are loaded relative to it. */
const CONFIG_FILE_NAME = 'config.yml';

export interface NodeHandle {
  /** deepstream serverName, unique in the cluster. */
  readonly name: string;
  readonly port: number;
  /** Direct WebSocket URL (bypasses nginx). */
  readonly directUrl: string;
  readonly healthUrl: string;
  readonly configPath: string;
  readonly logPath: string;
  readonly pid: number | undefined;
  isRunning(): boolean;
  /** HTTP status of the health check, or `down` when the node does not answer. */
  health(): Promise<number | 'down'>;
  /** Sends `signal` (SIGKILL for a crash) and waits until the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the node again with the same config (after `kill`) and waits until it is healthy. */
  restart(): Promise<void>;
  /** Graceful stop (SIGTERM, SIGKILL after a grace period). */
  stop(): Promise<void>;
}

export interface StartNodeOptions {
  readonly dir: string;
  readonly render: NodeRenderInput;
  /** Start the node-identity provider on it (see node-identity.ts). */
  readonly identity: boolean;
}

export interface NodeFiles {
  /** The main config (`config.yml`). */
  readonly configPath: string;
  /** The rendered launcher script that starts the node on it. */
  readonly launcherPath: string;
}

/** Writes the rendered files into `dir` by file name; returns where the config and launcher went. */
export function writeNodeFiles(dir: string, files: readonly RenderedFile[]): NodeFiles {
  let configPath: string | undefined;
  let launcherPath: string | undefined;
  for (const file of files) {
    const target = path.join(dir, path.basename(file.path));
    fs.writeFileSync(target, file.content, { mode: parseInt(file.mode, 8) });
    if (path.basename(file.path) === CONFIG_FILE_NAME) configPath = target;
    if (file.kind === DEEPSTREAM_LAUNCHER_KIND) launcherPath = target;
  }
  if (!configPath) throw new Error(`the deepstream renderer returned no ${CONFIG_FILE_NAME}`);
  if (!launcherPath) throw new Error(`the deepstream renderer returned no file of kind ${DEEPSTREAM_LAUNCHER_KIND}`);
  return { configPath, launcherPath };
}

/** The `@deepstream/server` package in this project's node_modules. */
function serverPackageDir(): string {
  return path.dirname(require.resolve('@deepstream/server/package.json'));
}

export async function startDeepstreamNode(options: StartNodeOptions): Promise<NodeHandle> {
  const { dir, render } = options;
  const port = render.listenPort ?? deepstreamBackend.profile.port;
  const host = render.listenHost ?? LOOPBACK;
  const { configPath, launcherPath } = writeNodeFiles(dir, deepstreamBackend.renderConfigFiles(render));
  const launchArgs = deepstreamLauncherArgs({ launcher: launcherPath, config: configPath, serverPackageDir: serverPackageDir() });
  const logPath = path.join(dir, 'deepstream.log');
  const healthUrl = `http://${host}:${port}${deepstreamBackend.profile.healthPath}`;
  const directUrl = `ws://${host}:${port}${deepstreamBackend.profile.clientPath}`;
  let current: ManagedProcess | undefined;
  let identity: IdentityProvider | undefined;

  const health = async (): Promise<number | 'down'> => {
    try {
      return await httpGetStatus(healthUrl);
    } catch {
      return 'down';
    }
  };

  async function launch(): Promise<void> {
    const proc = startProcess({
      name: render.nodeName,
      command: process.execPath,
      args: launchArgs,
      cwd: dir,
      logPath,
    });
    current = proc;
    const exited = (): string | undefined => (proc.isRunning() ? undefined : `the process exited; see ${logPath}`);
    try {
      await waitUntil(async () => (await health()) === 200, {
        what: `deepstream node ${render.nodeName} (${healthUrl})`,
        timeoutMs: 30_000,
        intervalMs: 150,
        abortReason: exited,
      });
      if (options.identity) {
        // Health answers before every endpoint takes logins under load, and the provider's client
        // never reconnects by itself: a first login that fails or hangs is retried, not fatal.
        await waitUntil(
          async () => {
            identity = await startIdentityProvider(render.nodeName, directUrl);
            return true;
          },
          {
            what: `identity RPC on deepstream node ${render.nodeName} (${directUrl})`,
            timeoutMs: 30_000,
            intervalMs: 150,
            abortReason: exited,
          },
        );
      }
    } catch (error) {
      // A node that never became ready is not handed out, so nobody else would stop it.
      await proc.stop({ graceMs: 1000 });
      throw error;
    }
  }

  async function dropIdentity(): Promise<void> {
    const provider = identity;
    identity = undefined;
    await provider?.close();
  }

  await launch();
  return {
    name: render.nodeName,
    port,
    directUrl,
    healthUrl,
    configPath,
    logPath,
    get pid() {
      return current?.pid;
    },
    isRunning: () => current?.isRunning() ?? false,
    health,
    kill: async (signal = 'SIGKILL') => {
      const proc = current;
      if (!proc?.isRunning()) return;
      proc.signalGroup(signal);
      await proc.exited;
      await dropIdentity();
    },
    restart: async () => {
      if (current?.isRunning()) throw new Error(`deepstream node ${render.nodeName} is still running; kill it before restart`);
      await launch();
    },
    stop: async () => {
      await dropIdentity();
      await current?.stop({ signal: 'SIGTERM', graceMs: 5000 });
    },
  };
}

/**
 * Wall time of the developer tools: `npm run render` for the prod stack, the mock test suite, and the
 * nginx build script (configure + make) run against the nginx source served on loopback, exactly as
 * test/nginx-build.test.ts runs it: a throwaway OpenPGP key signs Debian's copy of the upstream tarball
 * and is the only pinned key, system steps are off.
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { nginxPathsUnderPrefix, renderNginxBuildScript } from '../nginx/build';
import { PROJECT_ROOT } from '../local/run-folder';
import type { ToolTiming } from './results';

const NGINX_SOURCE = path.join(PROJECT_ROOT, '.cache', 'nginx-src', 'nginx_1.22.1.orig.tar.gz');
const NGINX_SOURCE_VERSION = '1.22.1';
const round2 = (value: number): number => Math.round(value * 100) / 100;

function tail(text: string, lines = 6): string {
  return text.trim().split('\n').slice(-lines).join(' | ');
}

/** Runs a command, timing it; never throws (a failing tool is a figure in the report). */
function timeCommand(name: string, command: string, args: readonly string[], display: string, timeoutMs: number): Promise<ToolTiming> {
  return new Promise((resolve) => {
    const started = performance.now();
    execFile(command, [...args], { cwd: PROJECT_ROOT, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const seconds = round2((performance.now() - started) / 1000);
      if (error) {
        resolve({ name, command: display, seconds, ok: false, note: `failed (${error.code ?? error.signal}): ${tail(`${stdout}\n${stderr}`)}` });
      } else {
        resolve({ name, command: display, seconds, ok: true, note: '' });
      }
    });
  });
}

export async function timeRender(): Promise<ToolTiming> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-render-'));
  try {
    return await timeCommand(
      'render (prod stack)',
      'npm',
      ['run', '--silent', 'render', '--', '--stack', 'prod', '--out', out],
      'npm run render -- --stack prod --out <tmp>',
      120_000,
    );
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

export function timeMockTests(): Promise<ToolTiming> {
  return timeCommand('mock test suite', 'npx', ['jest', 'test/components-'], 'npx jest test/components-', 600_000);
}

function mustRun(command: string, args: readonly string[], env: NodeJS.ProcessEnv): string {
  const result = spawnSync(command, [...args], { encoding: 'utf8', env });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${tail(`${result.stdout}${result.stderr}`)}`);
  return result.stdout;
}

/** Seconds between two step lines of the build log ("<ISO time> [nginx-build] <step>..."). */
function stepSeconds(log: string, from: string, to: string): number | null {
  const at = (step: string): number | null => {
    const line = log.split('\n').find((entry) => entry.includes(`[nginx-build] ${step}`));
    const stamp = line ? /^(\S+Z)/.exec(line)?.[1] : undefined;
    return stamp ? Date.parse(stamp) : null;
  };
  const start = at(from);
  const end = at(to);
  return start !== null && end !== null ? (end - start) / 1000 : null;
}

/** The nginx the build script installed, kept for the heap profile (it has symbols: nginx compiles
 * with -g and the script does not strip). */
export interface BuiltNginx {
  readonly binary: string;
  readonly version: string;
  remove(): void;
}

export interface NginxBuildTiming {
  readonly timing: ToolTiming;
  /** Null when the build failed or the install was not kept. */
  readonly built: BuiltNginx | null;
}

export async function timeNginxBuild(options: { readonly keepInstall?: boolean } = {}): Promise<NginxBuildTiming> {
  const display = 'bash <renderNginxBuildScript, system steps off> (download from loopback, verify, configure, make, install)';
  if (!fs.existsSync(NGINX_SOURCE)) {
    return {
      timing: { name: 'nginx build script', command: display, seconds: null, ok: false, note: `missing ${NGINX_SOURCE} (test/fixtures/fetch-nginx-source.sh)` },
      built: null,
    };
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nginx-build-'));
  const installRoot = options.keepInstall ? fs.mkdtempSync(path.join(os.tmpdir(), 'bench-nginx-install-')) : root;
  const installPaths = nginxPathsUnderPrefix(path.join(installRoot, 'prefix'));
  let kept = false;
  let server: http.Server | undefined;
  const gnupgHome = path.join(root, 'gnupg');
  try {
    const www = path.join(root, 'www');
    fs.mkdirSync(www, { recursive: true });
    fs.mkdirSync(gnupgHome, { mode: 0o700 });
    const env = { ...process.env, GNUPGHOME: gnupgHome };
    mustRun('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', 'bench <bench@example.invalid>', 'ed25519', 'sign', 'never'], env);
    const fingerprint = mustRun('gpg', ['--batch', '--with-colons', '--list-keys'], env)
      .split('\n')
      .find((line) => line.startsWith('fpr:'))
      ?.split(':')[9];
    if (!fingerprint) throw new Error('no fingerprint for the throwaway signing key');
    fs.writeFileSync(path.join(www, 'key.asc'), mustRun('gpg', ['--batch', '--armor', '--export', fingerprint], env));
    const tarball = path.join(www, `nginx-${NGINX_SOURCE_VERSION}.tar.gz`);
    fs.copyFileSync(NGINX_SOURCE, tarball);
    mustRun('gpg', ['--batch', '--yes', '--armor', '--local-user', fingerprint, '--output', `${tarball}.asc`, '--detach-sign', tarball], env);

    server = http.createServer((request, response) => {
      const file = path.join(www, path.basename(new URL(request.url ?? '/', 'http://x').pathname));
      if (!fs.existsSync(file)) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-length': fs.statSync(file).size });
      fs.createReadStream(file).pipe(response);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const logFile = path.join(root, 'build.log');
    const script = path.join(root, 'build.sh');
    fs.writeFileSync(
      script,
      renderNginxBuildScript({
        limitNofile: 8192,
        version: NGINX_SOURCE_VERSION,
        downloadBaseUrl: baseUrl,
        pgpKeyUrls: [`${baseUrl}/key.asc`],
        pgpFingerprints: [fingerprint],
        paths: installPaths,
        user: 'nobody',
        group: 'nogroup',
        workDir: path.join(root, 'work'),
        logFile,
        steps: { installDependencies: false, createUser: false, systemd: false, sysctl: false, logrotate: false },
      }),
    );
    const timing = await timeCommand('nginx build script', 'bash', [script], display, 900_000);
    const log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
    const configure = stepSeconds(log, 'configuring:', 'compiling with');
    const make = stepSeconds(log, 'compiling with', 'installing into');
    const split = configure !== null && make !== null ? `configure ${configure} s, make ${make} s (log timestamps, 1 s resolution)` : '';
    const binary = installPaths.sbinPath;
    kept = Boolean(options.keepInstall) && timing.ok && fs.existsSync(binary);
    return {
      timing: { ...timing, note: [timing.note, split].filter(Boolean).join('; ') },
      built: kept
        ? { binary, version: `${NGINX_SOURCE_VERSION}, built by the build script`, remove: () => fs.rmSync(installRoot, { recursive: true, force: true }) }
        : null,
    };
  } catch (error) {
    return { timing: { name: 'nginx build script', command: display, seconds: null, ok: false, note: (error as Error).message }, built: null };
  } finally {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    spawnSync('gpgconf', ['--homedir', gnupgHome, '--kill', 'all']);
    fs.rmSync(root, { recursive: true, force: true });
    if (!kept && installRoot !== root) fs.rmSync(installRoot, { recursive: true, force: true });
  }
}

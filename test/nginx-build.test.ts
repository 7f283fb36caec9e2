/**
 * The nginx build script and its companions, checked with real tools: shellcheck and bash -n on
 * every variant, a real signed download + configure + make from a loopback server, nginx -t and
 * nginx -V on the result, refusals of tampered, foreign-signed and wrong-checksum tarballs,
 * systemd-analyze on the unit, the kernel on the sysctl keys, and a running nginx for the
 * apply-config script and logrotate.
 */
import { execFile, spawnSync, type SpawnSyncReturns } from 'child_process';
import fs from 'fs';
import http from 'http';
import net from 'net';
import os from 'os';
import path from 'path';
import fc from 'fast-check';
import {
  NGINX_HARDENING_FLAGS,
  NGINX_LOGROTATE_PATH,
  NGINX_REQUIRED_MODULE_FLAGS,
  NGINX_SYSCTL_PATH,
  NGINX_SYSTEMD_UNIT_PATH,
  NGINX_UNUSED_MODULE_FLAGS,
  nginxPathsUnderPrefix,
  renderNginxApplyConfigScript,
  renderNginxBuildScript,
  renderNginxLogrotate,
  renderNginxSysctl,
  renderNginxSystemdUnit,
  shellQuote,
  type NginxBuildOptions,
} from '../nginx/build';
import { quotedHeredoc } from '../servers/shell';
import { nginxCapacity, renderNginxConf } from '../nginx/conf';
import { centrifugoProfile } from '../servers/centrifugo';
import { deepstreamProfile } from '../servers/deepstream';
import { checkNginxConf, freePort, freePorts, makeNginxPrefix, parseNginxConf, type NginxTestPrefix } from './helpers/nginx';
import WebSocket, { WebSocketServer } from 'ws';
import { profileNginxHeap, type IdleClients } from '../bench/heap-profile';
import { nginxPathsIn } from '../local/nginx-process';
import type { NginxSpec } from '../nginx/spec';

const SOURCE_TARBALL = path.resolve(__dirname, '../.cache/nginx-src/nginx_1.22.1.orig.tar.gz');
const SOURCE_SHA256 = '9ebb333a9e82b952acd3e2b4aeb1d4ff6406f72491bab6cd9fe69f0dea737f31';
const VERSION = '1.22.1';
const TARBALL_NAME = `nginx-${VERSION}.tar.gz`;
const STEPS_OFF = { installDependencies: false, createUser: false, systemd: false, sysctl: false, logrotate: false };
// Debian's own nginx: its stream module is dynamic, so without load_module it must reject `stream`.
const DEBIAN_NGINX = '/usr/sbin/nginx';

interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Async on purpose: the scripts download from a server living in this very process. */
function runBash(script: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile('bash', [script, ...args], { env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function run(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  return spawnSync(command, args, { encoding: 'utf8', env: env ?? process.env, maxBuffer: 64 * 1024 * 1024 });
}

function mustRun(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): string {
  const result = run(command, args, env);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status}:\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

function writeFile(file: string, content: string, mode = 0o644): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content, { mode });
  return file;
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** Polls until `check` holds (reload and log reopening are asynchronous in nginx). */
async function eventually(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`never became true: ${what}`);
}

/** A throwaway OpenPGP identity in its own GNUPGHOME (ed25519: generated in milliseconds). */
interface TestSigner {
  readonly home: string;
  readonly fingerprint: string;
  readonly publicKeyFile: string;
  sign(file: string, signatureFile: string): void;
}

function createSigner(home: string, name: string, publicKeyFile: string): TestSigner {
  fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  const env = { ...process.env, GNUPGHOME: home };
  mustRun('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', `${name} <${name}@example.invalid>`, 'ed25519', 'sign', 'never'], env);
  const colons = mustRun('gpg', ['--batch', '--with-colons', '--list-keys'], env);
  const fingerprint = colons.split('\n').find((line) => line.startsWith('fpr:'))?.split(':')[9];
  if (!fingerprint) throw new Error(`no fingerprint for test key ${name}`);
  fs.writeFileSync(publicKeyFile, mustRun('gpg', ['--batch', '--armor', '--export', fingerprint], env));
  return {
    home,
    fingerprint,
    publicKeyFile,
    sign(file, signatureFile) {
      mustRun('gpg', ['--batch', '--yes', '--armor', '--local-user', fingerprint, '--output', signatureFile, '--detach-sign', file], env);
    },
  };
}

// ---------------------------------------------------------------------------------------------

describe('shell quoting', () => {
  const awkwardString = fc.string({
    unit: fc.constantFrom("'", '"', '$', '`', '\\', '\n', '\t', ' ', '!', '*', '?', '[', ']', '~', '#', ';', '&', '|', '(', ')', '<', '>', '{', '}', '=', '%', 'a', 'é', '€'),
    maxLength: 12,
  });
  const anyString = fc.oneof(fc.string({ unit: 'binary', maxLength: 24 }), awkwardString).filter(
    (value) => !value.includes('\0') && Buffer.from(value, 'utf8').toString('utf8') === value,
  );

  it('shellQuote makes any string one bash word with exactly that value (argument, assignment, array)', () => {
    fc.assert(
      fc.property(fc.array(anyString, { minLength: 1, maxLength: 12 }), (values) => {
        const lines = values.map((value) => {
          const word = shellQuote(value);
          return `printf '%s\\0' ${word}; v=${word}; printf '%s\\0' "$v"; a=(${word}); printf '%s\\0' "\${#a[@]}" "\${a[@]}"`;
        });
        const result = run('bash', ['-c', lines.join('\n')]);
        expect(result.status).toBe(0);
        const expected = values.flatMap((value) => [value, value, '1', value]);
        expect(result.stdout.split('\0').slice(0, -1)).toEqual(expected);
      }),
      { numRuns: 30 },
    );
  });

  it('shellQuote refuses NUL, which bash cannot hold', () => {
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
  });

  it('a quoted here-document carries any lines verbatim, even a line equal to its tag', () => {
    const line = fc.oneof(fc.constant('TAG'), fc.constant('TAG_1'), awkwardString.filter((s) => !s.includes('\n')));
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 8 }), (lines) => {
        const content = `${lines.join('\n')}\n`;
        const doc = quotedHeredoc(content, 'TAG');
        const result = run('bash', ['-c', `cat ${doc.operator}\n${doc.body}\n`]);
        expect(result.status).toBe(0);
        expect(result.stdout).toBe(content);
      }),
      { numRuns: 25 },
    );
  });
});

describe('option validation', () => {
  const base: NginxBuildOptions = { limitNofile: 65536 };
  it.each<[string, NginxBuildOptions, RegExp]>([
    ['version', { ...base, version: '1.30' }, /`version` = "1\.30": expected an nginx release number like 1\.30\.6/],
    ['sha256', { ...base, sha256: 'abc' }, /`sha256` = "abc": expected 64 hexadecimal digits/],
    ['short key id', { ...base, pgpFingerprints: ['15D87369'] }, /`pgpFingerprints\.0` = "15D87369": expected a full 40-hex-digit/],
    ['managed flag', { ...base, extraConfigureFlags: ['--prefix=/opt'] }, /`extraConfigureFlags\.0` = "--prefix=\/opt": set by the script/],
    ['path with a space', { ...base, paths: { prefix: '/opt/my nginx' } }, /`paths\.prefix` = "\/opt\/my nginx": expected an absolute path/],
    ['limitNofile', { ...base, limitNofile: 100 }, /`limitNofile` = 100: expected an integer from 1024 to/],
    ['port range', { ...base, sysctl: { localPortRange: [60000, 2000] } }, /`sysctl\.localPortRange` = \[60000,2000\]: expected \[low, high\] with low < high/],
    ['unknown option', { ...base, prefix: '/opt' } as unknown as NginxBuildOptions, /unknown option `prefix` \(allowed: limitNofile, version/],
    ['unknown step', { ...base, steps: { sysctls: false } } as unknown as NginxBuildOptions, /unknown option `steps\.sysctls`/],
  ])('refuses a bad %s with the field, the value and what is allowed', (_name, options, message) => {
    expect(() => renderNginxBuildScript(options)).toThrow(message);
  });

  it('reports every bad field at once', () => {
    expect(() => renderNginxBuildScript({ limitNofile: 1, version: 'x' })).toThrow(/limitNofile[\s\S]*version/);
  });

  it('refuses an empty reload command for the apply script', () => {
    expect(() => renderNginxApplyConfigScript({ reloadCommand: [] })).toThrow(/`reloadCommand` = \[\]: expected a command/);
  });
});

describe('rendered scripts are shellcheck and bash -n clean in every variant', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nginx-build-lint-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const variants: Record<string, string> = {
    'build-defaults.sh': renderNginxBuildScript({ limitNofile: 200_000 }),
    'build-with-sha.sh': renderNginxBuildScript({ limitNofile: 200_000, sha256: SOURCE_SHA256.toUpperCase() }),
    'build-steps-off.sh': renderNginxBuildScript({
      limitNofile: 4096,
      version: VERSION,
      steps: STEPS_OFF,
      paths: nginxPathsUnderPrefix('/tmp/x/prefix'),
      workDir: '/tmp/x/work',
      logFile: '/tmp/x/build.log',
    }),
    'build-all-options.sh': renderNginxBuildScript({
      limitNofile: 2_000_000,
      version: '1.30.6',
      downloadBaseUrl: 'https://mirror.example.com/nginx/',
      sha256: SOURCE_SHA256,
      pgpKeyUrls: ['https://keys.example.com/a.key?x=1&y=2'],
      pgpFingerprints: ['4338 7825 DDB1 BB97 EC36  BA5D 007C 8D7C 15D8 7369'],
      extraConfigureFlags: ['--with-threads', `--with-cc-opt=-DNAME='it'"s" $HOME \`x\``],
      keepUnusedModules: true,
      paths: { prefix: '/opt/nginx', confPath: '/etc/realtime-edge/nginx.conf' },
      user: 'www-data',
      group: 'www-data',
      startService: false,
      sysctl: { somaxconn: 4096, localPortRange: [20000, 60999], fileMax: 5_000_000 },
      stopTimeoutSeconds: 90,
      logRetentionDays: 3,
      systemRoot: '/tmp/root/',
      osReleasePath: '/usr/lib/os-release',
    }),
    'apply-defaults.sh': renderNginxApplyConfigScript(),
    'apply-custom.sh': renderNginxApplyConfigScript({
      confPath: '/opt/nginx/conf/nginx.conf',
      nginxBinary: '/opt/nginx/sbin/nginx',
      reloadCommand: ['/opt/nginx/sbin/nginx', '-s', 'reload', "it's $(odd)"],
    }),
  };
  const files = Object.entries(variants).map(([name, text]) => writeFile(path.join(dir, name), text));

  it('shellcheck (style severity) finds nothing', () => {
    const result = run('shellcheck', ['--shell=bash', '--severity=style', ...files]);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it.each(Object.keys(variants))('bash -n accepts %s', (name) => {
    const result = run('bash', ['-n', path.join(dir, name)]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('embeds awkward configure flags verbatim (bash sees exactly the flag that was given)', () => {
    const flag = `--with-cc-opt=-DNAME='it'"s" $HOME \`x\``;
    const script = path.join(dir, 'build-all-options.sh');
    const extract = `eval "$(grep '^readonly -a CONFIGURE_ARGS=' ${shellQuote(script)})"; printf '%s\\n' "\${CONFIGURE_ARGS[-1]}"`;
    expect(run('bash', ['-c', extract]).stdout).toBe(`${flag}\n`);
  });
});

describe('sysctl settings', () => {
  it('every key is a real kernel parameter and every value a number list', () => {
    for (const limitNofile of [65_536, 2_000_000]) {
      const settings = renderNginxSysctl({ limitNofile })
        .split('\n')
        .filter((line) => line.trim() !== '' && !line.startsWith('#'))
        .map((line) => line.split(/\s*=\s*/));
      expect(settings.length).toBeGreaterThanOrEqual(limitNofile > 1_048_576 ? 5 : 4);
      for (const [key, value] of settings) {
        expect(fs.existsSync(`/proc/sys/${key.replace(/\./g, '/')}`)).toBe(true);
        expect(value).toMatch(/^\d+( \d+)?$/);
      }
      const nrOpen = settings.find(([key]) => key === 'fs.nr_open');
      expect(nrOpen?.[1]).toBe(limitNofile > 1_048_576 ? String(limitNofile) : undefined);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('real build from a signed tarball on a loopback server', () => {
  let root = '';
  let server: http.Server | undefined;
  let baseUrl = '';
  const requests: string[] = [];
  let trusted: TestSigner;
  let stranger: TestSigner;
  let prefix = '';
  let buildOptions: NginxBuildOptions;
  let buildScript = '';
  let firstRun: RunResult;
  let confPrefix: NginxTestPrefix;

  const nginxBinary = () => path.join(prefix, 'sbin/nginx');

  /** Same source, same pins, own prefix and work dir: for the runs that must be refused. */
  function isolatedOptions(name: string, overrides: Partial<NginxBuildOptions>): NginxBuildOptions {
    return {
      ...buildOptions,
      paths: nginxPathsUnderPrefix(path.join(root, name, 'prefix')),
      workDir: path.join(root, name, 'work'),
      logFile: path.join(root, name, 'build.log'),
      ...overrides,
    };
  }

  async function runBuild(name: string, options: NginxBuildOptions, env?: NodeJS.ProcessEnv): Promise<RunResult> {
    const script = writeFile(path.join(root, 'scripts', `${name}.sh`), renderNginxBuildScript(options));
    return runBash(script, [], env);
  }

  beforeAll(async () => {
    if (!fs.existsSync(SOURCE_TARBALL)) {
      throw new Error(
        `missing ${SOURCE_TARBALL}: the real nginx build test needs Debian's nginx 1.22.1 source. ` +
          'Run test/fixtures/fetch-nginx-source.sh (it needs a deb-src entry for bookworm, see .ci/run).',
      );
    }
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'nginx-build-'));
    confPrefix = makeNginxPrefix('build');
    const www = path.join(root, 'www');
    for (const dir of ['good', 'tampered', 'foreign', 'keys']) fs.mkdirSync(path.join(www, dir), { recursive: true });
    trusted = createSigner(path.join(root, 'gnupg-trusted'), 'trusted', path.join(www, 'keys/trusted.asc'));
    stranger = createSigner(path.join(root, 'gnupg-stranger'), 'stranger', path.join(www, 'keys/stranger.asc'));

    // good/: the real tarball signed by the pinned key.
    const good = path.join(www, 'good', TARBALL_NAME);
    fs.copyFileSync(SOURCE_TARBALL, good);
    trusted.sign(good, `${good}.asc`);
    // tampered/: that signature, but one byte of the tarball changed after signing.
    const tampered = path.join(www, 'tampered', TARBALL_NAME);
    const bytes = fs.readFileSync(SOURCE_TARBALL);
    bytes[bytes.length >> 1] ^= 0xff;
    fs.writeFileSync(tampered, bytes);
    fs.copyFileSync(`${good}.asc`, `${tampered}.asc`);
    // foreign/: the real tarball, validly signed by a key that is not pinned.
    const foreign = path.join(www, 'foreign', TARBALL_NAME);
    fs.copyFileSync(SOURCE_TARBALL, foreign);
    stranger.sign(foreign, `${foreign}.asc`);

    server = http.createServer((request, response) => {
      const urlPath = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname);
      requests.push(urlPath);
      const file = path.join(www, path.normalize(urlPath));
      if (!file.startsWith(www) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
        response.writeHead(404).end('not found');
        return;
      }
      response.writeHead(200, { 'content-length': fs.statSync(file).size });
      fs.createReadStream(file).pipe(response);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;

    prefix = path.join(root, 'main', 'prefix');
    buildOptions = {
      limitNofile: 8192,
      version: VERSION,
      downloadBaseUrl: `${baseUrl}/good`,
      sha256: SOURCE_SHA256,
      // Both keys are fetched: only the pin decides which signature counts.
      pgpKeyUrls: [`${baseUrl}/keys/trusted.asc`, `${baseUrl}/keys/stranger.asc`],
      pgpFingerprints: [trusted.fingerprint],
      extraConfigureFlags: ['--with-threads'],
      paths: nginxPathsUnderPrefix(prefix),
      // Root runs the tests, so nginx -t switches to this (existing) worker user.
      user: 'nobody',
      group: 'nogroup',
      workDir: path.join(root, 'main', 'work'),
      logFile: path.join(root, 'main', 'build.log'),
      steps: STEPS_OFF,
    };
    buildScript = writeFile(path.join(root, 'scripts', 'main.sh'), renderNginxBuildScript(buildOptions));
    firstRun = await runBash(buildScript);
    if (firstRun.code !== 0) {
      const toolOutput = path.join(root, 'main', 'work', 'tool-output.log');
      const tail = fs.existsSync(toolOutput) ? fs.readFileSync(toolOutput, 'utf8').slice(-4000) : '';
      throw new Error(`the real build failed (exit ${firstRun.code}):\n${firstRun.stderr}\n${tail}`);
    }
  }, 400_000);

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    for (const signer of [trusted, stranger]) {
      if (signer) run('gpgconf', ['--homedir', signer.home, '--kill', 'all']);
    }
    if (root) fs.rmSync(root, { recursive: true, force: true });
    confPrefix?.cleanup();
  });

  it('verified, configured, compiled and installed, logging each step with a timestamp', () => {
    const log = fs.readFileSync(path.join(root, 'main', 'build.log'), 'utf8');
    for (const step of [
      'downloading',
      `sha256 matches the pinned ${SOURCE_SHA256}`,
      `PGP signature is valid and made by pinned key ${trusted.fingerprint}`,
      'configuring:',
      'compiling with',
      'installing into',
      `installed nginx version: nginx/${VERSION}`,
    ]) {
      expect(log).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ \\[nginx-build\\] .*${step.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
    }
    expect(firstRun.stderr).toContain('[nginx-build] done');
  });

  it('nginx -V lists the stream module, every required module, the hardening and the extra flags', () => {
    const result = run(nginxBinary(), ['-V']);
    expect(result.status).toBe(0);
    expect(result.stderr).toContain(`nginx version: nginx/${VERSION}`);
    for (const flag of [...NGINX_REQUIRED_MODULE_FLAGS, ...NGINX_HARDENING_FLAGS, ...NGINX_UNUSED_MODULE_FLAGS, '--with-threads']) {
      // nginx -V single-quotes values that contain spaces.
      const reported = flag.includes(' ') ? flag.replace('=', "='") + "'" : flag;
      expect(result.stderr).toContain(` ${reported}`);
    }
    expect(result.stderr).toContain(` --prefix=${prefix} `);
  });

  it('accepts a rendered stream + http config (TLS, both backends) without load_module; the dynamic-module nginx rejects it', async () => {
    const ports = await freePorts(4);
    const tls = { certificatePath: confPrefix.tls.certificatePath, keyPath: confPrefix.tls.keyPath };
    const conf = renderNginxConf({
      http: {
        listenPort: ports[0],
        redirectHttpPort: ports[1],
        tls: { ...tls, hstsMaxAgeSeconds: 31536000 },
        backends: [
          { profile: deepstreamProfile, servers: [{ host: '127.0.0.1' }, { host: '127.0.0.2', backup: true }], balance: { strategy: 'least-conn' } },
          { profile: centrifugoProfile, servers: [{ host: '127.0.0.1' }], prefix: '/centrifugo', balance: { strategy: 'hash', hashKey: '$cookie_affinity' } },
        ],
      },
      stream: {
        listeners: [
          { listenPort: ports[2], tls, backend: { profile: deepstreamProfile, servers: [{ host: '127.0.0.1', maxFails: 2, failTimeoutSeconds: 10 }], balance: { strategy: 'hash' } } },
        ],
      },
      streamModule: { kind: 'static' },
      maxConnections: 10_000,
      statusPort: ports[3],
      paths: confPrefix.paths,
    });
    const check = { addStreamModule: false, relocatePaths: true } as const;
    const built = await checkNginxConf(conf, { ...check, nginxBinary: nginxBinary() });
    expect(built.output).toContain('test is successful');
    expect(built.warnings).toEqual([]);
    expect(built.ok).toBe(true);
    // The same text needs the stream module: the Debian build (stream as a dynamic module) fails it.
    const dynamic = await checkNginxConf(conf, { ...check, nginxBinary: DEBIAN_NGINX });
    expect(dynamic.output).toContain('unknown directive "stream"');
    expect(dynamic.ok).toBe(false);
  });

  it('a heap profile of the built nginx (valgrind massif) attributes each idle WebSocket\'s allocations to their sites and directives', async () => {
    const [listenPort, upstreamPort] = await freePorts(2);
    const upstream = new WebSocketServer({ host: '127.0.0.1', port: upstreamPort });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'realtime-edge-heap-'));
    fs.chmodSync(dir, 0o755);
    const sockets: WebSocket[] = [];
    const clients: IdleClients = {
      open: async (url, count) => {
        const results = await Promise.all(
          Array.from({ length: count }, () => {
            const socket = new WebSocket(url);
            sockets.push(socket);
            return new Promise<string | null>((resolve) => {
              socket.once('open', () => resolve(null));
              socket.once('error', (error) => resolve(error.message));
            });
          }),
        );
        const errors = results.filter((result): result is string => result !== null);
        return { opened: count - errors.length, failed: errors.length, ...(errors[0] ? { firstError: errors[0] } : {}) };
      },
      closeAll: async () => {
        for (const socket of sockets.splice(0)) socket.terminate();
      },
    };
    try {
      const spec: NginxSpec = {
        http: {
          listenPort,
          tls: null,
          redirectHttpPort: null,
          backends: [{ profile: deepstreamProfile, servers: [{ host: '127.0.0.1', port: upstreamPort }], balance: { strategy: 'least-conn' } }],
        },
        statusPort: null,
        workerProcesses: 1,
        streamModule: { kind: 'static' },
        paths: nginxPathsIn(dir),
      };
      const [profile] = await profileNginxHeap({
        nginxBinary: nginxBinary(),
        nginxVersion: VERSION,
        listeners: [{ name: 'http', description: 'rendered http mode', dir, spec, url: `ws://127.0.0.1:${listenPort}/deepstream` }],
        connections: 40,
        settleMs: 300,
        clients,
        log: () => undefined,
      });
      expect(profile!.connections).toBe(40);
      const bytesSizedBy = (directive: string): number =>
        profile!.sites.filter((site) => site.directive === directive).reduce((total, site) => total + site.bytes, 0);
      // One relay buffer per direction of the upgraded connection, and the request header buffer:
      // exactly the rendered sizes, which the profile must find without knowing them.
      expect(bytesSizedBy('proxy_buffer_size')).toBe(2 * 1024);
      expect(bytesSizedBy('client_header_buffer_size')).toBe(1024);
      expect(profile!.sites.map((site) => site.site)).toEqual(expect.arrayContaining([expect.stringMatching(/^ngx_http_alloc_request \(ngx_http_request\.c:\d+\)$/)]));
      // The sites account for the heap growth: none is counted twice, little is lost below the threshold.
      const attributed = profile!.sites.reduce((total, site) => total + site.bytes, 0);
      expect(attributed).toBeGreaterThan(0.95 * profile!.heapBytesPerConnection);
      expect(attributed).toBeLessThan(1.02 * profile!.heapBytesPerConnection + 64);
    } finally {
      await clients.closeAll();
      await new Promise<void>((resolve) => upstream.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('a second run with the same version and flags is a no-op: no download, binary untouched', async () => {
    const before = fs.statSync(nginxBinary()).mtimeMs;
    const requestsBefore = requests.length;
    const again = await runBash(buildScript);
    expect(again.stderr).toContain('is already built with the same flags and checksum');
    expect(again.stderr).toContain('skipping download and build');
    expect(again.code).toBe(0);
    expect(fs.statSync(nginxBinary()).mtimeMs).toBe(before);
    expect(requests.slice(requestsBefore)).toEqual([]);
  });

  it('a run with a different identity does not skip; its failed verification leaves the install untouched', async () => {
    const before = fs.statSync(nginxBinary()).mtimeMs;
    const stamp = fs.readFileSync(path.join(prefix, '.realtime-edge-build-id'), 'utf8');
    const other = await runBuild('main-other-sha', { ...buildOptions, sha256: '0'.repeat(64) });
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain(`sha256 mismatch for ${TARBALL_NAME}: expected ${'0'.repeat(64)}, got ${SOURCE_SHA256}`);
    expect(fs.statSync(nginxBinary()).mtimeMs).toBe(before);
    expect(fs.readFileSync(path.join(prefix, '.realtime-edge-build-id'), 'utf8')).toBe(stamp);
  });

  it.each<[string, (base: string) => Partial<NginxBuildOptions>, RegExp]>([
    ['a tarball modified after signing', (base) => ({ downloadBaseUrl: `${base}/tampered`, sha256: undefined }), /BAD signature \(the tarball was modified after signing/],
    ['a valid signature by a key that is not pinned', (base) => ({ downloadBaseUrl: `${base}/foreign` }), /signed by [0-9A-F]{40}, which is not a pinned nginx release key/],
    ['a signature by a key that was never fetched', (base) => ({ downloadBaseUrl: `${base}/foreign`, pgpKeyUrls: [`${base}/keys/trusted.asc`] }), /no valid signature from any imported key/],
    ['a given sha256 that does not match', () => ({ sha256: 'f'.repeat(64) }), /sha256 mismatch .* Refusing to build/],
  ])('refuses %s, exits non-zero and installs nothing', async (name, overrides, message) => {
    const scenario = name.replace(/\W+/g, '-');
    const options = isolatedOptions(scenario, overrides(baseUrl));
    const result = await runBuild(scenario, options);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('Refusing to build');
    expect(result.code).not.toBe(0);
    expect(fs.existsSync(path.join(root, scenario, 'prefix'))).toBe(false);
    expect(fs.existsSync(path.join(root, scenario, 'work', 'src'))).toBe(false);
  });

  it('refuses the tampered tarball even without a pinned sha256, before extracting a byte', async () => {
    const options = isolatedOptions('tampered-no-sha', { downloadBaseUrl: `${baseUrl}/tampered`, sha256: undefined });
    const result = await runBuild('tampered-no-sha', options);
    expect(result.stderr).toContain('no sha256 pinned; relying on the PGP signature alone');
    expect(result.stderr).not.toContain('extracting');
    expect(result.code).not.toBe(0);
  });

  describe('system steps, with systemctl/sysctl/useradd/groupadd/getent replaced by recorders', () => {
    let systemRoot = '';
    let calls = '';
    let env: NodeJS.ProcessEnv;
    let options: NginxBuildOptions;

    beforeAll(() => {
      systemRoot = path.join(root, 'system-root');
      const bin = path.join(root, 'fake-bin');
      calls = path.join(root, 'system-calls.log');
      const recorder = `#!/usr/bin/env bash
printf '%s %s\\n' "$(basename "$0")" "$*" >>${shellQuote(calls)}
case "$(basename "$0") $1" in
  "systemctl is-active") exit 3 ;;
  getent*) exit 2 ;;
esac
exit 0
`;
      for (const tool of ['systemctl', 'sysctl', 'useradd', 'groupadd', 'getent']) writeFile(path.join(bin, tool), recorder, 0o755);
      env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
      // Same identity as the main build, so the build itself is skipped and only system steps run.
      options = {
        ...buildOptions,
        steps: { installDependencies: false, createUser: true, systemd: true, sysctl: true, logrotate: true },
        systemRoot,
      };
    });

    it('installs the rendered unit, sysctl and logrotate files and drives the tools in order', async () => {
      const result = await runBuild('system-steps', options, env);
      expect(result.stderr).toContain('skipping download and build');
      expect(result.code).toBe(0);

      const paths = nginxPathsUnderPrefix(prefix);
      expect(fs.readFileSync(path.join(systemRoot, NGINX_SYSTEMD_UNIT_PATH), 'utf8')).toBe(
        renderNginxSystemdUnit({ limitNofile: 8192, paths }),
      );
      expect(fs.readFileSync(path.join(systemRoot, NGINX_LOGROTATE_PATH), 'utf8')).toBe(
        renderNginxLogrotate({ paths, user: 'nobody', group: 'nogroup' }),
      );
      // fs.file-max is dropped when the running kernel already allows more.
      const rendered = renderNginxSysctl({ limitNofile: 8192 });
      const kernelFileMax = BigInt(fs.readFileSync('/proc/sys/fs/file-max', 'utf8').trim());
      const wanted = BigInt(/^fs\.file-max = (\d+)$/m.exec(rendered)![1]);
      const expectedSysctl = kernelFileMax > wanted ? rendered.replace(/^fs\.file-max = \d+\n/m, '') : rendered;
      const sysctlFile = path.join(systemRoot, NGINX_SYSCTL_PATH);
      expect(fs.readFileSync(sysctlFile, 'utf8')).toBe(expectedSysctl);

      expect(fs.readFileSync(calls, 'utf8').trim().split('\n')).toEqual([
        'getent group nogroup',
        'groupadd --system nogroup',
        'getent passwd nobody',
        'useradd --system --gid nogroup --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment nginx workers (realtime-edge) nobody',
        `sysctl -p ${sysctlFile}`,
        'systemctl daemon-reload',
        'systemctl enable nginx.service',
        'systemctl is-active --quiet nginx.service',
        'systemctl start nginx.service',
      ]);
    });

    it('a re-run rewrites nothing and skips daemon-reload', async () => {
      fs.writeFileSync(calls, '');
      const result = await runBuild('system-steps-again', options, env);
      expect(result.code).toBe(0);
      for (const file of [NGINX_SYSTEMD_UNIT_PATH, NGINX_SYSCTL_PATH, NGINX_LOGROTATE_PATH]) {
        expect(result.stderr).toContain(`${systemRoot}${file}: unchanged`);
      }
      expect(fs.readFileSync(calls, 'utf8')).not.toContain('daemon-reload');
    });

    it('systemd-analyze verify accepts the unit for the built binary, with LimitNOFILE = worker_rlimit_nofile', () => {
      const spec = { maxConnections: 50_000, paths: confPrefix.paths, http: { listenPort: 8080, backends: [{ profile: deepstreamProfile, servers: [{ host: '127.0.0.1' }] }] } };
      const { rlimitNofile } = nginxCapacity(spec);
      const workerRlimit = parseNginxConf(renderNginxConf(spec)).find((directive) => directive.name === 'worker_rlimit_nofile');
      expect(workerRlimit?.args).toEqual([String(rlimitNofile)]);

      const dir = fs.mkdtempSync(path.join(root, 'unit-'));
      const text = renderNginxSystemdUnit({ limitNofile: rlimitNofile, paths: nginxPathsUnderPrefix(prefix), stopTimeoutSeconds: 45 });
      expect(text).toMatch(new RegExp(`^LimitNOFILE=${rlimitNofile}$`, 'm'));
      const result = run('systemd-analyze', ['verify', '--man=no', writeFile(path.join(dir, 'nginx.service'), text)]);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      // The check is real: a value systemd cannot parse is reported.
      const broken = writeFile(path.join(dir, 'broken', 'nginx.service'), text.replace(/^LimitNOFILE=.*$/m, 'LimitNOFILE=lots'));
      expect(run('systemd-analyze', ['verify', '--man=no', broken]).stderr).toContain('Failed to parse resource value, ignoring: lots');
    });
  });

  describe('build dependencies by distribution (dnf/apt replaced by recorders)', () => {
    let bin = '';
    beforeAll(() => {
      bin = path.join(root, 'fake-package-managers');
      for (const tool of ['dnf', 'apt-get']) {
        writeFile(path.join(bin, tool), `#!/usr/bin/env bash\nprintf '%s %s\\n' "$(basename "$0")" "$*" >>"$PACKAGE_CALLS"\n`, 0o755);
      }
    });

    it.each<[string, string, string[]]>([
      ['Amazon Linux 2023', 'NAME="Amazon Linux"\nID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\n',
        ['dnf install -y --setopt=install_weak_deps=False gcc make pcre2-devel zlib-devel openssl-devel tar gzip']],
      ['Rocky Linux (via ID_LIKE)', 'ID="rocky"\nID_LIKE="rhel centos fedora"\n',
        ['dnf install -y --setopt=install_weak_deps=False gcc make pcre2-devel zlib-devel openssl-devel tar gzip']],
      ['Debian', 'ID=debian\nVERSION_ID="12"\n',
        ['apt-get update', 'apt-get install -y --no-install-recommends gcc libc6-dev make libpcre2-dev zlib1g-dev libssl-dev tar gzip ca-certificates']],
      ['Ubuntu', 'ID=ubuntu\nID_LIKE=debian\n',
        ['apt-get update', 'apt-get install -y --no-install-recommends gcc libc6-dev make libpcre2-dev zlib1g-dev libssl-dev tar gzip ca-certificates']],
    ])('%s: installs the compiler and libraries before downloading', async (name, osRelease, expectedCalls) => {
      const scenario = `deps-${name.replace(/\W+/g, '-')}`;
      const packageCalls = path.join(root, scenario, 'package-calls.log');
      const options = isolatedOptions(scenario, {
        steps: { ...STEPS_OFF, installDependencies: true },
        osReleasePath: writeFile(path.join(root, scenario, 'os-release'), osRelease),
        downloadBaseUrl: `${baseUrl}/not-published`,
      });
      const result = await runBuild(scenario, options, { ...process.env, PATH: `${bin}:${process.env.PATH}`, PACKAGE_CALLS: packageCalls });
      // The recorders install nothing and the mirror has no tarball: the run stops at the download.
      expect(result.stderr).toContain(`download failed: ${baseUrl}/not-published/${TARBALL_NAME}`);
      expect(result.code).not.toBe(0);
      expect(fs.readFileSync(packageCalls, 'utf8').trim().split('\n')).toEqual(expectedCalls);
    });

    it('stops with a clear message on an unsupported distribution', async () => {
      const options = isolatedOptions('deps-alpine', {
        steps: { ...STEPS_OFF, installDependencies: true },
        osReleasePath: writeFile(path.join(root, 'deps-alpine', 'os-release'), 'ID=alpine\n'),
      });
      const result = await runBuild('deps-alpine', options, { ...process.env, PATH: `${bin}:${process.env.PATH}`, PACKAGE_CALLS: '/dev/null' });
      expect(result.stderr).toContain("unsupported distribution 'alpine'");
      expect(result.stderr).toContain('supported: Amazon Linux 2023');
      expect(result.code).not.toBe(0);
    });
  });

  describe('a running built nginx: apply-config and logrotate', () => {
    let dir = '';
    let port = 0;
    let confPath = '';
    let applyScript = '';
    const pidFile = () => path.join(dir, 'nginx.pid');
    const configServing = (body: string) => `worker_processes 1;
error_log ${dir}/error.log;
pid ${dir}/nginx.pid;
events { worker_connections 64; }
http {
  access_log ${dir}/access.log;
  server { listen 127.0.0.1:${port}; location / { return 200 "${body}"; } }
}
`;
    const serves = (body: string) => async () => (await httpGet(`http://127.0.0.1:${port}/`)).body === body;

    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(root, 'running-'));
      // Workers (user nobody) reopen the logs by path after USR1, as from /var/log/nginx on a host.
      fs.chmodSync(root, 0o755);
      fs.chmodSync(dir, 0o755);
      port = await freePort();
      confPath = writeFile(path.join(dir, 'nginx.conf'), configServing('v1'));
      mustRun(nginxBinary(), ['-c', confPath]);
      await eventually('nginx serves v1', serves('v1'));
      applyScript = writeFile(
        path.join(dir, 'apply.sh'),
        renderNginxApplyConfigScript({ confPath, nginxBinary: nginxBinary(), pidFile: pidFile(), reloadCommand: [nginxBinary(), '-c', confPath, '-s', 'reload'] }),
      );
    });

    afterAll(async () => {
      if (!dir || !fs.existsSync(pidFile())) return;
      const pid = Number(fs.readFileSync(pidFile(), 'utf8').trim());
      try {
        process.kill(pid, 'SIGQUIT');
        await eventually('nginx exits', async () => {
          try {
            process.kill(pid, 0);
            return false;
          } catch {
            return true;
          }
        });
      } catch {
        // Already gone.
      }
    });

    const leftovers = () => fs.readdirSync(dir).filter((name) => name.startsWith('.nginx.conf.') && !name.endsWith('.lock'));

    it('applies a good config (base64) atomically and reloads nginx onto it', async () => {
      const result = await runBash(applyScript, ['--base64', Buffer.from(configServing('v2')).toString('base64')]);
      expect(result.stderr).toContain('nginx -t accepted the new config');
      expect(result.code).toBe(0);
      expect(fs.readFileSync(confPath, 'utf8')).toBe(configServing('v2'));
      await eventually('nginx serves v2 after the reload', serves('v2'));
      expect(leftovers()).toEqual([]);
    });

    it('does nothing for an identical config', async () => {
      const same = writeFile(path.join(dir, 'same.conf'), configServing('v2'));
      const result = await runBash(applyScript, ['--file', same]);
      expect(result.stderr).toContain('is already this config; nothing to do');
      expect(result.code).toBe(0);
    });

    it('rejects a config nginx -t refuses and keeps the old one live', async () => {
      const bad = writeFile(path.join(dir, 'bad.conf'), configServing('v3').replace('return 200', 'bogus_directive on; return 200'));
      const result = await runBash(applyScript, ['--file', bad]);
      expect(result.stderr).toContain('unknown directive "bogus_directive"');
      expect(result.stderr).toContain(`nginx -t rejected the new config; ${confPath} left unchanged`);
      expect(result.code).not.toBe(0);
      expect(fs.readFileSync(confPath, 'utf8')).toBe(configServing('v2'));
      expect(await serves('v2')()).toBe(true);
      expect(leftovers()).toEqual([]);
    });

    it('rejects input that is not base64 without touching the config', async () => {
      const result = await runBash(applyScript, ['--base64', '%%% not base64 %%%']);
      expect(result.stderr).toContain('is not valid base64');
      expect(result.code).not.toBe(0);
      expect(fs.readFileSync(confPath, 'utf8')).toBe(configServing('v2'));
    });

    it('restores the previous config when the reload command fails', async () => {
      const failingReload = writeFile(
        path.join(dir, 'apply-failing-reload.sh'),
        renderNginxApplyConfigScript({ confPath, nginxBinary: nginxBinary(), reloadCommand: ['false'] }),
      );
      const result = await runBash(failingReload, ['--base64', Buffer.from(configServing('v4')).toString('base64')]);
      expect(result.stderr).toContain(`reload failed; restored the previous ${confPath}`);
      expect(result.code).not.toBe(0);
      expect(fs.readFileSync(confPath, 'utf8')).toBe(configServing('v2'));
      expect(leftovers()).toEqual([]);
    });

    it('restores the previous config when the master cannot apply the new one (a port nginx -t does not bind)', async () => {
      const holder = net.createServer();
      const busyPort = await new Promise<number>((resolve) => holder.listen(0, '127.0.0.1', () => resolve((holder.address() as net.AddressInfo).port)));
      try {
        const clashing = configServing('v5').replace('}\n}', `}\n  server { listen 127.0.0.1:${busyPort}; return 200; }\n}`);
        expect(clashing).toContain(`listen 127.0.0.1:${busyPort}`);
        const result = await runBash(applyScript, ['--base64', Buffer.from(clashing).toString('base64')]);
        expect(result.stderr).toContain('nginx -t accepted the new config');
        expect(result.stderr).toContain(`nginx did not start workers on the new config within 10s`);
        expect(result.stderr).toContain(`restored the previous ${confPath}`);
        expect(result.code).not.toBe(0);
        expect(fs.readFileSync(confPath, 'utf8')).toBe(configServing('v2'));
        expect(await serves('v2')()).toBe(true);
        expect(fs.readFileSync(path.join(dir, 'error.log'), 'utf8')).toMatch(new RegExp(`bind\\(\\) to 127\\.0\\.0\\.1:${busyPort} failed`));
        expect(leftovers()).toEqual([]);
      } finally {
        await new Promise((resolve) => holder.close(resolve));
      }
    });

    it('logrotate rotates the logs and USR1 makes nginx reopen them', async () => {
      const accessLog = path.join(dir, 'access.log');
      await httpGet(`http://127.0.0.1:${port}/before-rotation`);
      await eventually('the request is logged', async () => fs.readFileSync(accessLog, 'utf8').includes('/before-rotation'));
      const policy = writeFile(
        path.join(dir, 'logrotate.conf'),
        renderNginxLogrotate({
          paths: { accessLogPath: accessLog, errorLogPath: path.join(dir, 'error.log'), pidPath: pidFile() },
          user: 'nobody',
          group: 'nogroup',
        }),
      );
      const result = run('logrotate', ['--force', '--verbose', '--state', path.join(dir, 'logrotate.state'), policy]);
      expect(result.stderr).not.toMatch(/error:/);
      expect(result.status).toBe(0);
      expect(fs.readFileSync(`${accessLog}.1`, 'utf8')).toContain('/before-rotation');
      await eventually('nginx writes to the new access.log', async () => {
        await httpGet(`http://127.0.0.1:${port}/after-rotation`);
        return fs.existsSync(accessLog) && fs.readFileSync(accessLog, 'utf8').includes('/after-rotation');
      });
      expect(fs.readFileSync(`${accessLog}.1`, 'utf8')).not.toContain('/after-rotation');
    });
  });
});

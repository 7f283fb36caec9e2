import { makeSelfSignedCertificate } from '../local/tls';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { arch } from 'node:os';
import { join } from 'node:path';
import {
  CENTRIFUGO_DEFAULT_VERSION,
  centrifugoBackend,
  centrifugoEnvVar,
  centrifugoProfile,
  createCentrifugoBackend,
  renderCentrifugoConfig,
} from '../servers/centrifugo';
import { BOOTSTRAP_LOG_PATH } from '../servers/bootstrap';
import type { NodeRenderInput } from '../servers/profile';
import { bashSyntaxError, makeTempDir, removeDir, runScriptInRoot, runScriptInRootAsync, shellcheck, stepNumber, systemdVerify } from './servers-helpers';

const secretParameters = {
  tokenHmacSecretKey: '/re/prod/centrifugo/token-hmac',
  apiKey: '/re/prod/centrifugo/api-key',
  adminPassword: '/re/prod/centrifugo/admin-password',
  adminSecret: '/re/prod/centrifugo/admin-secret',
};
const PIN_A = 'a'.repeat(64);
const PIN_B = 'b'.repeat(64);

const base: NodeRenderInput = {
  nodeName: 'centrifugo-0',
  version: CENTRIFUGO_DEFAULT_VERSION,
  redis: { host: 'redis.internal', port: 6379, tls: false },
  secretParameters,
  region: 'eu-west-1',
  releaseSha256: { x86_64: PIN_A, aarch64: PIN_B },
};

/** Every key path in a JSON value, e.g. `engine.redis.tls.enabled`. */
function keyPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => [`${prefix}${k}`, ...keyPaths(v, `${prefix}${k}.`)]);
}

describe('renderCentrifugoConfig (v6 format)', () => {
  it('uses the v6 nested keys: node name, http_server, Redis engine, health, admin, client origins and ping', () => {
    const config = JSON.parse(renderCentrifugoConfig({ ...base, listenHost: '10.0.3.4', listenPort: 8100, allowedOrigins: ['https://app.example.com', 'https://*.example.org'] }));
    expect(config).toEqual({
      node: { name: 'centrifugo-0' },
      http_server: { address: '10.0.3.4', port: 8100 },
      log: { level: 'info' },
      client: { allowed_origins: ['https://app.example.com', 'https://*.example.org'], ping_interval: `${centrifugoProfile.pingIntervalSeconds}s` },
      engine: { type: 'redis', redis: { address: ['redis://redis.internal:6379'] } },
      health: { enabled: true },
      admin: { enabled: true },
      usage_stats: { disabled: true },
    });
  });

  it('turns on Redis TLS with engine.redis.tls.enabled, brackets IPv6 hosts, and allows any origin when none are listed', () => {
    const config = JSON.parse(renderCentrifugoConfig({ ...base, redis: { host: 'fd00::5', port: 6380, tls: true, authTokenParameter: '/re/redis' } }));
    expect(config.engine.redis).toEqual({ address: ['redis://[fd00::5]:6380'], tls: { enabled: true } });
    expect(config.client.allowed_origins).toEqual(['*']);
    expect(config.http_server).toEqual({ address: '0.0.0.0', port: centrifugoProfile.port });
  });

  it('holds no secret: no secret keys and no parameter names, for any input', () => {
    const secretKeys = ['client.token.hmac_secret_key', 'http_api.key', 'admin.password', 'admin.secret', 'engine.redis.password'];
    for (const tls of [false, true]) {
      const input = { ...base, redis: { ...base.redis, tls, authTokenParameter: '/re/prod/redis-auth' } };
      const file = centrifugoBackend.renderConfigFiles(input)[0];
      expect(file).toMatchObject({ path: '/etc/centrifugo/config.json', mode: '0640', owner: 'root:centrifugo', kind: 'centrifugo-config' });
      const paths = keyPaths(JSON.parse(file.content));
      expect(paths.filter((p) => secretKeys.includes(p))).toEqual([]);
      expect(file.content).not.toMatch(/\/re\/prod/);
    }
  });

  it('names each secret environment variable the way Centrifugo v6 derives it from the nested key', () => {
    expect(centrifugoEnvVar(['client', 'token', 'hmac_secret_key'])).toBe('CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY');
    expect(centrifugoEnvVar(['http_api', 'key'])).toBe('CENTRIFUGO_HTTP_API_KEY');
    expect(centrifugoEnvVar(['admin', 'password'])).toBe('CENTRIFUGO_ADMIN_PASSWORD');
    expect(centrifugoEnvVar(['admin', 'secret'])).toBe('CENTRIFUGO_ADMIN_SECRET');
    expect(centrifugoEnvVar(['engine', 'redis', 'password'])).toBe('CENTRIFUGO_ENGINE_REDIS_PASSWORD');
    expect(centrifugoBackend.secrets.map((s) => s.key)).toEqual(['tokenHmacSecretKey', 'apiKey', 'adminPassword', 'adminSecret']);
    for (const s of centrifugoBackend.secrets) expect(s.length).toBeGreaterThanOrEqual(32);
  });

  it('refuses bad input naming the field, the value and what is allowed', () => {
    expect(() => centrifugoBackend.renderConfigFiles({ ...base, version: '5.4.9' })).toThrow(/version = "5\.4\.9": expected a Centrifugo 6\.x version/);
    expect(() => renderCentrifugoConfig({ ...base, allowedOrigins: ['app.example.com'] })).toThrow(/allowedOrigins\.0 = "app\.example\.com": expected "\*" or an origin pattern/);
    expect(() => centrifugoBackend.renderUserData({ ...base, secretParameters: { apiKey: '/a' } })).toThrow(/secretParameters = .*missing tokenHmacSecretKey, adminPassword, adminSecret; expected exactly the keys/);
    expect(() => centrifugoBackend.renderUserData({ ...base, secretParameters: { ...secretParameters, extra: '/x' } })).toThrow(/unknown extra/);
    expect(() => centrifugoBackend.renderUserData({ ...base, releaseSha256: {} })).toThrow(/releaseSha256 is empty; expected the sha256 of centrifugo_6\.9\.6_linux_amd64\.tar\.gz/);
    expect(() => centrifugoBackend.renderUserData({ ...base, releaseSha256: { x86_64: 'ABC' } })).toThrow(/releaseSha256\.x86_64 = "ABC": expected 64 lowercase hex digits/);
    expect(() => createCentrifugoBackend({ releasesUrl: 'http://mirror.example.com' })).toThrow(/releasesUrl = "http:\/\/mirror\.example\.com": expected an https:\/\/ URL/);
  });
});

describe('centrifugoBackend.renderUserData', () => {
  const variants: [string, NodeRenderInput][] = [
    ['plain Redis, both archs pinned', base],
    ['TLS Redis + AUTH token, x86_64 pinned only, region from IMDSv2', { ...base, region: undefined, redis: { ...base.redis, tls: true, authTokenParameter: '/re/prod/redis-auth' }, releaseSha256: { x86_64: PIN_A }, maxConnections: 300000 }],
    ['aarch64 pinned only, custom listener and origins', { ...base, releaseSha256: { aarch64: PIN_B }, listenHost: '10.0.3.4', listenPort: 8100, allowedOrigins: ['https://app.example.com'] }],
    ['unpinned but explicitly allowed', { ...base, releaseSha256: undefined, allowUnpinnedRelease: true }],
  ];

  it.each(variants)('%s: passes shellcheck and bash -n and fits in EC2 user data (16 KB)', (_name, input) => {
    const script = centrifugoBackend.renderUserData(input);
    expect(shellcheck(script)).toBe('');
    expect(bashSyntaxError(script)).toBe('');
    expect(Buffer.byteLength(script)).toBeLessThan(16 * 1024);
    for (const parameter of Object.values(secretParameters)) expect(script).toContain(`value="$(realtime_edge_ssm_get "$region" ${parameter})"`);
    expect(script).toContain('checkconfig --strict');
  });

  it.each(variants)('%s: writes exactly the rendered config and a valid systemd unit with the secrets env file', (_name, input) => {
    const dir = makeTempDir('centrifugo-userdata');
    try {
      const root = join(dir, 'root');
      const r = runScriptInRoot(dir, centrifugoBackend.renderUserData(input), { REALTIME_EDGE_ROOT: root, REALTIME_EDGE_STEPS: 'none' });
      expect(r.status).toBe(0);
      const config = centrifugoBackend.renderConfigFiles(input)[0];
      expect(readFileSync(join(root, config.path), 'utf8')).toBe(config.content);
      const unit = readFileSync(join(root, 'etc/systemd/system/centrifugo.service'), 'utf8');
      expect(systemdVerify(root, 'centrifugo.service', ['/usr/local/bin/centrifugo'])).toBe('');
      expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/centrifugo --config \/etc\/centrifugo\/config\.json$/m);
      expect(unit).toMatch(/^EnvironmentFile=\/etc\/realtime-edge\/centrifugo\.env$/m);
      expect(unit).toMatch(new RegExp(`^LimitNOFILE=${Math.max(65536, (input.maxConnections ?? 0) + 4096)}$`, 'm'));
    } finally {
      removeDir(dir);
    }
  });

  it('fetches arbitrary secret values from SSM into the env file under v6 names, and prints none of them (real step, fake aws)', () => {
    const value = fc.string({ unit: 'binary', minLength: 16, maxLength: 48 }).filter((s) => !/[\0\n\r]/.test(s));
    fc.assert(
      fc.property(fc.tuple(value, value, value, value, value), (values) => {
        const dir = makeTempDir('centrifugo-secrets');
        try {
          const input = { ...base, redis: { ...base.redis, authTokenParameter: '/re/prod/redis-auth' } };
          const parameterValues: Record<string, string> = {};
          [...Object.values(secretParameters), '/re/prod/redis-auth'].forEach((p, i) => (parameterValues[p] = values[i]));
          const bin = join(dir, 'bin');
          mkdirSync(bin);
          mkdirSync(join(dir, 'ssm'));
          for (const [p, v] of Object.entries(parameterValues)) writeFileSync(join(dir, 'ssm', p.replace(/\//g, '_')), v);
          writeFileSync(
            join(bin, 'aws'),
            '#!/bin/bash\nwhile [[ $# -gt 0 ]]; do [[ $1 == --name ]] && name=$2; shift; done\nf="$FAKE_SSM/${name//\\//_}"\n[[ -f $f ]] || exit 254\ncat "$f"; echo\n',
          );
          chmodSync(join(bin, 'aws'), 0o755);
          const script = centrifugoBackend.renderUserData(input);
          expect(values.some((v) => script.includes(v))).toBe(false);
          const step = stepNumber(script, 'read 5 secret(s) from SSM');
          const root = join(dir, 'root');
          const r = runScriptInRoot(dir, script, { REALTIME_EDGE_ROOT: root, REALTIME_EDGE_STEPS: String(step), PATH: `${bin}:${process.env.PATH}`, FAKE_SSM: join(dir, 'ssm') });
          expect(r.status).toBe(0);
          const envFile = join(root, 'etc/realtime-edge/centrifugo.env');
          expect(statSync(envFile).mode & 0o777).toBe(0o600);
          const names = ['CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY', 'CENTRIFUGO_HTTP_API_KEY', 'CENTRIFUGO_ADMIN_PASSWORD', 'CENTRIFUGO_ADMIN_SECRET', 'CENTRIFUGO_ENGINE_REDIS_PASSWORD'];
          const read = spawnSync('bash', ['-c', `set -a; . "$1"; printf '%s\\0' ${names.map((n) => `"$${n}"`).join(' ')}`, 'read', envFile], { encoding: 'utf8' });
          expect(read.stdout.split('\0').slice(0, -1)).toEqual(values.map((v) => Buffer.from(v, 'utf8').toString('utf8')));
          const printed = r.stdout + r.stderr + readFileSync(join(root, BOOTSTRAP_LOG_PATH), 'utf8');
          for (const v of values) expect(printed.includes(Buffer.from(v, 'utf8').toString('utf8'))).toBe(false);
        } finally {
          removeDir(dir);
        }
      }),
      { numRuns: 10 },
    );
  });
});

/** A fake Centrifugo release served over HTTPS from loopback, to run the real install step. */
describe('Centrifugo release verification (real install step against a local HTTPS mirror)', () => {
  const goArch = arch() === 'arm64' ? 'arm64' : 'amd64';
  const cpuArch = arch() === 'arm64' ? 'aarch64' : 'x86_64';
  const version = CENTRIFUGO_DEFAULT_VERSION;
  const asset = `centrifugo_${version}_linux_${goArch}.tar.gz`;
  const sums = `centrifugo_${version}_checksums.txt`;
  let dir: string;
  let server: Server;
  let port = 0;
  const requests: string[] = [];
  /** URL path -> body. */
  const files = new Map<string, Buffer>();
  let genuineSha = '';

  function makeArchive(name: string, binaryText: string): Buffer {
    const work = join(dir, name);
    mkdirSync(work, { recursive: true });
    writeFileSync(join(work, 'centrifugo'), binaryText, { mode: 0o755 });
    writeFileSync(join(work, 'LICENSE'), 'MIT\n');
    const tar = spawnSync('tar', ['-czf', join(dir, `${name}.tar.gz`), '-C', work, 'centrifugo', 'LICENSE']);
    if (tar.status !== 0) throw new Error(String(tar.stderr));
    return readFileSync(join(dir, `${name}.tar.gz`));
  }
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

  beforeAll(async () => {
    dir = makeTempDir('centrifugo-release');
    const { certificatePath: cert, keyPath: key } = makeSelfSignedCertificate(dir, { name: 'mirror', commonName: '127.0.0.1', days: 1 });
    const genuine = makeArchive('genuine', '#!/bin/sh\necho genuine centrifugo\n');
    const evil = makeArchive('evil', '#!/bin/sh\necho evil\n');
    genuineSha = sha(genuine);
    const otherLine = `${'c'.repeat(64)}  centrifugo_${version}_linux_${goArch === 'amd64' ? 'arm64' : 'amd64'}.tar.gz\n`;
    // good: the real release. replaced: an attacker swapped archive and checksums file.
    // corrupt: the archive does not match its own checksums file. unlisted: the file lacks it.
    for (const [mirror, archive, listed] of [
      ['good', genuine, genuine],
      ['replaced', evil, evil],
      ['corrupt', evil, genuine],
      ['unlisted', genuine, null],
    ] as const) {
      files.set(`/${mirror}/v${version}/${asset}`, archive);
      files.set(`/${mirror}/v${version}/${sums}`, Buffer.from(otherLine + (listed ? `${sha(listed)}  ${asset}\n` : '')));
    }
    server = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      requests.push(req.url ?? '');
      const body = files.get(req.url ?? '');
      res.writeHead(body ? 200 : 404);
      res.end(body ?? 'not found');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    port = typeof address === 'object' && address ? address.port : 0;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    removeDir(dir);
  });

  async function runInstall(mirror: string, input: Partial<NodeRenderInput>, rootName: string) {
    const backend = createCentrifugoBackend({ releasesUrl: `https://127.0.0.1:${port}/${mirror}` });
    const script = backend.renderUserData({ ...base, ...input });
    const root = join(dir, rootName);
    const r = await runScriptInRootAsync(dir, script, {
      REALTIME_EDGE_ROOT: root,
      REALTIME_EDGE_STEPS: String(stepNumber(script, `install Centrifugo ${version}`)),
      CURL_CA_BUNDLE: join(dir, 'mirror.crt'),
    });
    return { ...r, output: r.stdout + r.stderr, binary: join(root, 'usr/local/bin/centrifugo') };
  }

  it('installs the release whose sha256 matches both the pin and the published checksums, once', async () => {
    const first = await runInstall('good', { releaseSha256: { [cpuArch]: genuineSha } }, 'root-good');
    expect(first.output).not.toMatch(/FAILED/);
    expect(first.status).toBe(0);
    expect(readFileSync(first.binary, 'utf8')).toBe('#!/bin/sh\necho genuine centrifugo\n');
    expect(statSync(first.binary).mode & 0o777).toBe(0o755);
    const before = requests.length;
    const again = await runInstall('good', { releaseSha256: { [cpuArch]: genuineSha } }, 'root-good');
    expect(again.status).toBe(0);
    expect(again.output).toContain(`Centrifugo ${version} already installed`);
    expect(requests.length).toBe(before);
  });

  it('refuses a replaced release whose checksums file was replaced too (only the pin catches it)', async () => {
    const r = await runInstall('replaced', { releaseSha256: { [cpuArch]: genuineSha } }, 'root-replaced');
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/the pinned value is [0-9a-f]{64}: the release differs from the one pinned, refusing to install/);
    expect(existsSync(r.binary)).toBe(false);
  });

  it('refuses an archive that does not match the published checksums', async () => {
    const r = await runInstall('corrupt', { releaseSha256: { [cpuArch]: genuineSha } }, 'root-corrupt');
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/corrupt or tampered download, refusing to install/);
    expect(existsSync(r.binary)).toBe(false);
  });

  it('refuses an archive the checksums file does not list', async () => {
    const r = await runInstall('unlisted', { releaseSha256: { [cpuArch]: genuineSha } }, 'root-unlisted');
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/does not list centrifugo_.*: refusing to install/);
    expect(existsSync(r.binary)).toBe(false);
  });

  it('fails closed without a pin for this architecture, before downloading anything', async () => {
    const otherArch = cpuArch === 'x86_64' ? 'aarch64' : 'x86_64';
    const before = requests.length;
    const r = await runInstall('good', { releaseSha256: { [otherArch]: genuineSha } }, 'root-nopin');
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(new RegExp(`no pinned sha256 for ${asset.replace(/\./g, '\\.')} \\(${cpuArch}\\): refusing to install an unverified release`));
    expect(requests.length).toBe(before);
    expect(existsSync(r.binary)).toBe(false);
  });

  it('with allowUnpinnedRelease, installs on the published checksums alone and says so', async () => {
    const r = await runInstall('good', { releaseSha256: undefined, allowUnpinnedRelease: true }, 'root-unpinned');
    expect(r.status).toBe(0);
    expect(r.output).toMatch(/WARNING: .* verified against the published checksums only/);
    expect(readFileSync(r.binary, 'utf8')).toContain('genuine');
  });
});

import fc from 'fast-check';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import {
  createDeepstreamBackend,
  DEEPSTREAM_REDIS_PASSWORD_ENV,
  deepstreamBackend,
  deepstreamProfile,
  deepstreamRedisPasswordEnv,
  OPEN_PERMISSIONS,
  renderDeepstreamConfig,
  renderDeepstreamPermissions,
} from '../servers/deepstream';
import type { NodeRenderInput } from '../servers/profile';
import { bashSyntaxError, makeTempDir, removeDir, runScriptInRoot, shellcheck, systemdVerify } from './servers-helpers';

// deepstream's own config loader: the same text preprocessing (comments, ${ENV}, fileLoad) and
// YAML parser the server runs at start.
const deepstreamLoader = require('@deepstream/server/dist/src/config/js-yaml-loader') as {
  loadConfigWithoutInitialization(path: string, logs: unknown[], args: object): Promise<{ config: Record<string, any> }>;
};

// deepstream's own config initialiser, run up to its auth strategies: with the permission section
// removed it stops with "No permission type specified" right after building them, before any
// timer or listener starts; Redis is swapped for deepstream's in-memory defaults so nothing connects.
const deepstreamInitialiser = require('@deepstream/server/dist/src/config/config-initialiser') as {
  initialize(deepstream: object, config: Record<string, any>, logs: unknown[]): unknown;
};
const deepstreamDefaults = require('@deepstream/server/dist/src/default-options') as { get(): Record<string, any> };

function buildAuthWithDeepstream(config: Record<string, any>): void {
  const { cache, clusterNode } = deepstreamDefaults.get();
  const upToAuth = { ...structuredClone(config), cache, clusterNode, permission: undefined };
  expect(() => deepstreamInitialiser.initialize({ on() {}, emit() {} }, upToAuth, [])).toThrow(/^No permission type specified$/);
}

const base: NodeRenderInput = {
  nodeName: 'deepstream-0',
  version: '7.0.2',
  redis: { host: 'redis.internal', port: 6379, tls: false },
};

/** Writes the rendered files into `dir` (by base name) and loads config.yml with deepstream. */
async function loadWithDeepstream(dir: string, input: NodeRenderInput, env: Record<string, string> = {}, backend = deepstreamBackend): Promise<Record<string, any>> {
  for (const file of backend.renderConfigFiles(input)) {
    writeFileSync(join(dir, file.path.split('/').pop() as string), file.content);
  }
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return (await deepstreamLoader.loadConfigWithoutInitialization(join(dir, 'config.yml'), [], {})).config;
  } finally {
    for (const key of Object.keys(env)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  }
}

describe('renderDeepstreamConfig', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTempDir('deepstream-config');
  });
  afterAll(() => removeDir(dir));

  it('renders YAML with a unique serverName, the ws/http endpoints, the health check and Redis cluster + cache', () => {
    const yaml = parse(renderDeepstreamConfig({ ...base, listenHost: '10.0.1.5', listenPort: 7000 }));
    expect(yaml.serverName).toBe('deepstream-0');
    expect(yaml.showLogo).toBe(false);
    expect(yaml.telemetry).toEqual({ type: 'deepstreamIO', options: { enabled: false } });
    expect(yaml.httpServer).toEqual({
      type: 'default',
      options: { host: '10.0.1.5', port: 7000, healthCheckPath: deepstreamProfile.healthPath, allowAllOrigins: true },
    });
    expect(yaml.connectionEndpoints).toEqual([
      { type: 'ws-binary', options: { urlPath: deepstreamProfile.clientPath, heartbeatInterval: deepstreamProfile.pingIntervalSeconds * 1000 } },
      { type: 'http', options: { allowAuthData: true, postPath: '/api', getPath: '/api' } },
    ]);
    expect(yaml.auth).toEqual([{ type: 'none', options: {} }]);
    expect(yaml.permission).toEqual({ type: 'config', options: { permissions: 'fileLoad(permissions.yml)' } });
    expect(yaml.clusterNode).toEqual({ name: 'redis', options: { host: 'redis.internal', port: 6379 } });
    expect(yaml.cache).toEqual({ name: 'redis', options: { host: 'redis.internal', port: 6379 } });
    // Defaults: every interface, the profile's port.
    const defaults = parse(renderDeepstreamConfig(base));
    expect(defaults.httpServer.options.host).toBe('0.0.0.0');
    expect(defaults.httpServer.options.port).toBe(deepstreamProfile.port);
  });

  it('gives ioredis tls: {} and the AUTH token from the environment, never inline', () => {
    const text = renderDeepstreamConfig({ ...base, redis: { ...base.redis, tls: true, authTokenParameter: '/re/redis/auth' } });
    const yaml = parse(text);
    for (const section of [yaml.clusterNode, yaml.cache]) {
      expect(section.options).toEqual({ host: 'redis.internal', port: 6379, tls: {}, password: `\${${DEEPSTREAM_REDIS_PASSWORD_ENV}}` });
    }
    expect(text).not.toContain('/re/redis/auth');
    expect(text).not.toMatch(/&|\*a\d/); // no YAML anchors/aliases between the two sections
  });

  it('is read by deepstream itself as rendered: permissions loaded, token substituted exactly (any printable token)', async () => {
    const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 64 });
    const tricky = fc.constantFrom("it's#1", "''", '${HOME}', 'a #comment', 'fileLoad(x.yml)', '"quoted"', 'back\\slash', ' padded ', ': colon', '-dash', '*star', '&amp', '!tag', '%pct', '{brace}', '[x]');
    await fc.assert(
      fc.asyncProperty(fc.oneof(printable, tricky), async (token) => {
        const input: NodeRenderInput = { ...base, redis: { ...base.redis, tls: true, authTokenParameter: '/re/redis/auth' } };
        const config = await loadWithDeepstream(dir, input, deepstreamRedisPasswordEnv(token));
        expect(config.clusterNode.options.password).toBe(token);
        expect(config.cache.options.password).toBe(token);
        expect(config.clusterNode.options.tls).toEqual({});
        expect(config.serverName).toBe('deepstream-0');
        expect(config.permission.options.permissions).toEqual(OPEN_PERMISSIONS);
      }),
      { numRuns: 60 },
    );
  });

  it('records allowed origins as a comment and keeps CORS open (deepstream would 403 health checks)', async () => {
    const text = renderDeepstreamConfig({ ...base, allowedOrigins: ['https://app.example.com', 'https://admin.example.com:8443'] });
    expect(text).toMatch(/^ {2}# - https:\/\/app\.example\.com$/m);
    const config = await loadWithDeepstream(dir, { ...base, allowedOrigins: ['https://app.example.com'] });
    expect(config.httpServer.options.allowAllOrigins).toBe(true);
  });

  it('renders custom auth, permissions and log level', async () => {
    const backend = createDeepstreamBackend({
      auth: [{ type: 'http', options: { endpointUrl: 'https://auth.example.com/login', permittedStatusCodes: [200], requestTimeout: 2000 } }],
      permissions: { event: { 'chat/*': { publish: 'user.id !== null', subscribe: true } } },
      logLevel: 'WARN',
    });
    const [configFile, permissionsFile] = backend.renderConfigFiles(base);
    expect(parse(configFile.content).auth).toEqual([{ type: 'http', options: { endpointUrl: 'https://auth.example.com/login', permittedStatusCodes: [200], requestTimeout: 2000 } }]);
    expect(parse(configFile.content).logLevel).toBe('WARN');
    expect(parse(permissionsFile.content)).toEqual({ event: { 'chat/*': { publish: 'user.id !== null', subscribe: true } } });
    expect(renderDeepstreamPermissions()).toMatch(/^# Default: open\./m);
  });

  it('gives every auth strategy options, which deepstream reads at start even when none are needed', async () => {
    buildAuthWithDeepstream(await loadWithDeepstream(dir, base));
    const backend = createDeepstreamBackend({ auth: [{ type: 'file', options: { users: { admin: { password: 'x' } } } }, { type: 'none' }] });
    const config = await loadWithDeepstream(dir, base, {}, backend);
    buildAuthWithDeepstream(config);
    expect(config.auth).toEqual([{ type: 'file', options: { users: { admin: { password: 'x' } } } }, { type: 'none', options: {} }]);
  });

  it('refuses bad input naming the field, the value and what is allowed', () => {
    expect(() => renderDeepstreamConfig({ ...base, nodeName: 'Deepstream_0' })).toThrow(/nodeName = "Deepstream_0": expected 1-63 lowercase letters/);
    expect(() => renderDeepstreamConfig({ ...base, listenPort: 70000 })).toThrow(/listenPort = 70000: expected a port 1-65535/);
    expect(() => renderDeepstreamConfig({ ...base, redis: { ...base.redis, host: 'redis;rm -rf' } })).toThrow(/redis\.host = "redis;rm -rf": expected a DNS name/);
    expect(() => renderDeepstreamConfig({ ...base, allowedOrigins: ['https://a.example.com/#x'] })).toThrow(/allowedOrigins\.0 = "https:\/\/a\.example\.com\/#x": expected an origin/);
    // deepstream cuts lines at '#' before parsing: such a value must not reach the file.
    expect(() => renderDeepstreamConfig({ ...base, auth: [{ type: 'http', options: { endpointUrl: 'https://x.example.com/#a' } }] })).toThrow(/contains "#", which deepstream rewrites before parsing/);
    expect(() => renderDeepstreamConfig({ ...base, auth: [{ type: 'http', options: { endpointUrl: '${SECRET}' } }] })).toThrow(/contains "\$\{"/);
    expect(() => createDeepstreamBackend({ auth: [{ type: 'ldap' as 'none' }] })).toThrow(/auth\.0\.type = "ldap": Invalid option: expected one of "none"\|"file"\|"http"\|"storage"/);
    expect(() => deepstreamBackend.renderUserData({ ...base, version: '7' })).toThrow(/version = "7": expected an exact version/);
  });
});

describe('deepstreamBackend.renderUserData', () => {
  const variants: [string, NodeRenderInput][] = [
    ['plain Redis', base],
    ['TLS Redis', { ...base, redis: { ...base.redis, tls: true } }],
    ['TLS Redis + AUTH token, region from IMDSv2', { ...base, redis: { ...base.redis, tls: true, authTokenParameter: '/re/dev/redis-auth' }, maxConnections: 200000 }],
    ['AUTH token, fixed region, origins, custom listener', { ...base, nodeName: 'deepstream-7', redis: { ...base.redis, authTokenParameter: '/re/dev/redis-auth' }, region: 'eu-west-1', allowedOrigins: ['https://app.example.com'], listenHost: '10.0.2.9', listenPort: 6021 }],
  ];

  it.each(variants)('%s: passes shellcheck and bash -n and fits in EC2 user data (16 KB)', (_name, input) => {
    const script = deepstreamBackend.renderUserData(input);
    expect(shellcheck(script)).toBe('');
    expect(bashSyntaxError(script)).toBe('');
    expect(Buffer.byteLength(script)).toBeLessThan(16 * 1024);
    expect(script.startsWith('#!/bin/bash\n')).toBe(true);
  });

  it.each(variants)('%s: writes exactly the rendered config, a valid systemd unit and the pinned npm project', (_name, input) => {
    const dir = makeTempDir('deepstream-userdata');
    try {
      const root = join(dir, 'root');
      const r = runScriptInRoot(dir, deepstreamBackend.renderUserData(input), { REALTIME_EDGE_ROOT: root, REALTIME_EDGE_STEPS: 'none' });
      expect(r.status).toBe(0);
      for (const file of deepstreamBackend.renderConfigFiles(input)) {
        expect(readFileSync(join(root, file.path), 'utf8')).toBe(file.content);
        expect(statSync(join(root, file.path)).mode & 0o777).toBe(0o640);
      }
      const unit = readFileSync(join(root, 'etc/systemd/system/deepstream.service'), 'utf8');
      expect(systemdVerify(root, 'deepstream.service', ['/opt/deepstream/bin/node'])).toBe('');
      // The rendered launcher, not `deepstream start` (which exits when Redis is lost).
      expect(unit).toMatch(/^ExecStart=\/opt\/deepstream\/bin\/node \/etc\/deepstream\/deepstream-launcher\.js \/etc\/deepstream\/config\.yml \/opt\/deepstream\/node_modules\/@deepstream\/server$/m);
      expect(unit).toMatch(/^StartLimitIntervalSec=0$/m);
      expect(unit).toMatch(new RegExp(`^LimitNOFILE=${Math.max(65536, (input.maxConnections ?? 0) + 4096)}$`, 'm'));
      expect(unit).toMatch(/^User=deepstream$/m);
      expect(unit).toMatch(/^Restart=always$/m);
      expect(unit.includes('EnvironmentFile=/etc/realtime-edge/deepstream.env')).toBe(input.redis.authTokenParameter !== undefined);
      const pkg = JSON.parse(readFileSync(join(root, 'opt/deepstream/package.json'), 'utf8'));
      expect(pkg.dependencies).toEqual({ '@deepstream/server': '7.0.2', '@deepstream/clusternode-redis': '1.0.1', '@deepstream/cache-redis': '2.0.9' });
      expect(pkg.overrides).toEqual({ 'uWebSockets.js': 'file:./vendor/uwebsockets-stub' });
      expect(() => require(join(root, 'opt/deepstream/vendor/uwebsockets-stub'))).toThrow(/uWebSockets\.js is not installed/);
    } finally {
      removeDir(dir);
    }
  });

  it('declares config files and the launcher as root-owned, readable by the deepstream group only', () => {
    expect(deepstreamBackend.renderConfigFiles(base).map((f) => [f.path, f.mode, f.owner, f.kind])).toEqual([
      ['/etc/deepstream/config.yml', '0640', 'root:deepstream', 'deepstream-config'],
      ['/etc/deepstream/permissions.yml', '0640', 'root:deepstream', 'deepstream-config'],
      ['/etc/deepstream/deepstream-launcher.js', '0640', 'root:deepstream', 'deepstream-launcher'],
    ]);
  });

  it('reads the AUTH token from SSM in the bootstrap, never from user data, and polls the right health URL', () => {
    const script = deepstreamBackend.renderUserData(variants[3][1]);
    expect(script).toContain("--name \"$name\"");
    expect(script).toContain('value="$(realtime_edge_ssm_get "$region" /re/dev/redis-auth)"');
    expect(script).toContain('region=eu-west-1\n');
    expect(script).toContain(' http://10.0.2.9:6021/health-check; do\n');
    expect(deepstreamBackend.renderUserData(base)).toContain(' http://127.0.0.1:6020/health-check; do\n');
    expect(deepstreamBackend.renderUserData(base)).not.toContain('ssm get-parameter');
    expect(deepstreamBackend.secrets).toEqual([]);
  });
});

/**
 * proxyNginxSpec: the one spec assembly behind the EC2 NginxProxy hosts and the local topology. What
 * it builds from representative settings (modes, backends, balancing, timeouts, capacity, deployment
 * options), what the renderer makes of what it leaves unset, and that the real nginx -t accepts the
 * rendered result.
 */
import { BALANCE_STRATEGIES, PROXY_DEFAULTS, defaultIdleTimeoutSeconds } from '../config/proxy-defaults';
import { NGINX_DEFAULTS, nginxCapacity, renderNginxConf, validateNginxSpec } from '../nginx/conf';
import { NGINX_HOST_TLS_FILES } from '../nginx/host-scripts';
import {
  mountPrefix,
  proxyBackendMount,
  proxyHostDeployment,
  proxyListenerPorts,
  proxyNginxSpec,
  streamBalanceOf,
  type ProxyBackend,
  type ProxyDeployment,
  type ProxySettings,
} from '../nginx/proxy-spec';
import type { BackendMount, BalanceSpec, NginxPaths, NginxSpec } from '../nginx/spec';
import { DEBIAN_STREAM_MODULE } from '../local/system';
import { centrifugoProfile } from '../servers/centrifugo';
import { deepstreamProfile } from '../servers/deepstream';
import {
  expectValidNginxConf,
  findDirectives,
  freePorts,
  makeNginxPrefix,
  parseNginxConf,
  type NginxTestPrefix,
} from './helpers/nginx';

const deepstream: ProxyBackend = { profile: deepstreamProfile, nodes: ['10.0.1.10', '10.0.2.10'] };
const centrifugo: ProxyBackend = {
  profile: centrifugoProfile,
  nodes: ['10.0.1.20', { host: '10.0.2.20' }, { host: '10.0.3.20', port: 8001 }],
};
const deepstreamServers = [{ host: '10.0.1.10' }, { host: '10.0.2.10' }];
const centrifugoServers = [{ host: '10.0.1.20' }, { host: '10.0.2.20' }, { host: '10.0.3.20', port: 8001 }];

const LEAST_CONN: BalanceSpec = { strategy: 'least-conn' };
const CERT = { certificatePath: NGINX_HOST_TLS_FILES.certificatePath, keyPath: NGINX_HOST_TLS_FILES.keyPath };

/** As the NginxProxy component deploys. */
const ec2Deployment = proxyHostDeployment;

function settings(changes: Partial<ProxySettings> = {}): ProxySettings {
  // The host's TLS file set carries its directory too; only the two paths belong in the spec.
  return { mode: 'http', tls: NGINX_HOST_TLS_FILES, ...changes };
}

/** Arguments of every `name` directive in the rendered config, in order. */
function argsOf(conf: string, name: string): string[] {
  return findDirectives(parseNginxConf(conf), name).map(({ directive }) => directive.args.join(' '));
}

// -------------------------------------------------------------------------------------------------
// 1. The spec it builds
// -------------------------------------------------------------------------------------------------

describe('proxyNginxSpec: listeners per mode', () => {
  it('http: every backend on one TLS server, the first at the root, the others under /<name>', () => {
    const spec = proxyNginxSpec(
      settings({ balance: LEAST_CONN, domain: 'rt.example.com', hstsMaxAgeSeconds: 31536000 }),
      [deepstream, centrifugo],
      ec2Deployment(),
    );
    expect(spec).toStrictEqual({
      http: {
        serverName: 'rt.example.com',
        tls: { ...CERT, hstsMaxAgeSeconds: 31536000 },
        backends: [
          { profile: deepstreamProfile, servers: deepstreamServers, balance: LEAST_CONN },
          { profile: centrifugoProfile, servers: centrifugoServers, balance: LEAST_CONN, prefix: '/centrifugo' },
        ],
      },
      streamModule: { kind: 'static' },
      user: 'nginx',
      paths: ec2Deployment().paths,
    });
    expect(mountPrefix(centrifugoProfile, 1)).toBe('/centrifugo');
    expect(mountPrefix(deepstreamProfile, 0)).toBeUndefined();
  });

  it('stream: one TLS listener per backend on its public port, no prefix and no HSTS, no http block', () => {
    const spec = proxyNginxSpec(
      settings({ mode: 'stream', balance: LEAST_CONN, domain: 'rt.example.com', hstsMaxAgeSeconds: 31536000 }),
      [deepstream, centrifugo],
      ec2Deployment(),
    );
    expect(spec).toStrictEqual({
      stream: {
        listeners: [
          { listenPort: deepstreamProfile.port, tls: CERT, backend: { profile: deepstreamProfile, servers: deepstreamServers, balance: LEAST_CONN } },
          { listenPort: centrifugoProfile.port, tls: CERT, backend: { profile: centrifugoProfile, servers: centrifugoServers, balance: LEAST_CONN } },
        ],
      },
      streamModule: { kind: 'static' },
      user: 'nginx',
      paths: ec2Deployment().paths,
    });
  });

  it('both: the http mounts and the stream listeners come from the same backends', () => {
    const spec = proxyNginxSpec(settings({ mode: 'both' }), [deepstream, { ...centrifugo, streamPort: 8443, prefix: '/rt' }], ec2Deployment());
    expect(spec.http?.serverName).toBe(NGINX_DEFAULTS.serverName);
    expect(spec.http?.backends.map((b) => [b.profile.name, b.prefix])).toEqual([
      ['deepstream', undefined],
      ['centrifugo', '/rt'],
    ]);
    expect(spec.stream?.listeners.map((l) => [l.backend.profile.name, l.listenPort])).toEqual([
      ['deepstream', deepstreamProfile.port],
      ['centrifugo', 8443],
    ]);
    // hstsMaxAgeSeconds unset (or 0): no header.
    expect(spec.http?.tls).toStrictEqual(CERT);
  });

  it('allowedOrigins reach the http frontend, and are refused where a stream listener would pass deepstream unchecked', () => {
    const origins = ['https://app.example.com'];
    const http = proxyNginxSpec(settings({ mode: 'http', allowedOrigins: origins }), [deepstream, centrifugo], ec2Deployment());
    expect(http.http?.allowedOrigins).toEqual(origins);
    // Centrifugo checks Origin itself, so its stream listener may carry origins.
    const centrifugoStream = proxyNginxSpec(settings({ mode: 'both', allowedOrigins: origins }), [centrifugo], ec2Deployment());
    expect(centrifugoStream.http?.allowedOrigins).toEqual(origins);
    for (const mode of ['stream', 'both'] as const) {
      expect(() => proxyNginxSpec(settings({ mode, allowedOrigins: origins }), [deepstream, centrifugo], ec2Deployment())).toThrow(
        /allowedOrigins cannot be enforced on the stream listener of deepstream\.io .*allowed: mode http, or no allowedOrigins/,
      );
    }
  });

  it('the ports a proxy opens follow the mode, and a port claimed twice is refused', () => {
    const backends = [deepstream, centrifugo];
    const ports = (mode: ProxySettings['mode']) => proxyListenerPorts(mode, backends).map((p) => p.port);
    expect(ports('http')).toEqual([443, 80]);
    expect(ports('stream')).toEqual([deepstreamProfile.port, centrifugoProfile.port]);
    expect(ports('both')).toEqual([443, 80, deepstreamProfile.port, centrifugoProfile.port]);
    expect(() => proxyListenerPorts('stream', [deepstream, { ...centrifugo, streamPort: deepstreamProfile.port }])).toThrow(
      /listener port 6020 is used twice/,
    );
    expect(() => proxyListenerPorts('both', [{ ...deepstream, streamPort: 443 }])).toThrow(/listener port 443 is used twice/);
  });
});

describe('proxyNginxSpec: balancing', () => {
  it('no balance leaves nginx its round robin: no mount carries one', () => {
    const spec = proxyNginxSpec(settings({ mode: 'both' }), [deepstream, centrifugo], ec2Deployment());
    for (const mount of [...spec.http!.backends, ...spec.stream!.listeners.map((l) => l.backend)]) {
      expect(mount).not.toHaveProperty('balance');
    }
  });

  it('balance reaches every http mount and, unless streamBalance says otherwise, every stream listener', () => {
    const hash: BalanceSpec = { strategy: 'hash', hashKey: '$remote_addr' };
    const same = proxyNginxSpec(settings({ mode: 'both', balance: hash }), [deepstream, centrifugo], ec2Deployment());
    expect([...same.http!.backends, ...same.stream!.listeners.map((l) => l.backend)].map((m) => m.balance)).toEqual([hash, hash, hash, hash]);

    const cookie: BalanceSpec = { strategy: 'hash', hashKey: '$cookie_sid' };
    const split = proxyNginxSpec(settings({ mode: 'both', balance: cookie, streamBalance: LEAST_CONN }), [deepstream], ec2Deployment());
    expect(split.http!.backends[0].balance).toEqual(cookie);
    expect(split.stream!.listeners[0].backend.balance).toEqual(LEAST_CONN);
  });

  it('streamBalanceOf maps an http balance to the stream listener\'s equivalent', () => {
    expect(streamBalanceOf(undefined)).toBeUndefined();
    expect(streamBalanceOf({ strategy: 'ip-hash' })).toEqual({ strategy: 'hash', hashKey: '$remote_addr' });
    for (const balance of [LEAST_CONN, { strategy: 'round-robin' }, { strategy: 'random-two-least-conn' }, { strategy: 'hash' }, { strategy: 'hash', hashKey: '$remote_addr' }] as BalanceSpec[]) {
      expect(streamBalanceOf(balance)).toEqual(balance);
    }
    for (const hashKey of ['$cookie_sid', '$http_x_tenant', '$arg_room']) {
      expect(() => streamBalanceOf({ strategy: 'hash', hashKey })).toThrow(/is an HTTP variable and cannot be used by the stream listener/);
    }
  });

  it.each(BALANCE_STRATEGIES)('%s on http and its stream equivalent make a valid spec', (strategy) => {
    const balance: BalanceSpec = { strategy };
    const spec = proxyNginxSpec(settings({ mode: 'both', balance, streamBalance: streamBalanceOf(balance) }), [deepstream, centrifugo], ec2Deployment());
    expect(() => validateNginxSpec(spec)).not.toThrow();
  });

  it('ip-hash on http becomes its stream equivalent (hash $remote_addr) on the stream listeners unless streamBalance is given', () => {
    const spec = proxyNginxSpec(settings({ mode: 'both', balance: { strategy: 'ip-hash' } }), [deepstream], ec2Deployment());
    expect(spec.http!.backends[0].balance).toEqual({ strategy: 'ip-hash' });
    expect(spec.stream!.listeners[0].backend.balance).toEqual({ strategy: 'hash', hashKey: '$remote_addr' });
    expect(() => validateNginxSpec(spec)).not.toThrow();
    const cookieHttpOnly = proxyNginxSpec(settings({ mode: 'http', balance: { strategy: 'hash', hashKey: '$cookie_sid' } }), [deepstream], ec2Deployment());
    expect(cookieHttpOnly.stream).toBeUndefined();
    expect(() => proxyNginxSpec(settings({ mode: 'both', balance: { strategy: 'hash', hashKey: '$cookie_sid' } }), [deepstream], ec2Deployment())).toThrow(
      /cookie_sid.*stream/,
    );
  });
});

describe('proxyNginxSpec: timeouts and capacity', () => {
  it('unset: the spec carries none, and the renderer applies the shared defaults', () => {
    const spec = proxyNginxSpec(settings({ mode: 'both' }), [deepstream, centrifugo], ec2Deployment());
    expect(spec).not.toHaveProperty('timeouts');
    expect(spec).not.toHaveProperty('maxConnections');
    expect(spec).not.toHaveProperty('workerProcesses');

    const conf = renderNginxConf(spec);
    const idle = `${defaultIdleTimeoutSeconds([deepstreamProfile, centrifugoProfile])}s`;
    expect(idle).toBe('75s');
    expect(new Set(argsOf(conf, 'proxy_connect_timeout'))).toEqual(new Set([`${PROXY_DEFAULTS.connectSeconds}s`]));
    expect(new Set(argsOf(conf, 'proxy_read_timeout'))).toEqual(new Set([idle]));
    expect(new Set(argsOf(conf, 'proxy_timeout'))).toEqual(new Set([idle]));
    const capacity = nginxCapacity({});
    expect(capacity.maxConnections).toBe(PROXY_DEFAULTS.maxConnections);
    expect(argsOf(conf, 'worker_connections')).toEqual([String(capacity.workerConnections)]);
    expect(argsOf(conf, 'worker_rlimit_nofile')).toEqual([String(capacity.rlimitNofile)]);
    expect(argsOf(conf, 'worker_processes')).toEqual([NGINX_DEFAULTS.workerProcesses]);
  });

  it('unset idle timeout follows the mounted backends: 65 s for Centrifugo alone', () => {
    const conf = renderNginxConf(proxyNginxSpec(settings({ mode: 'stream' }), [centrifugo], ec2Deployment()));
    expect(argsOf(conf, 'proxy_timeout')).toEqual([`${defaultIdleTimeoutSeconds([centrifugoProfile])}s`]);
    expect(defaultIdleTimeoutSeconds([centrifugoProfile])).toBe(65);
  });

  it('set: passed through as given, and rendered', () => {
    const timeouts = { connectSeconds: 2, idleSeconds: 200 };
    const spec = proxyNginxSpec(settings({ mode: 'both', timeouts, maxConnections: 50000 }), [deepstream], {
      ...ec2Deployment(),
      workerProcesses: 4,
    });
    expect(spec.timeouts).toStrictEqual(timeouts);
    expect(spec.maxConnections).toBe(50000);
    expect(spec.workerProcesses).toBe(4);

    const conf = renderNginxConf(spec);
    expect(new Set(argsOf(conf, 'proxy_connect_timeout'))).toEqual(new Set(['2s']));
    expect(new Set([...argsOf(conf, 'proxy_read_timeout'), ...argsOf(conf, 'proxy_timeout')])).toEqual(new Set(['200s']));
    const capacity = nginxCapacity({ maxConnections: 50000, workerProcesses: 4 });
    expect(argsOf(conf, 'worker_rlimit_nofile')).toEqual([String(capacity.rlimitNofile)]);
  });
});

describe('proxyNginxSpec: deployment options', () => {
  const paths: NginxPaths = { pidFile: '/run/x/nginx.pid', errorLog: '/run/x/error.log', accessLog: '/run/x/access.log', errorPageRoot: '/run/x/html' };

  it('the local variant changes only ports, address, module and paths', () => {
    const deployment: ProxyDeployment = {
      paths,
      streamModule: { kind: 'dynamic', path: DEBIAN_STREAM_MODULE },
      listenAddress: '127.0.0.1',
      listenPorts: { https: 18443, redirect: null, stream: { deepstream: 16020 } },
      statusPort: 18081,
      workerProcesses: 1,
    };
    const local = proxyNginxSpec(settings({ mode: 'both', balance: LEAST_CONN }), [deepstream, centrifugo], deployment);
    const ec2 = proxyNginxSpec(settings({ mode: 'both', balance: LEAST_CONN }), [deepstream, centrifugo], ec2Deployment());

    expect(local.http).toStrictEqual({ ...ec2.http, listenPort: 18443, redirectHttpPort: null });
    // A backend without a local port keeps its public one.
    expect(local.stream!.listeners.map((l) => l.listenPort)).toEqual([16020, centrifugoProfile.port]);
    expect(local.stream!.listeners.map((l) => l.backend)).toStrictEqual(ec2.stream!.listeners.map((l) => l.backend));
    expect(local).toMatchObject({
      streamModule: { kind: 'dynamic', path: DEBIAN_STREAM_MODULE },
      listenAddress: '127.0.0.1',
      statusPort: 18081,
      workerProcesses: 1,
      paths,
    });
    expect(local).not.toHaveProperty('user');
  });

  it('extra mounts and listeners are appended; httpMounts replaces the backends\' mounts', () => {
    const probe: BackendMount = { profile: { ...deepstreamProfile, name: 'probe' }, servers: [{ host: '127.0.0.1', port: 9999 }], prefix: '/probe' };
    const extraListener = { listenPort: 17000, backend: probe };
    const extended = proxyNginxSpec(settings({ mode: 'both' }), [deepstream], {
      paths,
      extraHttpMounts: [probe],
      extraStreamListeners: [extraListener],
    });
    expect(extended.http!.backends).toStrictEqual([proxyBackendMount(deepstream, 0), probe]);
    expect(extended.stream!.listeners.at(-1)).toBe(extraListener);

    const replaced = proxyNginxSpec(settings({ mode: 'http' }), [deepstream], { paths, httpMounts: [probe] });
    expect(replaced.http!.backends).toStrictEqual([probe]);
    // In http mode, extra stream listeners still make a stream block of their own.
    const httpPlusListener = proxyNginxSpec(settings({ mode: 'http' }), [deepstream], { paths, extraStreamListeners: [extraListener] });
    expect(httpPlusListener.stream!.listeners).toStrictEqual([extraListener]);
  });
});

// -------------------------------------------------------------------------------------------------
// 2. nginx -t on what it builds
// -------------------------------------------------------------------------------------------------

describe('proxyNginxSpec: the real nginx -t accepts the rendered spec', () => {
  let prefix: NginxTestPrefix;
  beforeAll(() => {
    prefix = makeNginxPrefix('proxy-spec');
  });
  afterAll(() => prefix?.cleanup());

  type Case = [name: string, settings: Partial<ProxySettings>, backends: readonly ProxyBackend[]];
  const ec2Cases: Case[] = [
    ['http, both backends, least_conn, HSTS, a domain', { mode: 'http', balance: LEAST_CONN, domain: 'rt.example.com', hstsMaxAgeSeconds: 31536000 }, [deepstream, centrifugo]],
    ['http, cookie affinity', { mode: 'http', balance: { strategy: 'hash', hashKey: '$cookie_sid' } }, [deepstream, centrifugo]],
    ['stream, both backends, round robin', { mode: 'stream' }, [deepstream, centrifugo]],
    ['both, ip_hash on http, its hash equivalent on stream', { mode: 'both', balance: { strategy: 'ip-hash' }, streamBalance: streamBalanceOf({ strategy: 'ip-hash' }) }, [deepstream, centrifugo]],
    ['both, Centrifugo alone, custom timeouts and capacity', { mode: 'both', balance: { strategy: 'random-two-least-conn' }, timeouts: { connectSeconds: 2, idleSeconds: 200 }, maxConnections: 50000 }, [centrifugo]],
  ];

  it.each(ec2Cases)('EC2 deployment: %s', async (_name, changes, backends) => {
    // The host's absolute paths (logs, pid, certificates) are moved into a temp prefix for the test.
    await expectValidNginxConf(renderNginxConf(proxyNginxSpec(settings(changes), backends, ec2Deployment())), { relocatePaths: true });
  });

  it('local deployment: loopback, unprivileged ports, the dynamic stream module, paths in a run folder', async () => {
    const [https, stream, status] = await freePorts(3);
    const spec: NginxSpec = proxyNginxSpec(
      { mode: 'both', balance: LEAST_CONN, streamBalance: { strategy: 'round-robin' }, domain: 'localhost', tls: prefix.tls },
      [{ profile: deepstreamProfile, nodes: [{ host: '127.0.0.1', port: 16021 }, { host: '127.0.0.1', port: 16022 }] }],
      {
        paths: prefix.paths,
        streamModule: { kind: 'dynamic', path: DEBIAN_STREAM_MODULE },
        listenAddress: '127.0.0.1',
        listenPorts: { https, redirect: null, stream: { deepstream: stream } },
        statusPort: status,
      },
    );
    const conf = renderNginxConf(spec);
    expect(argsOf(conf, 'load_module')).toEqual([DEBIAN_STREAM_MODULE]);
    const listens = findDirectives(parseNginxConf(conf), 'listen').map(({ directive }) => directive.args[0]);
    expect(listens).toEqual(expect.arrayContaining([`127.0.0.1:${https}`, `127.0.0.1:${stream}`]));
    expect(argsOf(conf, 'server_name')).toContain('localhost');
    await expectValidNginxConf(conf);
  });
});

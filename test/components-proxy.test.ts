/**
 * NginxProxy: the boot script is independent of the nodes and the proxy settings (so changing
 * them never replaces a host), the live config travels in the SSM association, and everything the
 * hosts run passes the real tools (shellcheck, bash -n, nginx -t).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { NGINX_HOST_SCRIPTS, type NginxProxy } from '../components/nginxProxy';
import { parseStackConfig, splitStackConfig } from '../config/stack';
import type { StackConfig } from '../config/types';
import { renderNginxConf } from '../nginx/conf';
import type { NginxSpec } from '../nginx/spec';
import { checkNginxConf, makeNginxPrefix, type NginxTestPrefix } from './helpers/nginx';
import { Registry, TYPES, runEdge, stackConfig, valueOf } from './helpers/pulumi-mocks';
import { bashSyntaxError, shellcheck } from './servers-helpers';

function devConfigWith(overrides: Record<string, unknown>): StackConfig {
  const document = parseYaml(readFileSync(`${__dirname}/../Pulumi.dev.yaml`, 'utf8')) as { config: Record<string, unknown> };
  const { raw, region } = splitStackConfig(document.config);
  return parseStackConfig({ ...raw, ...overrides }, { region, stackName: 'dev' });
}

function decodeConf(association: { inputs: Record<string, unknown> }): string {
  const parameters = association.inputs.parameters as Record<string, string>;
  return Buffer.from(parameters.nginxConf, 'base64').toString('utf8');
}

/** The same spec with this machine's paths: Debian's dynamic stream module, a temp prefix and its
 * certificate, and no worker user (the hosts' `nginx` user does not exist here). Spec options,
 * not text edits: the renderer produces the tested text. */
function specForLocalCheck(spec: NginxSpec, prefix: NginxTestPrefix): NginxSpec {
  const tls = { certificatePath: prefix.tls.certificatePath, keyPath: prefix.tls.keyPath };
  return {
    ...spec,
    streamModule: { kind: 'dynamic' },
    user: undefined,
    paths: prefix.paths,
    ...(spec.http ? { http: { ...spec.http, tls: spec.http.tls ? { ...spec.http.tls, ...tls } : spec.http.tls } } : {}),
    ...(spec.stream
      ? { stream: { listeners: spec.stream.listeners.map((l) => ({ ...l, tls: l.tls ? { ...l.tls, ...tls } : l.tls })) } }
      : {}),
  };
}

interface Run {
  registry: Registry;
  proxy: NginxProxy;
}

const runs: Record<'base' | 'changed' | 'prod', Run> = {} as never;
const checkedScripts = new Set<string>();

beforeAll(async () => {
  const base = await runEdge(devConfigWith({}), 'dev');
  runs.base = { registry: base.registry, proxy: base.edge.proxy! };
  // More nodes, and every proxy setting changed: mode, balancing, timeouts, HSTS, capacity stays.
  const changed = await runEdge(
    devConfigWith({
      deepstreamNodes: 3,
      proxyMode: 'http',
      balance: 'round-robin',
      idleTimeoutSeconds: 200,
      connectTimeoutSeconds: 7,
      hstsMaxAgeSeconds: 0,
    }),
    'dev',
  );
  runs.changed = { registry: changed.registry, proxy: changed.edge.proxy! };
  const prod = await runEdge(stackConfig('prod'), 'prod');
  runs.prod = { registry: prod.registry, proxy: prod.edge.proxy! };
});

describe('in-place config updates', () => {
  test('more nodes and new proxy settings leave the proxy instance and its address untouched', () => {
    for (const type of [TYPES.instance, TYPES.eip, 'aws:ec2/eipAssociation:EipAssociation', TYPES.document]) {
      for (const name of runs.base.registry.ofType(type).filter((r) => r.name.startsWith('edge-proxy')).map((r) => r.name)) {
        expect({ name, inputs: runs.changed.registry.named(type, name).inputs }).toEqual({
          name,
          inputs: runs.base.registry.named(type, name).inputs,
        });
      }
    }
    const instance = runs.base.registry.named(TYPES.instance, 'edge-proxy-0');
    expect(instance.inputs.userDataReplaceOnChange).toBe(true);
  });

  test('only the association parameters carry the change', () => {
    const before = runs.base.registry.named(TYPES.association, 'edge-proxy-apply');
    const after = runs.changed.registry.named(TYPES.association, 'edge-proxy-apply');
    expect(after.inputs.targets).toEqual(before.inputs.targets);
    const { nginxConf: confBefore, ...restBefore } = before.inputs.parameters as Record<string, string>;
    const { nginxConf: confAfter, ...restAfter } = after.inputs.parameters as Record<string, string>;
    expect(restAfter).toEqual(restBefore);
    expect(confAfter).not.toEqual(confBefore);

    const nodeIps = (registry: Registry) =>
      registry
        .ofType(TYPES.instance)
        .filter((i) => i.name.startsWith('edge-deepstream-'))
        .map((i) => i.state.privateIp as string);
    const upstreamServers = (conf: string) => conf.match(/^\s*server\s+\d+\.\d+\.\d+\.\d+:6020\b/gm) ?? [];
    // http mode: one WebSocket and one plain-HTTP upstream per backend.
    expect(upstreamServers(decodeConf(after))).toHaveLength(2 * 3);
    for (const ip of nodeIps(runs.changed.registry)) expect(decodeConf(after)).toContain(`${ip}:6020`);
    expect(nodeIps(runs.base.registry)).toHaveLength(2);
    // The mode changed from both to http: the stream listener is gone, in place.
    expect(decodeConf(before)).toMatch(/^\s*listen\s+6020\b/m);
    expect(decodeConf(after)).not.toMatch(/^\s*listen\s+6020\b/m);
  });

  test('the boot script holds neither node addresses nor the live config nor a certificate source', () => {
    const userData = runs.base.registry.userDataOf(runs.base.registry.named(TYPES.instance, 'edge-proxy-0'));
    for (const node of runs.base.registry.ofType(TYPES.instance).filter((i) => !i.name.startsWith('edge-proxy'))) {
      expect(userData).not.toContain(node.state.privateIp as string);
    }
    expect(userData).not.toMatch(/^\s*upstream\s+\S+\s*\{/m);
    expect(userData).not.toContain('/tls/certificate');
    // What it does hold: the verified build, the apply script (nginx -t before swap) and the TLS fetcher.
    expect(userData).toContain(NGINX_HOST_SCRIPTS.build);
    expect(userData).toContain('PGP signature');
    expect(userData).toContain('nginx -t rejected the new config');
    expect(userData).toContain(NGINX_HOST_SCRIPTS.fetchTls);
  });

  test('the association runs the scripts the boot script installed, with parameters the document restricts', () => {
    const document = JSON.parse(runs.base.registry.named(TYPES.document, 'edge-proxy-apply').inputs.content as string);
    const commands: string[] = document.mainSteps[0].inputs.runCommand;
    expect(commands.join('\n')).toContain(`${NGINX_HOST_SCRIPTS.applyConfig} --base64 '{{ nginxConf }}'`);
    expect(commands.join('\n')).toContain(NGINX_HOST_SCRIPTS.fetchTls);
    const association = runs.base.registry.named(TYPES.association, 'edge-proxy-apply');
    const parameters = association.inputs.parameters as Record<string, string>;
    for (const [name, value] of Object.entries(parameters)) {
      const declared = document.parameters[name];
      expect(declared).toBeDefined();
      if (declared.allowedPattern) expect(value).toMatch(new RegExp(declared.allowedPattern));
      if (declared.allowedValues) expect(declared.allowedValues).toContain(value);
    }
    expect(association.inputs).toMatchObject({ maxConcurrency: '1', maxErrors: '0' });
    expect((association.inputs.targets as { key: string; values: string[] }[])[0]).toEqual({
      key: 'InstanceIds',
      values: runs.base.registry.ofType(TYPES.instance).filter((i) => i.name.startsWith('edge-proxy')).map((i) => i.id),
    });
  });

  test('a self-signed certificate renewal re-runs the association (revision parameter)', () => {
    const parameters = runs.base.registry.named(TYPES.association, 'edge-proxy-apply').inputs.parameters as Record<string, string>;
    expect(parameters.tlsSource).toBe('ssm');
    expect(parameters.tlsCertificate).toBe('/realtime-edge/dev/edge-proxy/tls/certificate');
    expect(parameters.tlsRevision).toBe('1.1');
  });
});

describe('allowed origins (prod stack)', () => {
  test("nginx refuses other origins on deepstream's WebSocket route only: Centrifugo checks its own", () => {
    const conf = decodeConf(runs.prod.registry.named(TYPES.association, 'edge-proxy-apply'));
    const map = /map \$http_origin \$(\w+) \{([^}]*)\}/.exec(conf);
    expect(map).not.toBeNull();
    expect(map![2]).toContain('"https://app.example.com" 0;');
    expect(map![2]).toContain('"https://admin.example.com" 0;');
    expect(map![2]).toMatch(/default 1;/);
    const gated = [...conf.matchAll(/location ([^ {]+) \{\s*if \(\$(\w+)\) \{\s*return 403;/g)].map((m) => [m[1], m[2]]);
    expect(gated).toEqual([['/deepstream', map![1]]]);
    expect(decodeConf(runs.base.registry.named(TYPES.association, 'edge-proxy-apply'))).not.toContain('$http_origin');
  });
});

describe.each(['base', 'changed', 'prod'] as const)('%s: what the hosts run', (which) => {
  let prefix: NginxTestPrefix;
  beforeAll(() => {
    prefix = makeNginxPrefix(`proxy-${which}`);
  });
  afterAll(() => prefix?.cleanup());

  test('the delivered nginx.conf is the renderer output of the proxy spec and passes nginx -t', async () => {
    const { registry, proxy } = runs[which];
    const spec = await valueOf(proxy.nginxSpec);
    const delivered = decodeConf(registry.named(TYPES.association, 'edge-proxy-apply'));
    expect(delivered).toBe(renderNginxConf(spec));
    expect(delivered).not.toContain('load_module');
    const result = await checkNginxConf(renderNginxConf(specForLocalCheck(spec, prefix)), { addStreamModule: false });
    expect(result.output).toContain('test is successful');
    expect(result.ok).toBe(true);
  });

  test('systemd LimitNOFILE in the boot script matches worker_rlimit_nofile', async () => {
    const { registry, proxy } = runs[which];
    const userData = registry.userDataOf(registry.named(TYPES.instance, 'edge-proxy-0'));
    const conf = await valueOf(proxy.nginxConf);
    const limit = /^LimitNOFILE=(\d+)$/m.exec(userData)?.[1];
    const rlimit = /^worker_rlimit_nofile (\d+);$/m.exec(conf)?.[1];
    expect(limit).toBeDefined();
    expect(limit).toBe(rlimit);
  });

  test('every boot script and helper passes shellcheck and bash -n', async () => {
    const { registry, proxy } = runs[which];
    const scripts = [
      ...registry.ofType(TYPES.instance).map((i) => ({ name: i.name, text: registry.userDataOf(i) })),
      ...(await valueOf(proxy.artifacts))
        .filter((a) => a.kind.endsWith('-script'))
        .map((a) => ({ name: a.fileName, text: a.content })),
    ];
    expect(scripts.length).toBeGreaterThanOrEqual(6);
    // Identical scripts (every proxy host boots the same way, in every run) are checked once.
    const unique = scripts.filter((script, index) => scripts.findIndex((s) => s.text === script.text) === index && !checkedScripts.has(script.text));
    for (const { name, text } of unique) {
      checkedScripts.add(text);
      expect({ name, shellcheck: shellcheck(text), syntax: bashSyntaxError(text) }).toEqual({ name, shellcheck: '', syntax: '' });
    }
  });
});

describe('urls', () => {
  test('per backend, http and stream, on the domain or on each host', async () => {
    expect(await valueOf(runs.prod.proxy.urls)).toEqual({
      deepstream: ['wss://rt.example.com/deepstream'],
      centrifugo: ['wss://rt.example.com/centrifugo/connection/websocket'],
    });
    const dns = (await valueOf(runs.base.proxy.publicDns))[0];
    expect(await valueOf(runs.base.proxy.urls)).toEqual({
      deepstream: [`wss://${dns}/deepstream`],
      'deepstream-stream': [`wss://${dns}:6020/deepstream`],
    });
  });
});

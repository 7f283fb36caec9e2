/**
 * `npm run render`: invalid configuration exits 2 with every message and writes nothing; the two
 * example stacks render to a manifest, a plan and the files they list.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseRenderArgs, renderStack, writeRenderedStack, type ManifestEntry, type PlanEntry, type RenderedStack } from '../tools/render';
import { MOCK_SECRET_MARKER } from './helpers/pulumi-mocks';
import { makeTempDir, removeDir } from './servers-helpers';

const ROOT = path.join(__dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

function filesUnder(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    return statSync(full).isDirectory() ? filesUnder(full, base) : [path.relative(base, full)];
  });
}

let work: string;
beforeAll(() => {
  work = makeTempDir('render');
});
afterAll(() => removeDir(work));

describe('invalid input', () => {
  test('bad config: exit 2, every problem named, nothing written', () => {
    const stackFile = path.join(work, 'Pulumi.broken.yaml');
    writeFileSync(
      stackFile,
      [
        'config:',
        '  aws:region: eu-west-1',
        '  realtime-edge:deepstreamNodes: 0',
        '  realtime-edge:frontend: haproxy',
        '  realtime-edge:allowedCidrs: ["10.0.0.1/8"]',
        '',
      ].join('\n'),
    );
    const out = path.join(work, 'out-broken');
    const result = spawnSync(TSX, ['tools/render.ts', '--stack', stackFile, '--out', out], { cwd: ROOT, encoding: 'utf8' });
    expect(result.status).toBe(2);
    for (const key of ['realtime-edge:deepstreamNodes', 'realtime-edge:frontend', 'realtime-edge:allowedCidrs']) {
      expect(result.stderr).toContain(key);
    }
    expect(result.stderr).toContain('haproxy');
    expect(result.stderr).toContain('Nothing was written.');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(work).filter((entry) => entry.startsWith('out-broken'))).toEqual([]);
  });

  test('arguments: both required, unknown ones refused', () => {
    expect(parseRenderArgs(['--stack', 'dev', '--out', 'x'])).toEqual({ stack: 'dev', out: 'x' });
    expect(parseRenderArgs(['--stack=prod', '--out=y'])).toEqual({ stack: 'prod', out: 'y' });
    expect(() => parseRenderArgs(['--stack', 'dev'])).toThrow(/missing --out/);
    expect(() => parseRenderArgs(['--stack', 'dev', '--out', 'x', '--force'])).toThrow(/unknown argument "--force"/);
  });

  test('an unknown stack name is a usage error', async () => {
    await expect(renderStack('nosuchstack', ROOT)).rejects.toThrow(/Pulumi\.nosuchstack\.yaml does not exist/);
  });
});

describe.each(['dev', 'prod'] as const)('%s stack', (stack) => {
  let rendered: RenderedStack;
  let out: string;
  let manifest: ManifestEntry[];
  let plan: PlanEntry[];

  beforeAll(async () => {
    rendered = await renderStack(stack, ROOT);
    out = path.join(work, `out-${stack}`);
    writeRenderedStack(rendered, out);
    manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    plan = JSON.parse(readFileSync(path.join(out, 'plan.json'), 'utf8'));
  });

  test('the manifest lists exactly the files written, each with kind and resource', () => {
    const written = filesUnder(out).filter((f) => f !== 'manifest.json' && f !== 'plan.json').sort();
    expect(manifest.map((m) => m.path).sort()).toEqual(written);
    for (const entry of manifest) {
      expect(Object.keys(entry).sort()).toEqual(['kind', 'path', 'resource']);
      expect(readFileSync(path.join(out, entry.path), 'utf8')).toBe(rendered.files.get(entry.path));
    }
  });

  test('one user-data script per instance, one nginx.conf, one server config per node', () => {
    const instances = plan.filter((p) => p.type === 'aws:ec2/instance:Instance').map((p) => p.name).sort();
    expect(manifest.filter((m) => m.kind === 'user-data').map((m) => m.resource).sort()).toEqual(instances);
    expect(manifest.filter((m) => m.kind === 'nginx-conf')).toEqual([{ kind: 'nginx-conf', path: 'edge-proxy-apply/nginx.conf', resource: 'edge-proxy-apply' }]);
    const nodes = (backend: string) => instances.filter((name) => name.startsWith(`edge-${backend}-`));
    expect(manifest.filter((m) => m.kind === 'deepstream-config' && m.path.endsWith('config.yml')).map((m) => m.resource)).toEqual(nodes('deepstream'));
    expect(manifest.filter((m) => m.kind === 'centrifugo-config').map((m) => m.resource)).toEqual(stack === 'prod' ? nodes('centrifugo') : []);
    expect(readFileSync(path.join(out, 'edge-proxy-apply/nginx.conf'), 'utf8')).toMatch(/^\s*upstream deepstream_ws \{/m);
  });

  test('plan: one entry per resource; secrets hidden; invented ids marked; scripts referenced', () => {
    expect(plan.length).toBe(rendered.plan.length);
    expect(new Set(plan.map((p) => `${p.type} ${p.name}`)).size).toBe(plan.length);
    for (const entry of plan.filter((p) => p.type === 'aws:ec2/instance:Instance')) {
      expect(entry.id).toMatch(/^\(placeholder\) i-0[0-9a-f]{16}$/);
      expect(entry.inputs.ami).toMatch(/^\(placeholder\) ami-0[0-9a-f]{16}$/);
      const userData = (entry.inputs.userData ?? entry.inputs.userDataBase64) as string;
      expect(userData).toMatch(new RegExp(`^\\[rendered file ${entry.name}/user-data\\.sh( \\(gzip, base64\\))?\\]$`));
    }
    for (const entry of plan.filter((p) => p.type === 'aws:ssm/parameter:Parameter')) expect(entry.inputs.value).toBe('[secret]');
    for (const entry of plan.filter((p) => p.type === 'aws:elasticache/replicationGroup:ReplicationGroup')) {
      expect(entry.inputs.authToken).toBe('[secret]');
    }
    const association = plan.find((p) => p.type === 'aws:ssm/association:Association')!;
    expect((association.inputs.parameters as Record<string, string>).nginxConf).toBe('[rendered file edge-proxy-apply/nginx.conf (base64)]');
    expect(plan.filter((p) => p.component).map((p) => p.type)).toContain('realtime-edge:index:RealtimeEdge');
  });

  test('no generated secret value in any written file', () => {
    for (const file of filesUnder(out)) expect(readFileSync(path.join(out, file), 'utf8')).not.toContain(MOCK_SECRET_MARKER);
  });

  test('the outputs name the client URLs', () => {
    const outputs = JSON.parse(readFileSync(path.join(out, 'outputs.json'), 'utf8'));
    expect(outputs.urls.nginx.deepstream[0]).toMatch(/^wss:\/\/.+\/deepstream$/);
    if (stack === 'prod') expect(outputs.urls.alb.centrifugo).toBe('wss://rt.example.com/centrifugo/connection/websocket');
  });
});

describe('writing', () => {
  test('rendering twice gives identical files, and an earlier render is replaced', async () => {
    const out = path.join(work, 'out-dev-again');
    writeRenderedStack(await renderStack('dev', ROOT), out);
    const first = new Map(filesUnder(out).map((f) => [f, readFileSync(path.join(out, f), 'utf8')]));
    writeRenderedStack(await renderStack('dev', ROOT), out);
    const second = new Map(filesUnder(out).map((f) => [f, readFileSync(path.join(out, f), 'utf8')]));
    expect(second).toEqual(first);
  });

  test('a directory that is not an earlier render is never replaced', async () => {
    const foreign = path.join(work, 'foreign');
    mkdirSync(foreign);
    writeFileSync(path.join(foreign, 'precious.txt'), 'keep me');
    expect(() =>
      writeRenderedStack({ stack: 'x', stackFile: 'x', files: new Map(), manifest: [], plan: [], outputs: {} }, foreign),
    ).toThrow(/not an earlier render/);
    expect(readFileSync(path.join(foreign, 'precious.txt'), 'utf8')).toBe('keep me');
  });
});

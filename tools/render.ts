/**
 * `npm run render -- --stack NAME|PATH --out DIR`
 *
 * Runs the realtime-edge program offline, against mocks of AWS, random and tls, for the stack file
 * `Pulumi.NAME.yaml` (or the given path), and writes what it would deploy for review:
 * every user-data script, nginx.conf and server config, `plan.json` (one entry per resource with
 * its inputs; secrets as `[secret]`, ids and ARNs the mocks invented as `(placeholder) …`) and
 * `manifest.json` (`[{kind, path, resource}]`).
 *
 * Exit codes: 0 written; 2 invalid arguments or configuration (every problem printed, nothing
 * written); 1 anything else (nothing written).
 */
import { createHash } from 'crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'fs';
import { basename, dirname, join, resolve } from 'path';
import { gunzipSync } from 'zlib';
import type { RenderedArtifact } from '../components/artifacts';
import { StackConfigError, loadStackFile, resolveStackFile, stackNameOf } from '../config/stack';
import type { StackConfig } from '../config/types';
import { defaultMockWorld, isSecretValue, runWithMocks, valueOf, type RealisticMocks } from './mocks';

export interface ManifestEntry {
  readonly kind: string;
  /** Relative to the output directory. */
  readonly path: string;
  readonly resource: string;
}

export interface PlanEntry {
  readonly type: string;
  readonly name: string;
  /** Component resources group others; they have no cloud id. */
  readonly component?: true;
  readonly id?: string;
  readonly inputs: Record<string, unknown>;
}

export interface RenderedStack {
  readonly stack: string;
  readonly stackFile: string;
  /** Relative path -> content. */
  readonly files: ReadonlyMap<string, string>;
  readonly manifest: readonly ManifestEntry[];
  readonly plan: readonly PlanEntry[];
  readonly outputs: Record<string, unknown>;
}

export class UsageError extends Error {}

const PLACEHOLDER = '(placeholder) ';

/** Renders a validated stack in memory. Throws StackConfigError before any resource exists. */
export async function renderStack(stackOrPath: string, projectDir = process.cwd()): Promise<RenderedStack> {
  const stackFile = resolveStackFile(stackOrPath, projectDir);
  if (!existsSync(stackFile)) {
    throw new UsageError(`stack file ${stackFile} does not exist; pass a stack name with a Pulumi.NAME.yaml beside it, or a path`);
  }
  const config: StackConfig = loadStackFile(stackFile);
  const stack = stackNameOf(stackFile) ?? basename(stackFile).replace(/\.ya?ml$/, '');

  // Imported here, after validation: a bad config is reported without loading the providers.
  const { RealtimeEdge } = await import('../components/realtimeEdge');
  const { result: edge, mocks } = await runWithMocks(() => new RealtimeEdge('edge', config), {
    stack,
    world: defaultMockWorld(config.region),
  });
  const artifacts = await valueOf(edge.artifacts);
  const urls = await valueOf(edge.urls);

  const files = new Map<string, string>();
  const manifest: ManifestEntry[] = [];
  const artifactByHash = new Map<string, string[]>();
  for (const artifact of artifacts) {
    const path = artifactPath(artifact);
    if (files.has(path)) throw new Error(`two rendered files would be written to ${path}`);
    files.set(path, artifact.content);
    manifest.push({ kind: artifact.kind, path, resource: artifact.resource });
    const hash = sha256(artifact.content);
    artifactByHash.set(hash, [...(artifactByHash.get(hash) ?? []), path]);
  }
  const outputs = markPlaceholders({ urls }, mocks) as Record<string, unknown>;
  files.set('outputs.json', `${JSON.stringify(outputs, null, 2)}\n`);
  manifest.push({ kind: 'stack-outputs', path: 'outputs.json', resource: 'edge' });

  const plan = mocks.resources.map((resource): PlanEntry => ({
    type: resource.type,
    name: resource.name,
    ...(resource.custom ? { id: markPlaceholders(resource.id ?? '', mocks) as string } : { component: true as const }),
    inputs: planInputs(resource.inputs, mocks, (hash) => {
      // Identical files (the user data of every proxy host) are attributed to their own resource.
      const paths = artifactByHash.get(hash);
      return paths?.find((path) => path.startsWith(`${safeSegment(resource.name)}/`)) ?? paths?.[0];
    }),
  }));

  const leaks = [...files.entries()].filter(([, content]) => [...mocks.secretValues].some((s) => content.includes(s)));
  const planText = JSON.stringify(plan);
  if (leaks.length > 0 || [...mocks.secretValues].some((s) => planText.includes(s))) {
    throw new Error(
      `a generated secret value appears in ${leaks.map(([p]) => p).join(', ') || 'plan.json'}; refusing to write it`,
    );
  }
  return { stack, stackFile, files, manifest, plan, outputs };
}

function safeSegment(segment: string): string {
  return segment.replace(/[^A-Za-z0-9._-]+/g, '_');
}

function artifactPath(artifact: RenderedArtifact): string {
  return `${safeSegment(artifact.resource)}/${safeSegment(artifact.fileName)}`;
}

type FileLookup = (sha256: string) => string | undefined;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Inputs as the plan shows them: secrets hidden, rendered files referenced by path, invented
 * values marked. */
function planInputs(
  inputs: Record<string, unknown>,
  mocks: RealisticMocks,
  fileOf: FileLookup,
): Record<string, unknown> {
  const show = (value: unknown): unknown => {
    if (isSecretValue(value)) return '[secret]';
    if (typeof value === 'string') {
      const file = renderedFileOf(value, fileOf);
      return file ? `[rendered file ${file}]` : markPlaceholders(value, mocks);
    }
    if (Array.isArray(value)) return value.map(show);
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, show(inner)]));
    }
    return value;
  };
  return show(inputs) as Record<string, unknown>;
}

/** The rendered file a string is, as is, base64 or gzip+base64 (user data over 16 KB). */
function renderedFileOf(value: string, fileOf: FileLookup): string | undefined {
  const direct = fileOf(sha256(value));
  if (direct || value.length < 64 || !/^[A-Za-z0-9+/=\s]+$/.test(value)) return direct;
  const bytes = Buffer.from(value, 'base64');
  const decoded = fileOf(sha256(bytes.toString('utf8')));
  if (decoded) return `${decoded} (base64)`;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const unzipped = fileOf(sha256(gunzipSync(bytes).toString('utf8')));
    if (unzipped) return `${unzipped} (gzip, base64)`;
  }
  return undefined;
}

/** Prefixes every value the mocks invented with `(placeholder) `, inside longer strings too. */
function markPlaceholders(value: unknown, mocks: RealisticMocks): unknown {
  const pattern = placeholderPattern(mocks);
  const mark = (inner: unknown): unknown => {
    if (typeof inner === 'string') return pattern ? inner.replace(pattern, (match) => `${PLACEHOLDER}${match}`) : inner;
    if (Array.isArray(inner)) return inner.map(mark);
    if (inner && typeof inner === 'object') return Object.fromEntries(Object.entries(inner).map(([k, v]) => [k, mark(v)]));
    return inner;
  };
  return mark(value);
}

const patternCache = new WeakMap<RealisticMocks, { size: number; pattern: RegExp | undefined }>();

function placeholderPattern(mocks: RealisticMocks): RegExp | undefined {
  const cached = patternCache.get(mocks);
  if (cached && cached.size === mocks.placeholders.size) return cached.pattern;
  // Longest first, so an ARN is marked as a whole rather than the account id inside it.
  const values = [...mocks.placeholders].filter((v) => v.length >= 6).sort((a, b) => b.length - a.length);
  const escaped = values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = escaped.length > 0 ? new RegExp(`(?<![\\w.-])(?:${escaped.join('|')})(?![\\w-])`, 'g') : undefined;
  patternCache.set(mocks, { size: mocks.placeholders.size, pattern });
  return pattern;
}

/** Writes a rendered stack to `outDir` all at once: into a sibling temp directory first, then
 * renamed, so a failure leaves nothing half-written. An existing `outDir` is replaced only when it
 * is empty or holds an earlier render (a manifest.json). */
export function writeRenderedStack(rendered: RenderedStack, outDir: string): void {
  const target = resolve(outDir);
  if (existsSync(target)) {
    const entries = readdirSync(target);
    if (entries.length > 0 && !entries.includes('manifest.json')) {
      throw new UsageError(`--out ${outDir} exists and is not an earlier render (no manifest.json); refusing to replace it`);
    }
  }
  mkdirSync(dirname(target), { recursive: true });
  const staging = `${target}.rendering-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  try {
    for (const [path, content] of rendered.files) {
      mkdirSync(dirname(join(staging, path)), { recursive: true });
      writeFileSync(join(staging, path), content, { mode: path.endsWith('.sh') ? 0o755 : 0o644 });
    }
    writeFileSync(join(staging, 'plan.json'), `${JSON.stringify(rendered.plan, null, 2)}\n`);
    writeFileSync(join(staging, 'manifest.json'), `${JSON.stringify(rendered.manifest, null, 2)}\n`);
    rmSync(target, { recursive: true, force: true });
    renameSync(staging, target);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

export function parseRenderArgs(argv: readonly string[]): { stack: string; out: string } {
  const values: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const match = /^--(stack|out)(?:=(.*))?$/.exec(arg);
    if (!match) throw new UsageError(`unknown argument ${JSON.stringify(arg)}; allowed: --stack NAME|PATH --out DIR`);
    const value = match[2] ?? argv[++i];
    if (value === undefined || value === '') throw new UsageError(`--${match[1]} needs a value`);
    values[match[1]] = value;
  }
  const missing = ['stack', 'out'].filter((key) => values[key] === undefined);
  if (missing.length > 0) {
    throw new UsageError(`missing ${missing.map((m) => `--${m}`).join(' and ')}; usage: npm run render -- --stack NAME|PATH --out DIR`);
  }
  return { stack: values.stack, out: values.out };
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    const { stack, out } = parseRenderArgs(argv);
    const rendered = await renderStack(stack);
    writeRenderedStack(rendered, out);
    const resources = rendered.plan.filter((entry) => !entry.component).length;
    process.stdout.write(
      `rendered stack ${rendered.stack} (${rendered.stackFile}): ${rendered.manifest.length} files, ${resources} resources -> ${out}\n`,
    );
    return 0;
  } catch (error) {
    if (error instanceof StackConfigError || error instanceof UsageError) {
      process.stderr.write(`${error.message}\nNothing was written.\n`);
      return 2;
    }
    process.stderr.write(`render failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\nNothing was written.\n`);
    return 1;
  }
}

if (require.main === module) {
  // A failure inside a Pulumi output surfaces as an unhandled rejection, not through `main`.
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(`render failed: ${reason instanceof Error ? reason.message : String(reason)}\nNothing was written.\n`);
    process.exit(1);
  });
  main(process.argv.slice(2)).then((code) => process.exit(code));
}


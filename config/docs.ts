/**
 * Generates the two documents derived from the key table in config/schema.ts: the `config:`
 * section of Pulumi.yaml and the README configuration reference. Tests fail when either file drifts from the table;
 * `npx tsx config/docs.ts --write` regenerates both.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import {
  CONFIG_GROUPS,
  CONFIG_KEYS,
  CONFIG_NAMESPACE,
  DEFAULT_REGION,
  DERIVED_IDLE_TIMEOUT,
  type ConfigKeySpec,
} from './schema';

/** One entry of Pulumi.yaml's `config:` map (Pulumi's project config type declaration). */
export interface PulumiConfigDeclaration {
  /** Pulumi knows string, integer, boolean and array; a map (`tags`) is declared without a type. */
  readonly type?: 'string' | 'integer' | 'boolean' | 'array';
  readonly items?: { readonly type: 'string' };
  readonly description: string;
  readonly default: unknown;
}

/** What Pulumi.yaml declares when a key has no default: an empty value, which the loader reads
 * as unset (Pulumi would otherwise demand a value for every declared key). */
function emptyValueOf(spec: ConfigKeySpec): unknown {
  switch (spec.kind) {
    case 'array':
      return [];
    case 'object':
      return {};
    default:
      return '';
  }
}

export function pulumiConfigDeclarations(): Record<string, PulumiConfigDeclaration> {
  return Object.fromEntries(
    CONFIG_KEYS.map((spec): [string, PulumiConfigDeclaration] => {
      const typed = spec.kind === 'object' ? {} : { type: spec.kind };
      const items = spec.kind === 'array' ? { items: { type: 'string' as const } } : {};
      const value = spec.default !== undefined ? spec.default : emptyValueOf(spec);
      return [spec.key, { ...typed, ...items, description: spec.description, default: value }];
    }),
  );
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function shownDefault(spec: ConfigKeySpec): string {
  if (spec.default === undefined) return '(unset)';
  const value = typeof spec.default === 'string' ? `\`${spec.default}\`` : `\`${JSON.stringify(spec.default)}\``;
  return spec.derivedDefault !== undefined ? `${value}, ${spec.derivedDefault}` : value;
}

const CROSS_KEY_RULES: readonly string[] = [
  'Unknown keys under `realtime-edge:` are errors, with a "did you mean" suggestion for typos.',
  'A key set to a non-default value where it has no effect is an error (for example `redisHost` with `redisMode: elasticache`, `albStickiness` with `frontend: nginx`, `centrifugoNodes` without `centrifugo` in `backends`, `hashKey` without `balance: hash`).',
  '`frontend` `alb` or `both` requires `acmCertificateArn`, in the stack region.',
  '`tlsSource` `ssm` requires `tlsCertificateParameter` and `tlsKeyParameter`; `secrets-manager` requires `tlsSecretId`; anything but `self-signed` requires `domain`.',
  '`tlsSource` `acm` is only valid with `frontend: alb` (nginx cannot load an ACM private key); `ssm` and `secrets-manager` need nginx in `frontend`.',
  '`balance` `ip-hash` requires `proxyMode: http`; in `stream`/`both` mode `hashKey` may use connection variables only.',
  'A non-empty `allowedOrigins` with nginx in `frontend` requires `proxyMode: http` while a backend that does not check Origin itself (deepstream) is enabled: stream mode passes the WebSocket handshake through unread.',
  '`vpcId` requires `publicSubnetIds` (2 or more in different AZs when the ALB is used) and `privateSubnetIds`; subnets without `vpcId` are an error.',
  '`redisMode` `existing` requires `redisHost`. A stack named like `prod`/`production` needs `redisReplicas` of at least 1.',
  `\`idleTimeoutSeconds\`, unless ${DERIVED_IDLE_TIMEOUT} (derived), must exceed the largest ping interval of the enabled backends.`,
  'An enabled server installed from a release archive (Centrifugo) needs `<name>ReleaseSha256` with a pin for the CPU architecture of `<name>InstanceType` (`aarch64` for Graviton types such as c7g.large, `x86_64` otherwise) or `<name>AllowUnpinnedRelease: true`.',
];

export function renderConfigDocs(): string {
  const lines: string[] = [
    '# Stack configuration',
    '',
    '<!-- Generated from config/schema.ts by `npx tsx config/docs.ts --write`; do not edit by hand. -->',
    '',
    `Every key lives in the \`${CONFIG_NAMESPACE}:\` namespace and is declared, with its type, default and`,
    'description, in `Pulumi.yaml`. Set a scalar with',
    `\`pulumi config set ${CONFIG_NAMESPACE}:proxyCount 2\`; set a list with \`--path\``,
    `(\`pulumi config set --path '${CONFIG_NAMESPACE}:backends[1]' centrifugo\`) or write it in the stack file as a YAML`,
    'list (Pulumi checks list keys against their declared type before the program runs, so a comma-separated',
    'string is refused); `tags` is a map in the stack file.',
    `The region is \`aws:region\` (default \`${DEFAULT_REGION}\`). \`Pulumi.dev.yaml\` and \`Pulumi.prod.yaml\` are complete examples.`,
    '',
    'The whole configuration is validated before any resource is created, and every problem is reported at',
    'once, one line per key: `realtime-edge:KEY: got VALUE; allowed: ALLOWED (why)`.',
    '',
  ];
  for (const group of CONFIG_GROUPS) {
    lines.push(`## ${group}`, '', '| Key | Type | Default | Allowed | Description |', '| --- | --- | --- | --- | --- |');
    for (const spec of CONFIG_KEYS.filter((s) => s.group === group)) {
      const type = spec.kind === 'array' ? 'list of strings' : spec.kind === 'object' ? 'map of strings' : spec.kind;
      lines.push(`| \`${spec.key}\` | ${type} | ${cell(shownDefault(spec))} | ${cell(spec.allowed)} | ${cell(spec.description)} |`);
    }
    lines.push('');
  }
  lines.push('## Rules across keys', '', ...CROSS_KEY_RULES.map((rule) => `- ${rule}`), '');
  return lines.join('\n');
}

/** Pulumi.yaml with its `config:` section replaced; name, runtime and description are kept. */
export function renderPulumiYaml(current: string): string {
  const document = parseDocument(current);
  document.set('config', document.createNode(pulumiConfigDeclarations()));
  return document.toString({ lineWidth: 0 });
}

export const README_CONFIG_BEGIN = '<!-- config:begin -->';
export const README_CONFIG_END = '<!-- config:end -->';

/** README.md with the configuration reference between its markers replaced by `renderConfigDocs()`,
 * one heading level down (the README's own section is `## Configuration reference`). */
export function renderReadmeConfigSection(readme: string): string {
  const begin = readme.indexOf(README_CONFIG_BEGIN);
  const end = readme.indexOf(README_CONFIG_END);
  if (begin < 0 || end < begin) {
    throw new Error(`README.md: markers ${README_CONFIG_BEGIN} and ${README_CONFIG_END} not found in that order`);
  }
  const reference = renderConfigDocs()
    .split('\n')
    .filter((line) => !line.startsWith('# '))
    .map((line) => (line.startsWith('## ') ? `#${line}` : line))
    .join('\n')
    .trim();
  return `${readme.slice(0, begin + README_CONFIG_BEGIN.length)}\n${reference}\n${readme.slice(end)}`;
}

if (require.main === module && process.argv.includes('--write')) {
  const root = join(__dirname, '..');
  const readmeFile = join(root, 'README.md');
  writeFileSync(readmeFile, renderReadmeConfigSection(readFileSync(readmeFile, 'utf8')));
  const projectFile = join(root, 'Pulumi.yaml');
  writeFileSync(projectFile, renderPulumiYaml(readFileSync(projectFile, 'utf8')));
}

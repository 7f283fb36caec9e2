import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { README_CONFIG_BEGIN, README_CONFIG_END, pulumiConfigDeclarations, renderConfigDocs, renderPulumiYaml, renderReadmeConfigSection } from '../config/docs';
import { BACKEND_NAMES, CONFIG_KEYS, CONFIG_NAMESPACE, backendCatalog } from '../config/schema';
import { parseStackConfig } from '../config/stack';

const root = join(__dirname, '..');
const projectText = readFileSync(join(root, 'Pulumi.yaml'), 'utf8');
const project = parseYaml(projectText) as {
  name: string;
  runtime: unknown;
  description: string;
  config: Record<string, Record<string, unknown>>;
};

// Pulumi's project schema (sdk/go/common/workspace/project.json): a declaration has only these
// fields, and `type` is one of four simple types; arrays must say what their items are.
const DECLARATION_FIELDS = new Set(['type', 'items', 'description', 'secret', 'default', 'value']);
const SIMPLE_TYPES = new Set(['string', 'integer', 'boolean', 'array']);

function matchesDeclaredType(type: unknown, value: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return Number.isInteger(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'array':
      return Array.isArray(value) && value.every((item) => typeof item === 'string');
    default:
      return typeof value === 'object' && value !== null && !Array.isArray(value);
  }
}

describe('Pulumi.yaml', () => {
  it('keeps the project identity', () => {
    expect(project.name).toBe(CONFIG_NAMESPACE);
    expect(project.runtime).toEqual({ name: 'nodejs', options: { typescript: true } });
    expect(project.description).toMatch(/deepstream/);
  });

  it('declares exactly the keys of the schema, with the same type, default and description', () => {
    expect(Object.keys(project.config)).toEqual(CONFIG_KEYS.map((spec) => spec.key));
    for (const spec of CONFIG_KEYS) {
      const declared = project.config[spec.key]!;
      expect({ key: spec.key, description: declared.description }).toEqual({ key: spec.key, description: spec.description });
      expect({ key: spec.key, type: declared.type }).toEqual({ key: spec.key, type: spec.kind === 'object' ? undefined : spec.kind });
      if (spec.default !== undefined) expect({ key: spec.key, default: declared.default }).toEqual({ key: spec.key, default: spec.default });
    }
  });

  it('is what the generator writes', () => {
    expect(renderPulumiYaml(projectText)).toBe(projectText);
    expect(project.config).toEqual(pulumiConfigDeclarations());
  });

  it("fits Pulumi's project config schema", () => {
    for (const [key, declaration] of Object.entries(project.config)) {
      expect({ key, extra: Object.keys(declaration).filter((field) => !DECLARATION_FIELDS.has(field)) }).toEqual({ key, extra: [] });
      if (declaration.type !== undefined) expect(SIMPLE_TYPES.has(declaration.type as string)).toBe(true);
      if (declaration.type === 'array') expect(declaration.items).toEqual({ type: 'string' });
      expect(typeof declaration.description).toBe('string');
      // Pulumi checks defaults against the declared type, and a key without one must be set by every stack.
      expect({ key, hasDefault: 'default' in declaration }).toEqual({ key, hasDefault: true });
      expect({ key, typed: matchesDeclaredType(declaration.type, declaration.default) }).toEqual({ key, typed: true });
    }
  });

  it('declares defaults that parse on their own', () => {
    const defaults = Object.fromEntries(Object.entries(project.config).map(([key, declaration]) => [key, declaration.default]));
    expect(parseStackConfig(defaults)).toEqual(parseStackConfig({}));
  });

  // Pulumi checks every stack value against the type declared here before the program runs: a
  // list key set to the string "deepstream,centrifugo" fails `pulumi up`.
  it('types every value of the example stacks the way it declares them', () => {
    for (const stack of ['dev', 'prod']) {
      const { config } = parseYaml(readFileSync(join(root, `Pulumi.${stack}.yaml`), 'utf8')) as { config: Record<string, unknown> };
      for (const [fullKey, value] of Object.entries(config)) {
        const key = fullKey.replace(`${CONFIG_NAMESPACE}:`, '');
        if (key === fullKey) continue;
        expect({ stack, key, typed: matchesDeclaredType(project.config[key]?.type, value) }).toEqual({ stack, key, typed: true });
      }
    }
  });

  it('offers no list value form that Pulumi refuses (a comma-separated string)', () => {
    const listDescriptions = CONFIG_KEYS.filter((spec) => spec.kind === 'array').map((spec) => `${spec.key}: ${spec.description}`);
    expect(listDescriptions.filter((line) => /comma-separated/i.test(line))).toEqual([]);
    expect(renderConfigDocs()).not.toMatch(/comma-separated string such as/i);
  });

  it('says who enforces allowedOrigins: the backends that check Origin themselves, nginx http mode and the ALB for the others', () => {
    const { description } = project.config.allowedOrigins as { description: string };
    for (const name of BACKEND_NAMES) {
      const { displayName, checksOriginOnUpgrade } = backendCatalog[name].profile;
      expect(description).toMatch(checksOriginOnUpgrade ? `Checked by ${displayName}` : `${displayName} does no such check`);
    }
    expect(description).toContain('nginx in http mode and the ALB enforce them');
    expect(description).toContain('Requests without an Origin header (non-browser clients) pass.');
  });

  it('generates per-backend keys from the backend registry', () => {
    for (const name of BACKEND_NAMES) {
      for (const suffix of ['Nodes', 'InstanceType', 'Version']) expect(project.config).toHaveProperty(`${name}${suffix}`);
    }
  });
});

describe('README.md configuration reference', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const docs = readme.slice(readme.indexOf(README_CONFIG_BEGIN), readme.indexOf(README_CONFIG_END));

  it('is what the generator writes (regenerate with `npx tsx config/docs.ts --write`)', () => {
    expect(readme).toBe(renderReadmeConfigSection(readme));
    expect(docs).toContain('| `backends` |');
  });

  it('documents every key with its type, default, allowed values and description', () => {
    for (const spec of CONFIG_KEYS) {
      const row = docs.split('\n').find((line) => line.startsWith(`| \`${spec.key}\` |`));
      expect({ key: spec.key, documented: row !== undefined }).toEqual({ key: spec.key, documented: true });
      const cells = row!.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, '|'));
      expect(cells.slice(1, 6)).toEqual([
        `\`${spec.key}\``,
        expect.any(String),
        expect.any(String),
        spec.allowed,
        spec.description,
      ]);
    }
  });
});

/**
 * The TypeScript examples in README.md and docs/*.md are compiled against the library entry, so a
 * renamed export or a changed Args interface breaks this test instead of a user's first `pulumi up`.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ts from 'typescript';

const root = join(__dirname, '..');
const documents = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];

function typescriptBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]);
}

const examples = documents.flatMap((doc) =>
  typescriptBlocks(readFileSync(join(root, doc), 'utf8')).map((code, index) => ({ name: `${doc} example ${index + 1}`, code })),
);

describe('documentation examples', () => {
  it('exist in the README', () => {
    expect(examples.filter((e) => e.name.startsWith('README.md')).length).toBeGreaterThanOrEqual(2);
  });

  it('compile against lib.ts as the package root', () => {
    const dir = mkdtempSync(join(tmpdir(), 'realtime-edge-docs-'));
    try {
      const files = examples.map((example, index) => {
        const file = join(dir, `example-${index}.ts`);
        // Each example is its own module, importing the package by its published name.
        writeFileSync(file, `${example.code}\nexport {};\n`);
        return file;
      });
      const program = ts.createProgram(files, {
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        esModuleInterop: true,
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.CommonJS,
        moduleResolution: ts.ModuleResolutionKind.Node10,
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
        baseUrl: root,
        paths: { 'realtime-edge': ['lib.ts'], '@pulumi/*': ['node_modules/@pulumi/*'] },
      });
      const problems = ts.getPreEmitDiagnostics(program).map((d) => {
        const where = d.file ? examples[files.indexOf(d.file.fileName)]?.name ?? d.file.fileName : '';
        return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
      expect(problems).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

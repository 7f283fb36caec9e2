import fc from 'fast-check';
import { chmodSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  BOOTSTRAP_LOG_PATH,
  renderBootstrapScript,
  renderPackageInstall,
  renderSsmSecretsEnvFileStep,
  type SsmSecretEnvVar,
} from '../servers/bootstrap';
import type { RenderedFile } from '../servers/profile';
import { bashSyntaxError, makeTempDir, removeDir, runBash, runScriptInRoot, shellcheck } from './servers-helpers';

/** Lines built to break naive file writers: heredoc delimiters (ours included), expansions, quotes. */
const nastyLine = fc.constantFrom(
  'EOF',
  "'EOF'",
  'REALTIME_EDGE_FILE_1_EOF',
  'REALTIME_EDGE_FILE_1_EOF_1',
  'REALTIME_EDGE_FILE_2_EOF',
  'REALTIME_EDGE_FILE_3_EOF',
  '$(touch pwned)',
  '`touch pwned`',
  '${HOME} $PATH $1 $@',
  "it's \"quoted\" \\ back\\slash",
  '\t indented\r',
  '',
  ' ',
  '#!/bin/bash',
);
const line = fc.oneof(nastyLine, fc.string({ unit: 'binary', maxLength: 30 }).filter((s) => !s.includes('\0')));
const content = fc
  .tuple(fc.array(line, { maxLength: 8 }), fc.constantFrom('', '\n', '\n\n'))
  .map(([lines, tail]) => lines.join('\n') + tail);
const mode = fc.constantFrom('0644', '0600', '0640', '0755', '600', '0400');

describe('renderBootstrapScript', () => {
  let root: string | undefined;
  afterEach(() => {
    removeDir(root);
    root = undefined;
  });

  it('writes every file byte for byte with its mode, for arbitrary content (run by real bash)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(content, mode), { minLength: 1, maxLength: 4 }), (specs) => {
        const dir = makeTempDir('bootstrap-files');
        try {
          const files: RenderedFile[] = specs.map(([c, m], i) => ({ path: `/etc/app/sub${i}/file-${i}.conf`, content: c, mode: m, kind: 'test' }));
          const script = renderBootstrapScript({ description: 'file writer property', files });
          const r = runScriptInRoot(dir, script, { REALTIME_EDGE_ROOT: join(dir, 'root') });
          expect(r.stderr + r.stdout).not.toMatch(/FAILED/);
          expect(r.status).toBe(0);
          for (const file of files) {
            const written = join(dir, 'root', file.path);
            expect(readFileSync(written).equals(Buffer.from(file.content, 'utf8'))).toBe(true);
            expect((statSync(written).mode & 0o777).toString(8).padStart(4, '0')).toBe(file.mode.padStart(4, '0'));
          }
          // Nothing in the content was executed and no temp file was left behind.
          expect(existsSync(join(dir, 'pwned'))).toBe(false);
          for (const file of files) {
            const parent = join(dir, 'root', file.path, '..');
            expect(readdirSync(parent).filter((n) => n.startsWith('.realtime-edge'))).toEqual([]);
          }
        } finally {
          removeDir(dir);
        }
      }),
      { numRuns: 20 },
    );
  });

  it('logs timestamped steps to the console and the log file, and runs setup steps before files and steps after', () => {
    root = makeTempDir('bootstrap-steps');
    const script = renderBootstrapScript({
      description: 'ordering',
      setupSteps: [{ name: 'setup one', script: 'test ! -e "${REALTIME_EDGE_ROOT}/etc/x.conf"\necho setup-ran' }],
      files: [{ path: '/etc/x.conf', content: 'x=1\n', mode: '0644', kind: 'test' }],
      steps: [{ name: 'after files', script: 'local v\nv="$(cat "${REALTIME_EDGE_ROOT}/etc/x.conf")"\necho "after-files saw ${v}"' }],
    });
    expect(shellcheck(script)).toBe('');
    const r = runScriptInRoot(root, script, { REALTIME_EDGE_ROOT: join(root, 'r') });
    expect(r.status).toBe(0);
    const log = readFileSync(join(root, 'r', BOOTSTRAP_LOG_PATH), 'utf8');
    for (const text of [r.stdout + r.stderr, log]) {
      expect(text).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ realtime-edge: step 1\/2: setup one$/m);
      expect(text).toContain('setup-ran');
      expect(text).toContain('after-files saw x=1');
      expect(text).toMatch(/realtime-edge: bootstrap complete$/m);
    }
  });

  it('stops at the first failing command, names the step, and runs nothing after it', () => {
    root = makeTempDir('bootstrap-fail');
    const script = renderBootstrapScript({
      description: 'failure',
      steps: [
        { name: 'breaks', script: 'false\necho not-reached' },
        { name: 'never', script: 'echo never-ran' },
      ],
    });
    const r = runScriptInRoot(root, script, { REALTIME_EDGE_ROOT: join(root, 'r') });
    expect(r.status).not.toBe(0);
    const log = readFileSync(join(root, 'r', BOOTSTRAP_LOG_PATH), 'utf8');
    expect(log).toMatch(/FAILED in step 'breaks' \(exit 1, line \d+\)/);
    expect(log).not.toContain('not-reached');
    expect(log).not.toContain('never-ran');
  });

  it('runs only the steps named in REALTIME_EDGE_STEPS (none = files only)', () => {
    root = makeTempDir('bootstrap-select');
    const script = renderBootstrapScript({
      description: 'selection',
      steps: [1, 2, 3].map((n) => ({ name: `s${n}`, script: `echo ran-${n}` })),
      files: [{ path: '/f', content: 'f', mode: '0644', kind: 'test' }],
    });
    const none = runScriptInRoot(root, script, { REALTIME_EDGE_ROOT: join(root, 'a'), REALTIME_EDGE_STEPS: 'none' });
    expect(none.status).toBe(0);
    expect(none.stdout + none.stderr).not.toMatch(/ran-\d/);
    expect(readFileSync(join(root, 'a', 'f'), 'utf8')).toBe('f');
    const some = runScriptInRoot(root, script, { REALTIME_EDGE_ROOT: join(root, 'b'), REALTIME_EDGE_STEPS: '1,3' });
    expect(some.stdout + some.stderr).toMatch(/ran-1[\s\S]*ran-3/);
    expect(some.stdout + some.stderr).not.toContain('ran-2');
  });

  it('refuses bad input with the field, the value and what is allowed', () => {
    const file = { path: '/etc/a', content: 'a', mode: '0644', kind: 'k' };
    expect(() => renderBootstrapScript({ description: 'x', files: [{ ...file, path: 'etc/a' }] })).toThrow(/files\.0\.path = "etc\/a": expected an absolute path/);
    expect(() => renderBootstrapScript({ description: 'x', files: [{ ...file, path: '/etc/../a' }] })).toThrow(/without "\.\."/);
    expect(() => renderBootstrapScript({ description: 'x', files: [{ ...file, mode: '644x' }] })).toThrow(/files\.0\.mode = "644x": expected an octal mode/);
    expect(() => renderBootstrapScript({ description: 'x', files: [{ ...file, owner: 'Root;rm' }] })).toThrow(/files\.0\.owner = "Root;rm": expected "user" or "user:group"/);
    expect(() => renderBootstrapScript({ description: 'x', files: [{ ...file, content: 'a\0b' }] })).toThrow(/NUL/);
    expect(() => renderBootstrapScript({ description: 'x', files: [file, file] })).toThrow(/"\/etc\/a" is written twice/);
    expect(() => renderBootstrapScript({ description: 'two\nlines' })).toThrow(/description = "two\\nlines": expected a one-line description/);
  });
});

describe('renderPackageInstall', () => {
  it('renders shellcheck-clean dnf/apt branches and refuses odd package names', () => {
    const snippet = renderPackageInstall({ dnf: ['nodejs20'], dnfFallback: ['nodejs'], apt: ['nodejs', 'ca-certificates'] });
    const script = renderBootstrapScript({ description: 'packages', steps: [{ name: 'install', script: snippet }] });
    expect(shellcheck(script)).toBe('');
    expect(bashSyntaxError(script)).toBe('');
    expect(() => renderPackageInstall({ dnf: ['curl; rm -rf /'], apt: ['curl'] })).toThrow(/"curl; rm -rf \/" is not a valid package name/);
  });
});

/** A fake `aws` CLI: answers `ssm get-parameter --name N` from $FAKE_SSM/<N with / as _>, and
 * records every call. */
function installFakeAws(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(
    join(bin, 'aws'),
    [
      '#!/bin/bash',
      'echo "$*" >> "$FAKE_SSM/calls"',
      'name=""; decrypt=no',
      'while [[ $# -gt 0 ]]; do case $1 in --name) name=$2; shift;; --with-decryption) decrypt=yes;; esac; shift; done',
      '[[ $decrypt == yes ]] || { echo "missing --with-decryption" >&2; exit 2; }',
      'file="$FAKE_SSM/${name//\\//_}"',
      '[[ -f $file ]] || { echo "ParameterNotFound: $name" >&2; exit 254; }',
      // aws --output text prints the value and a newline.
      'cat "$file"; echo',
    ].join('\n'),
  );
  chmodSync(join(bin, 'aws'), 0o755);
  mkdirSync(join(dir, 'ssm'), { recursive: true });
  return bin;
}

const secretValue = fc.string({ unit: 'binary', minLength: 12, maxLength: 60 }).filter((s) => !/[\0\n\r]/.test(s));

describe('renderSsmSecretsEnvFileStep', () => {
  let dir: string | undefined;
  afterEach(() => {
    removeDir(dir);
    dir = undefined;
  });

  it('round-trips arbitrary secrets into a 0600 env file and never prints them (fake aws, real bash)', () => {
    fc.assert(
      fc.property(fc.array(secretValue, { minLength: 1, maxLength: 4 }), fc.boolean(), (values, yamlQuoted) => {
        const work = makeTempDir('ssm');
        try {
          const bin = installFakeAws(work);
          const secrets: SsmSecretEnvVar[] = values.map((_, i) => ({
            envVar: `SECRET_${i}`,
            parameterName: `/realtime-edge/test/secret-${i}`,
            encoding: yamlQuoted && i === 0 ? 'yaml-single-quoted' : 'raw',
          }));
          values.forEach((v, i) => writeFileSync(join(work, 'ssm', `_realtime-edge_test_secret-${i}`), v));
          const script = renderBootstrapScript({
            description: 'secrets',
            steps: [renderSsmSecretsEnvFileStep({ envFile: '/etc/realtime-edge/test.env', region: 'eu-west-1', secrets })],
          });
          expect(values.some((v) => script.includes(v))).toBe(false);
          const r = runScriptInRoot(work, script, { REALTIME_EDGE_ROOT: join(work, 'root'), PATH: `${bin}:${process.env.PATH}`, FAKE_SSM: join(work, 'ssm') });
          expect(r.status).toBe(0);
          const envFile = join(work, 'root/etc/realtime-edge/test.env');
          expect(statSync(envFile).mode & 0o777).toBe(0o600);
          expect(statSync(join(work, 'root/etc/realtime-edge')).mode & 0o777).toBe(0o700);
          // Read back the way a service gets it: sourced, each value printed NUL-terminated.
          const read = runBash(['-c', `set -a; . "$1"; printf '%s\\0' ${secrets.map((s) => `"$${s.envVar}"`).join(' ')}`, 'read', envFile]);
          const expected = values.map((v, i) => (secrets[i].encoding === 'yaml-single-quoted' ? v.replace(/'/g, "''") : v));
          expect(read.stdout.split('\0').slice(0, -1)).toEqual(expected.map((v) => Buffer.from(v, 'utf8').toString('utf8')));
          const log = readFileSync(join(work, 'root', BOOTSTRAP_LOG_PATH), 'utf8');
          for (const v of values) {
            const shown = Buffer.from(v, 'utf8').toString('utf8');
            expect(r.stdout.includes(shown) || r.stderr.includes(shown) || log.includes(shown)).toBe(false);
          }
          expect(readFileSync(join(work, 'ssm', 'calls'), 'utf8')).toContain('--region eu-west-1');
        } finally {
          removeDir(work);
        }
      }),
      { numRuns: 10 },
    );
  });

  it('fails closed: an unreadable parameter or a value with a line break leaves no env file', () => {
    dir = makeTempDir('ssm-fail');
    const bin = installFakeAws(dir);
    writeFileSync(join(dir, 'ssm', '_ok'), 'fine-value-123');
    writeFileSync(join(dir, 'ssm', '_multiline'), 'line1-secret\nline2-secret');
    for (const missing of ['/missing', '/multiline']) {
      const script = renderBootstrapScript({
        description: 'secrets failure',
        steps: [
          renderSsmSecretsEnvFileStep({
            envFile: '/etc/realtime-edge/test.env',
            region: 'us-east-1',
            secrets: [
              { envVar: 'OK', parameterName: '/ok' },
              { envVar: 'BAD', parameterName: missing },
            ],
          }),
        ],
      });
      const root = join(dir, `root${missing.replace('/', '-')}`);
      const r = runScriptInRoot(dir, script, { REALTIME_EDGE_ROOT: root, PATH: `${bin}:${process.env.PATH}`, FAKE_SSM: join(dir, 'ssm'), REALTIME_EDGE_SSM_ATTEMPTS: '2' });
      expect(r.status).not.toBe(0);
      expect(existsSync(join(root, 'etc/realtime-edge/test.env'))).toBe(false);
      const output = r.stdout + r.stderr;
      expect(output).not.toContain('fine-value-123');
      expect(output).not.toContain('line2-secret');
      expect(output).toMatch(missing === '/missing' ? /cannot read SSM parameter \/missing in us-east-1 after 2 attempts/ : /the value for BAD contains a line break/);
    }
  });

  it('renders shellcheck-clean bash with and without a fixed region, and validates its input', () => {
    for (const region of ['eu-central-1', undefined]) {
      const step = renderSsmSecretsEnvFileStep({ envFile: '/etc/realtime-edge/a.env', region, secrets: [{ envVar: 'A', parameterName: '/a' }] });
      const script = renderBootstrapScript({ description: 'lint', steps: [step] });
      expect(shellcheck(script)).toBe('');
      expect(script.includes('169.254.169.254/latest/api/token')).toBe(region === undefined);
    }
    expect(() => renderSsmSecretsEnvFileStep({ envFile: '/e', region: 'mars-1', secrets: [{ envVar: 'A', parameterName: '/a' }] })).toThrow(/region = "mars-1": expected an AWS region/);
    expect(() => renderSsmSecretsEnvFileStep({ envFile: '/e', secrets: [{ envVar: 'A', parameterName: "/a'b" }] })).toThrow(/secrets\.0\.parameterName = "\/a'b": expected an SSM parameter name/);
    expect(() => renderSsmSecretsEnvFileStep({ envFile: '/e', secrets: [{ envVar: 'A B', parameterName: '/a' }] })).toThrow(/secrets\.0\.envVar: "A B" is not a valid shell variable name/);
  });
});

/**
 * Test helpers around a real nginx binary: `nginx -t` on rendered text, a throw-away prefix with
 * logs, temp dirs, the 50x page and a self-signed certificate, a running nginx for request tests,
 * and a small parser for checks `nginx -t` cannot make.
 *
 * The binary is `nginx` on PATH unless `nginxBinary` (or the NGINX_BINARY environment variable)
 * names another one, e.g. the freshly built nginx of the build test.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pickFreePort } from '../../local/ports';
import { makeSelfSignedCertificate, type CertificateFiles } from '../../local/tls';
import { ERROR_PAGE_FILE, renderErrorPage } from '../../nginx/conf';
import type { NginxPaths } from '../../nginx/spec';

export function defaultNginxBinary(): string {
  return process.env.NGINX_BINARY || 'nginx';
}

interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(binary: string, args: readonly string[]): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(new Error(`cannot run ${binary} ${args.join(' ')}: ${error.message}`));
        return;
      }
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// A throw-away prefix
// ---------------------------------------------------------------------------------------------

export interface NginxTestPrefix {
  /** The prefix directory (`nginx -p`), world-traversable so workers running as `nobody` can read it. */
  readonly dir: string;
  /** `NginxSpec.paths` inside the prefix; the 50x page is already written. */
  readonly paths: NginxPaths;
  /** A self-signed certificate for localhost / 127.0.0.1 / ::1. */
  readonly tls: CertificateFiles;
  /** Removes the directory. */
  cleanup(): void;
}

/** Creates a temp prefix with logs/, tmp/, html/50x.html and tls/server.{crt,key}. */
export function makeNginxPrefix(label = 'nginx'): NginxTestPrefix {
  const dir = mkdtempSync(path.join(os.tmpdir(), `realtime-edge-${label}-`));
  chmodSync(dir, 0o755);
  for (const sub of ['logs', 'tmp', 'html']) mkdirSync(path.join(dir, sub), { mode: 0o755 });
  writeFileSync(path.join(dir, 'html', ERROR_PAGE_FILE), renderErrorPage(), { mode: 0o644 });
  const tls = makeSelfSignedCertificate(path.join(dir, 'tls'), { commonName: 'localhost', altNames: ['localhost', '127.0.0.1', '::1'] });
  chmodSync(path.join(dir, 'tls'), 0o755);
  return {
    dir,
    paths: {
      pidFile: path.join(dir, 'logs', 'nginx.pid'),
      errorLog: path.join(dir, 'logs', 'error.log'),
      accessLog: path.join(dir, 'logs', 'access.log'),
      errorPageRoot: path.join(dir, 'html'),
      tempDir: path.join(dir, 'tmp'),
    },
    tls,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------
// nginx -t
// ---------------------------------------------------------------------------------------------

interface NginxBuildInfo {
  streamDynamic: boolean;
  modulesPath: string | null;
}

const buildInfoCache = new Map<string, Promise<NginxBuildInfo>>();

/** What `nginx -V` says about the stream module. */
function nginxBuildInfo(binary: string): Promise<NginxBuildInfo> {
  let info = buildInfoCache.get(binary);
  if (!info) {
    info = run(binary, ['-V']).then(({ stdout, stderr }) => {
      const text = stdout + stderr;
      return {
        streamDynamic: /--with-stream=dynamic\b/.test(text),
        modulesPath: /--modules-path=(\S+)/.exec(text)?.[1] ?? null,
      };
    });
    buildInfoCache.set(binary, info);
  }
  return info;
}

/** Prepends `load_module` when the text has a stream block, loads no stream module, and `binary`
 * has the stream module as a dynamic module (Debian). Production configs for a `--with-stream`
 * build carry no load_module; this lets the system nginx test them. */
async function withStreamModule(confText: string, binary: string): Promise<string> {
  const usesStream = parseNginxConf(confText).some((d) => d.name === 'stream');
  if (!usesStream || /^\s*load_module\s+\S*ngx_stream_module\.so\s*;/m.test(confText)) return confText;
  const info = await nginxBuildInfo(binary);
  if (!info.streamDynamic) return confText;
  const modulesPath = info.modulesPath ?? '/usr/lib/nginx/modules';
  return `load_module ${modulesPath}/ngx_stream_module.so;\n${confText}`;
}

const RELOCATED_DIRECTIVES =
  /^(\s*)(pid|error_log|access_log|ssl_certificate|ssl_certificate_key|client_body_temp_path|proxy_temp_path|fastcgi_temp_path|uwsgi_temp_path|scgi_temp_path|root|include)(\s+)(\/[^\s;]+)/gm;

function databaseEntry(file: '/etc/passwd' | '/etc/group', by: (fields: string[]) => boolean): string[] | undefined {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .find(by);
}

/** `user X;` also needs a group X; when either is missing here, nobody and its primary group. */
function localUserDirective(user: string): string | null {
  if (databaseEntry('/etc/passwd', (f) => f[0] === user) && databaseEntry('/etc/group', (f) => f[0] === user)) return null;
  const nobody = databaseEntry('/etc/passwd', (f) => f[0] === 'nobody');
  const group = nobody && databaseEntry('/etc/group', (f) => f[2] === nobody[3]);
  return group ? `user nobody ${group[0]};` : 'user nobody;';
}

/**
 * Moves every absolute file path of a production config (logs, pid, certificates, temp dirs, the
 * error page root, includes) under `<prefix>/relocated/`, creating what nginx expects there: a
 * self-signed pair at each certificate/key path, a copy (or an empty file) for includes. A `user`
 * (or its same-named group) missing on this machine becomes `nobody` when running as root.
 */
function relocatePaths(confText: string, prefix: string): string {
  const base = path.join(prefix, 'relocated');
  let pair: CertificateFiles | null = null;
  const relocated = confText.replace(RELOCATED_DIRECTIVES, (_match, indent: string, directive: string, space: string, original: string) => {
    const target = path.join(base, original);
    mkdirSync(path.dirname(target), { recursive: true, mode: 0o755 });
    if (directive === 'ssl_certificate' || directive === 'ssl_certificate_key') {
      pair ??= makeSelfSignedCertificate(path.join(prefix, 'relocated-tls'), { commonName: 'localhost', altNames: ['localhost', '127.0.0.1'] });
      if (!existsSync(target)) copyFileSync(directive === 'ssl_certificate' ? pair.certificatePath : pair.keyPath, target);
    } else if (directive === 'root') {
      mkdirSync(target, { recursive: true, mode: 0o755 });
    } else if (directive === 'include' && !existsSync(target)) {
      if (existsSync(original)) copyFileSync(original, target);
      else writeFileSync(target, `# stands in for ${original}\n`);
    }
    return `${indent}${directive}${space}${target}`;
  });
  const isRoot = runningAsRoot();
  return relocated.replace(/^(\s*)user\s+([^\s;]+)\s*;/m, (line, indent: string, user: string) => {
    const replacement = isRoot ? localUserDirective(user) : null;
    return replacement ? `${indent}${replacement}` : line;
  });
}

function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** `nginx -t` binds the listeners (it only tolerates "address in use"), so an unprivileged run
 * cannot test ports below 1024: they move up by 20000. */
function movePrivilegedPorts(confText: string): string {
  return confText.replace(/^(\s*listen\s+(?:\S*:)?)(\d+)(?=[\s;])/gm, (match, head: string, port: string) =>
    Number(port) < 1024 ? `${head}${Number(port) + 20000}` : match,
  );
}

export interface NginxCheckOptions {
  nginxBinary?: string;
  /** nginx prefix (`-p`) where the config is written; default a fresh temp dir, removed afterwards. */
  prefix?: string;
  /** Add `load_module` for a dynamic stream module when needed (see above); default true. */
  addStreamModule?: boolean;
  /** Relocate a production config's absolute paths into the prefix (see above); default false. */
  relocatePaths?: boolean;
  /** Move listen ports below 1024 up by 20000; default: when not running as root. */
  movePrivilegedPorts?: boolean;
}

export interface NginxCheckResult {
  readonly ok: boolean;
  /** nginx's own output (stderr and stdout). */
  readonly output: string;
  /** nginx's `[warn]` lines (a clean config has none). */
  readonly warnings: readonly string[];
  /** The text nginx tested (after the optional adjustments). */
  readonly testedText: string;
}

/** Runs the real `nginx -t` on `confText`. */
export async function checkNginxConf(confText: string, options: NginxCheckOptions = {}): Promise<NginxCheckResult> {
  const binary = options.nginxBinary ?? defaultNginxBinary();
  const ownPrefix = options.prefix === undefined;
  const prefix = options.prefix ?? mkdtempSync(path.join(os.tmpdir(), 'realtime-edge-nginx-t-'));
  // A binary built with a relative error log (e.g. --prefix builds) opens <prefix>/logs/error.log
  // before it reads the config.
  mkdirSync(path.join(prefix, 'logs'), { recursive: true });
  try {
    let text = options.addStreamModule === false ? confText : await withStreamModule(confText, binary);
    if (options.relocatePaths) text = relocatePaths(text, prefix);
    if (options.movePrivilegedPorts ?? !runningAsRoot()) text = movePrivilegedPorts(text);
    const confPath = path.join(prefix, `nginx-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.conf`);
    writeFileSync(confPath, text);
    const result = await run(binary, ['-t', '-p', prefix, '-c', confPath]);
    if (!ownPrefix) rmSync(confPath, { force: true });
    const output = `${result.stderr}${result.stdout}`.trim();
    const warnings = output.split('\n').filter((line) => line.includes('[warn]'));
    return { ok: result.code === 0, output, warnings, testedText: text };
  } finally {
    if (ownPrefix) rmSync(prefix, { recursive: true, force: true });
  }
}

function numbered(text: string): string {
  return text
    .split('\n')
    .map((line, index) => `${String(index + 1).padStart(4)}  ${line}`)
    .join('\n');
}

/** `checkNginxConf`, throwing nginx's message and the numbered config when nginx rejects it. */
export async function expectValidNginxConf(confText: string, options: NginxCheckOptions = {}): Promise<void> {
  const result = await checkNginxConf(confText, options);
  if (!result.ok) throw new Error(`nginx -t rejected the config:\n${result.output}\n\n${numbered(result.testedText)}`);
}

// ---------------------------------------------------------------------------------------------
// A running nginx
// ---------------------------------------------------------------------------------------------

export interface RunningNginx {
  readonly pid: number;
  readonly confPath: string;
  /** Stops nginx (fast shutdown; kills its process group if it does not exit). Idempotent. */
  stop(): Promise<void>;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts nginx in the foreground on `confText` (written into `prefix`) and resolves once its
 * listening sockets exist (the master writes the pid file after binding them). The config must
 * have a `pid` directive. Call `stop()` in afterAll/finally.
 */
export async function startNginx(
  confText: string,
  options: { prefix: string; nginxBinary?: string; addStreamModule?: boolean },
): Promise<RunningNginx> {
  const binary = options.nginxBinary ?? defaultNginxBinary();
  const text = options.addStreamModule === false ? confText : await withStreamModule(confText, binary);
  const pidDirective = parseNginxConf(text).find((d) => d.name === 'pid');
  if (!pidDirective) throw new Error('startNginx: the config has no pid directive');
  const pidFile = pidDirective.args[0];
  const confPath = path.join(options.prefix, 'nginx.conf');
  writeFileSync(confPath, text);
  const child = spawn(binary, ['-p', options.prefix, '-c', confPath, '-g', 'daemon off;'], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const stop = async (): Promise<void> => {
    if (exited(child) || child.pid === undefined) return;
    child.kill('SIGTERM');
    if (await waitForExit(child, 5000)) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await waitForExit(child, 5000);
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited(child)) throw new Error(`nginx exited with ${child.exitCode ?? child.signalCode}:\n${stderr}\n\n${numbered(text)}`);
    if (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() === String(child.pid)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not write ${pidFile} within 10 s:\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { pid: child.pid as number, confPath, stop };
}

/** A TCP port free on 127.0.0.1 right now (outside the ephemeral range; see pickFreePort). */
export function freePort(): Promise<number> {
  return pickFreePort();
}

/** `count` distinct free ports. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

// ---------------------------------------------------------------------------------------------
// A small nginx config parser (for assertions on structure nginx -t does not judge)
// ---------------------------------------------------------------------------------------------

export interface NginxDirective {
  readonly name: string;
  readonly args: readonly string[];
  /** Present for block directives (`http { ... }`). */
  readonly children?: readonly NginxDirective[];
}

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i += 1;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i += 1;
    } else if (c === '{' || c === '}' || c === ';') {
      tokens.push(c);
      i += 1;
    } else if (c === '"' || c === "'") {
      let value = '';
      i += 1;
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\\' && i + 1 < text.length) i += 1;
        value += text[i];
        i += 1;
      }
      if (i >= text.length) throw new Error('parseNginxConf: unterminated quote');
      i += 1;
      tokens.push(`\u0000${value}`);
    } else {
      let value = '';
      while (i < text.length && !/[\s{};]/.test(text[i])) {
        value += text[i];
        i += 1;
      }
      tokens.push(value);
    }
  }
  return tokens;
}

/** Parses nginx config text into directives. Quoted arguments lose their quotes. */
export function parseNginxConf(text: string): NginxDirective[] {
  const tokens = tokenize(text);
  let at = 0;
  const unquote = (token: string) => (token.startsWith('\u0000') ? token.slice(1) : token);
  const parseBlock = (nested: boolean): NginxDirective[] => {
    const directives: NginxDirective[] = [];
    while (at < tokens.length) {
      if (tokens[at] === '}') {
        if (!nested) throw new Error('parseNginxConf: unexpected "}"');
        at += 1;
        return directives;
      }
      const name = unquote(tokens[at]);
      at += 1;
      const args: string[] = [];
      while (at < tokens.length && tokens[at] !== ';' && tokens[at] !== '{' && tokens[at] !== '}') {
        args.push(unquote(tokens[at]));
        at += 1;
      }
      if (tokens[at] === ';') {
        at += 1;
        directives.push({ name, args });
      } else if (tokens[at] === '{') {
        at += 1;
        directives.push({ name, args, children: parseBlock(true) });
      } else {
        throw new Error(`parseNginxConf: directive "${name}" is not terminated`);
      }
    }
    if (nested) throw new Error('parseNginxConf: missing "}"');
    return directives;
  };
  return parseBlock(false);
}

/** Every directive named `name` at any depth, with its chain of enclosing blocks. */
export function findDirectives(
  tree: readonly NginxDirective[],
  name: string,
  parents: readonly NginxDirective[] = [],
): Array<{ directive: NginxDirective; parents: readonly NginxDirective[] }> {
  const found: Array<{ directive: NginxDirective; parents: readonly NginxDirective[] }> = [];
  for (const directive of tree) {
    if (directive.name === name) found.push({ directive, parents });
    if (directive.children) found.push(...findDirectives(directive.children, name, [...parents, directive]));
  }
  return found;
}

/** The arguments of the first direct child directive `name` of `block`, or undefined. */
export function childArgs(block: NginxDirective, name: string): readonly string[] | undefined {
  return block.children?.find((d) => d.name === name)?.args;
}

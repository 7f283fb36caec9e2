/**
 * Where nginx's memory per idle connection goes: a heap profile of one nginx process (valgrind
 * massif) before and after a number of idle, logged-in clients connect through one listener, each
 * allocation site's growth divided by the connections. The memory probe (capacity.ts) says how much
 * each mode costs; this says which allocations make it up, which of them a directive sizes, and
 * which nginx (or OpenSSL) allocates for every proxied connection whatever the configuration.
 *
 * It needs an nginx with symbols: the one the build script compiles (nginx builds with -g and the
 * script does not strip), not Debian's stripped binary. The process runs with `master_process off`
 * so that valgrind's gdbserver can be asked for snapshots (vgdb finds no gdbserver in a worker that
 * forked and switched user); the allocations of a connection are the same in either mode.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NginxSpec } from '../nginx/spec';
import { shellQuote } from '../servers/shell';
import { startNginx, type NginxHandle } from '../local/nginx-process';
import type { ClientWorker } from './client-pool';
import type { HeapProfile, HeapSite } from './results';
import { spread } from './stats';

/** One node of a massif heap tree: bytes allocated under a stack frame. */
export interface MassifNode {
  readonly bytes: number;
  /** The frame text massif printed: `0x14F51E: ngx_alloc (ngx_alloc.c:22)`, or the root's and the
   * `in N places, all below massif's threshold` summaries. */
  readonly frame: string;
  readonly children: readonly MassifNode[];
}

export interface MassifSnapshot {
  readonly heapBytes: number;
  /** malloc's own bookkeeping and rounding (massif's mem_heap_extra_B). */
  readonly extraBytes: number;
  readonly tree: MassifNode;
}

/** Parses one detailed snapshot, as massif writes it (a `detailed_snapshot` monitor command's file,
 * or the first detailed snapshot of a massif.out file). */
export function parseMassifSnapshot(text: string): MassifSnapshot {
  const lines = text.split('\n');
  const number = (key: string): number => {
    const line = lines.find((entry) => entry.startsWith(`${key}=`));
    if (line === undefined) throw new Error(`massif snapshot: no ${key}= line`);
    return Number(line.slice(key.length + 1));
  };
  const start = lines.findIndex((line) => line.startsWith('heap_tree=detailed'));
  if (start < 0) throw new Error('massif snapshot: no detailed heap tree (heap_tree=detailed)');
  let index = start + 1;
  const parseNode = (): MassifNode => {
    const line = lines[index++] ?? '';
    const match = /^( *)n(\d+): (\d+) (.*)$/.exec(line);
    if (!match) throw new Error(`massif snapshot: unexpected tree line ${JSON.stringify(line)}`);
    const children: MassifNode[] = [];
    for (let child = 0; child < Number(match[2]); child += 1) children.push(parseNode());
    return { bytes: Number(match[3]), frame: match[4]!, children };
  };
  return { heapBytes: number('mem_heap_B'), extraBytes: number('mem_heap_extra_B'), tree: parseNode() };
}

interface Frame {
  /** Function name; `???` where the object has no symbol for it. */
  readonly fn: string;
  /** `file.c:line` for code with debug information, `in /path/lib.so` otherwise. */
  readonly where: string;
}

function parseFrame(frame: string): Frame | null {
  const match = /^0x[0-9A-Fa-f]+: (\S+)(?: \((.*)\))?$/.exec(frame);
  return match ? { fn: match[1]!, where: match[2] ?? '' } : null;
}

/** Functions that only pass an allocation on: the site is the first frame under them that is none
 * of these. ngx_create_pool and ngx_palloc_block are kept apart by `allocation`, since what they
 * allocate is a whole pool block sized by a directive, not the object that asked for it. */
const ALLOCATOR_WRAPPERS = new Set([
  'ngx_alloc',
  'ngx_calloc',
  'ngx_memalign',
  'ngx_palloc',
  'ngx_pnalloc',
  'ngx_pcalloc',
  'ngx_palloc_small',
  'ngx_palloc_large',
  'ngx_palloc_block',
  'ngx_create_pool',
  'ngx_create_temp_buf',
  'ngx_list_init',
  'ngx_list_create',
  'ngx_list_push',
  'ngx_array_init',
  'ngx_array_create',
  'ngx_array_push',
  'ngx_array_push_n',
  'CRYPTO_malloc',
  'CRYPTO_zalloc',
  'CRYPTO_realloc',
  'CRYPTO_clear_realloc',
  'CRYPTO_memdup',
  'CRYPTO_strdup',
  'CRYPTO_strndup',
  '???',
]);

/** Sites whose size a directive sets, by the function that allocates and how. */
const DIRECTIVE_OF_SITE: ReadonlyArray<{ readonly fn: string; readonly allocation: HeapSite['allocation']; readonly directive: string }> = [
  { fn: 'ngx_http_wait_request_handler', allocation: 'object', directive: 'client_header_buffer_size' },
  { fn: 'ngx_http_upstream_process_header', allocation: 'object', directive: 'proxy_buffer_size' },
  { fn: 'ngx_http_upstream_process_upgraded', allocation: 'object', directive: 'proxy_buffer_size' },
  { fn: 'ngx_ssl_send_chain', allocation: 'object', directive: 'ssl_buffer_size' },
  { fn: 'ngx_http_alloc_request', allocation: 'new pool', directive: 'request_pool_size' },
  { fn: 'ngx_event_accept', allocation: 'new pool', directive: 'connection_pool_size' },
];

/** One site in one way of allocating: what bytesBySite sums under and perConnectionSites matches on. */
function siteKey(site: Pick<HeapSite, 'site' | 'allocation'>): string {
  return `${site.allocation}\0${site.site}`;
}

/** GCC's clones (ngx_ssl_handshake.part.0) are the function they were cut from. */
function unclonedName(fn: string): string {
  return fn.replace(/\.(part|isra|constprop|cold)\.\d+$/, '');
}

/** Bytes by allocation site: the first frame of each stack that is not an allocator wrapper, with
 * how it was allocated (an object of its own, a new pool, or a new block of a pool). A site in a
 * library without symbols (OpenSSL) is named by its first named frame and the nginx function that
 * called into the library. */
export function bytesBySite(tree: MassifNode): HeapSite[] {
  const sites = new Map<string, HeapSite>();
  const add = (site: string, allocation: HeapSite['allocation'], bytes: number, directive: string | null, library: string | null = null): void => {
    const key = siteKey({ site, allocation });
    const previous = sites.get(key);
    sites.set(key, { site, allocation, bytes: (previous?.bytes ?? 0) + bytes, directive, library });
  };
  /** The first nginx function down the largest branch: who called into a library. */
  const nginxCaller = (node: MassifNode | undefined): string | null => {
    for (let current = node; current; current = [...current.children].sort((a, b) => b.bytes - a.bytes)[0]) {
      const frame = parseFrame(current.frame);
      if (frame && frame.fn.startsWith('ngx_')) return unclonedName(frame.fn);
    }
    return null;
  };
  /** `via` is the library whose unnamed frames the allocation passed through on its way up. */
  const walk = (node: MassifNode, allocation: HeapSite['allocation'], via: string | null): void => {
    const frame = parseFrame(node.frame);
    if (frame === null) {
      // The root, or a summary of sites below massif's threshold.
      if (node.children.length === 0) add('smaller sites (below the profile threshold)', allocation, node.bytes, null, via);
      for (const child of node.children) walk(child, allocation, via);
      return;
    }
    const library = frame.where.startsWith('in ') ? path.basename(frame.where.slice(3)).replace(/\.so.*$/, '') : null;
    if (ALLOCATOR_WRAPPERS.has(frame.fn)) {
      const next = frame.fn === 'ngx_create_pool' ? 'new pool' : frame.fn === 'ngx_palloc_block' ? 'pool block' : allocation;
      const own = node.bytes - node.children.reduce((total, child) => total + child.bytes, 0);
      if (own > 0) add(`${frame.fn} (callers beyond the profile depth)`, next, own, null, library ?? via);
      for (const child of node.children) walk(child, next, library ?? via);
      return;
    }
    const fn = unclonedName(frame.fn);
    const caller = library !== null ? nginxCaller(node.children[0]) : null;
    const located = `${fn}${frame.where && library === null ? ` (${frame.where})` : ''}`;
    const site =
      library !== null
        ? `${library}: ${fn}${caller ? ` (from ${caller})` : ''}`
        : via !== null
          ? `${via}: functions without symbols (from ${located})`
          : located;
    const directive = DIRECTIVE_OF_SITE.find((entry) => entry.fn === fn && entry.allocation === allocation)?.directive ?? null;
    add(site, allocation, node.bytes, directive, library ?? via);
  };
  walk(tree, 'object', null);
  return [...sites.values()];
}

/** Growth of each site between two snapshots, per connection, largest first; sites that shrank or
 * grew by less than `minBytesPerConnection` are left out (they are not per-connection state). */
export function perConnectionSites(
  before: MassifSnapshot,
  after: MassifSnapshot,
  connections: number,
  minBytesPerConnection = 8,
): HeapSite[] {
  const base = new Map(bytesBySite(before.tree).map((site) => [siteKey(site), site.bytes]));
  return bytesBySite(after.tree)
    .map((site) => ({ ...site, bytes: Math.round((site.bytes - (base.get(siteKey(site)) ?? 0)) / connections) }))
    .filter((site) => site.bytes >= minBytesPerConnection)
    .sort((a, b) => b.bytes - a.bytes);
}

/** Per-connection totals of a profile: the whole heap growth, what directives size, the rest. */
export function summarizeHeapProfile(
  before: MassifSnapshot,
  after: MassifSnapshot,
  connections: number,
): Pick<HeapProfile, 'heapBytesPerConnection' | 'mallocOverheadBytesPerConnection' | 'sites'> {
  return {
    heapBytesPerConnection: Math.round((after.heapBytes - before.heapBytes) / connections),
    mallocOverheadBytesPerConnection: Math.round((after.extraBytes - before.extraBytes) / connections),
    sites: perConnectionSites(before, after, connections),
  };
}

function vgdb(pid: number, command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('vgdb', [`--pid=${pid}`, ...command.split(' ')], { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`vgdb ${command}: ${error.message} ${stdout}${stderr}`.trim()));
      else resolve();
    });
  });
}

async function snapshot(pid: number, file: string): Promise<MassifSnapshot> {
  await vgdb(pid, `detailed_snapshot ${file}`);
  return parseMassifSnapshot(fs.readFileSync(file, 'utf8'));
}

/** Opens and closes the idle connections a profile measures (the bench's deepstream client
 * processes, or a test's plain WebSocket clients). */
export interface IdleClients {
  open(url: string, count: number): Promise<{ readonly opened: number; readonly failed: number; readonly firstError?: string }>;
  closeAll(): Promise<void>;
}

export interface HeapProfilePlan {
  /** An nginx with symbols (the build script's). */
  readonly nginxBinary: string;
  readonly nginxVersion: string;
  readonly listeners: ReadonlyArray<{
    readonly name: string;
    readonly description: string;
    /** Folder of this nginx; `spec.paths` point inside it. */
    readonly dir: string;
    readonly spec: NginxSpec;
    readonly url: string;
  }>;
  readonly connections: number;
  readonly settleMs: number;
  readonly clients: IdleClients;
  readonly log: (line: string) => void;
}

/** The bench's client processes as IdleClients: logged-in, idle deepstream clients, spread over the
 * processes, each from its own 127.0.<subnet>.x source address. */
export function idleDeepstreamClients(workers: readonly ClientWorker[], ca: string, subnet: number): IdleClients {
  return {
    open: async (url, count) => {
      const perWorker = spread(count, workers.length);
      const replies = await Promise.all(
        workers.map((worker, index) =>
          worker.connect({
            url,
            count: perWorker[index]!,
            ca,
            localAddress: `127.0.${subnet}.${index + 1}`,
            // valgrind runs nginx many times slower: fewer handshakes at once, more time for each.
            concurrency: 8,
            loginTimeoutMs: 60_000,
            kind: 'idle',
          }),
        ),
      );
      const firstError = replies.flatMap((reply) => reply.errors)[0];
      return {
        opened: replies.reduce((total, reply) => total + reply.opened, 0),
        failed: replies.reduce((total, reply) => total + reply.failed, 0),
        ...(firstError !== undefined ? { firstError } : {}),
      };
    },
    closeAll: async () => {
      await Promise.all(workers.map((worker) => worker.closeAll()));
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs nginx under massif through a wrapper, so startNginx (config test, readiness, stop) stays the
 * same as for every other nginx of the benchmark; the wrapper adds `master_process off`. */
function writeMassifWrapper(dir: string, binary: string): string {
  const heapDir = path.join(dir, 'heap');
  fs.mkdirSync(heapDir, { recursive: true, mode: 0o777 });
  const wrapper = path.join(dir, 'nginx-under-massif.sh');
  fs.writeFileSync(
    wrapper,
    [
      '#!/usr/bin/env bash',
      '# nginx under valgrind massif, single process; written by bench/heap-profile.ts.',
      'args=()',
      'for arg in "$@"; do',
      '  if [ "$arg" = "daemon off;" ]; then args+=("daemon off; master_process off;"); else args+=("$arg"); fi',
      'done',
      `exec valgrind --tool=massif --threshold=0.05 --depth=30 ${shellQuote(`--massif-out-file=${heapDir}/massif.%p.out`)} ${shellQuote(binary)} "\${args[@]}"`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return wrapper;
}

export async function profileNginxHeap(plan: HeapProfilePlan): Promise<HeapProfile[]> {
  const profiles: HeapProfile[] = [];
  for (const listener of plan.listeners) {
    fs.mkdirSync(listener.dir, { recursive: true, mode: 0o755 });
    const wrapper = writeMassifWrapper(listener.dir, plan.nginxBinary);
    let nginx: NginxHandle | undefined;
    try {
      nginx = await startNginx({ dir: listener.dir, spec: listener.spec, binary: wrapper });
      await sleep(plan.settleMs);
      const heapDir = path.join(listener.dir, 'heap');
      const before = await snapshot(nginx.masterPid, path.join(heapDir, 'before.out'));
      const { opened, failed, firstError } = await plan.clients.open(listener.url, plan.connections);
      if (opened === 0) throw new Error(`no client connected through ${listener.name}: ${firstError ?? 'no error text'}`);
      await sleep(plan.settleMs);
      const after = await snapshot(nginx.masterPid, path.join(heapDir, 'after.out'));
      const summary = summarizeHeapProfile(before, after, opened);
      profiles.push({
        path: listener.name,
        description: listener.description,
        nginx: plan.nginxVersion,
        connections: opened,
        failed,
        ...summary,
      });
      plan.log(
        `  heap profile of ${listener.name}: ${(summary.heapBytesPerConnection / 1024).toFixed(1)} KB per connection on the heap ` +
          `(${opened} connections${failed > 0 ? `, ${failed} failed` : ''}); largest: ${summary.sites
            .slice(0, 3)
            .map((site) => `${site.site} ${site.bytes} B`)
            .join(', ')}`,
      );
    } finally {
      await plan.clients.closeAll();
      await nginx?.stop();
    }
  }
  return profiles;
}

export interface HeapBreakdown {
  /** Objects nginx allocates for every proxied connection whatever the configuration. */
  readonly nginxObjects: number;
  /** Pools and pool blocks (their block size is request_pool_size / connection_pool_size). */
  readonly pools: number;
  /** Buffers whose size a directive sets, by directive. */
  readonly buffers: ReadonlyMap<string, number>;
  /** Allocated inside libraries (OpenSSL). */
  readonly libraries: number;
}

/** A heap profile's per-connection bytes in the four kinds the report and the verdicts name. */
export function heapBreakdown(profile: Pick<HeapProfile, 'sites'>): HeapBreakdown {
  let nginxObjects = 0;
  let pools = 0;
  let libraries = 0;
  const buffers = new Map<string, number>();
  for (const site of profile.sites) {
    if (site.library !== null) libraries += site.bytes;
    else if (site.allocation !== 'object') pools += site.bytes;
    else if (site.directive !== null) buffers.set(site.directive, (buffers.get(site.directive) ?? 0) + site.bytes);
    else nginxObjects += site.bytes;
  }
  return { nginxObjects, pools, buffers, libraries };
}

const kilobytes = (bytes: number): string => (bytes / 1024).toFixed(1);

/** One sentence per profile: what its memory per connection is made of. */
export function describeHeapProfile(profile: HeapProfile): string {
  const breakdown = heapBreakdown(profile);
  const buffers = [...breakdown.buffers].map(([directive, bytes]) => `${directive} ${kilobytes(bytes)}`).join(', ');
  const largestObjects = profile.sites
    .filter((site) => site.library === null && site.allocation === 'object' && site.directive === null)
    .slice(0, 3)
    .map((site) => `${site.site} ${site.bytes} B`)
    .join(', ');
  const largestLibrary = profile.sites
    .filter((site) => site.library !== null)
    .slice(0, 2)
    .map((site) => `${site.site.replace(/ \(from .*$/, '')} ${site.bytes} B`)
    .join(', ');
  return (
    `${kilobytes(profile.heapBytesPerConnection)} KB per connection on the heap (+${kilobytes(profile.mallocOverheadBytesPerConnection)} KB malloc overhead): ` +
    `${kilobytes(breakdown.nginxObjects)} KB objects nginx allocates for every proxied connection whatever the configuration (${largestObjects}), ` +
    `${kilobytes(breakdown.pools)} KB pool space (blocks of request_pool_size and connection_pool_size), ` +
    `${kilobytes([...breakdown.buffers.values()].reduce((total, bytes) => total + bytes, 0))} KB buffers sized by directives (${buffers})` +
    (breakdown.libraries > 0 ? `, ${kilobytes(breakdown.libraries)} KB allocated inside OpenSSL (${largestLibrary})` : '')
  );
}

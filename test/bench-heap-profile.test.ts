/**
 * The heap profile's reading of massif snapshots (bench/heap-profile.ts): the tree parser, the
 * attribution of bytes to allocation sites past nginx's and OpenSSL's allocators, the difference
 * between two snapshots per connection, and the breakdown the verdicts quote. The real run, on the
 * built nginx under valgrind, is in nginx-build.test.ts.
 */
import { bytesBySite, describeHeapProfile, heapBreakdown, parseMassifSnapshot, perConnectionSites } from '../bench/heap-profile';
import type { HeapProfile } from '../bench/results';

/** A detailed snapshot in massif's format (a `detailed_snapshot` monitor command's file). */
function snapshot(heapBytes: number, extraBytes: number, tree: string): string {
  return [
    'desc: --threshold=0.05',
    'cmd: nginx -c nginx.conf',
    'time_unit: i',
    '#-----------',
    'snapshot=0',
    '#-----------',
    'time=1000',
    `mem_heap_B=${heapBytes}`,
    `mem_heap_extra_B=${extraBytes}`,
    'mem_stacks_B=0',
    'heap_tree=detailed',
    tree.trim(),
    '',
  ].join('\n');
}

/** `connections` idle connections' worth of the sites a proxied upgraded WebSocket allocates. */
function loadedTree(connections: number): string {
  const n = (bytes: number): number => bytes * connections;
  const total = 7_000_000 + n(1480 + 1024 + 1024 + 1024 + 8160 + 200) + 4096;
  const ngxAlloc = 7_000_000 + n(1480 + 1024 + 1024);
  return `
n4: ${total} (heap allocation functions) malloc/new/new[], --alloc-fns, etc.
 n3: ${ngxAlloc} 0x14F51E: ngx_alloc (ngx_alloc.c:22)
  n1: 7000000 0x14B313: ngx_event_process_init (ngx_event.c:734)
   n0: 7000000 0x1544BD: ngx_single_process_cycle (ngx_process_cycle.c:290)
  n2: ${n(1480 + 1024)} 0x12E264: ngx_palloc_large (ngx_palloc.c:220)
   n1: ${n(1480)} 0x12E658: ngx_pcalloc (ngx_palloc.c:302)
    n1: ${n(1480)} 0x1695D8: ngx_http_alloc_request (ngx_http_request.c:558)
     n0: ${n(1480)} 0x169BB8: ngx_http_create_request (ngx_http_request.c:514)
   n1: ${n(1024)} 0x12FFE6: ngx_create_temp_buf (ngx_buf.c:22)
    n0: ${n(1024)} 0x17C86D: ngx_http_upstream_process_upgraded (ngx_http_upstream.c:3450)
  n1: ${n(1024)} 0x12E171: ngx_palloc_block (ngx_palloc.c:186)
   n1: ${n(1024)} 0x12E658: ngx_pcalloc (ngx_palloc.c:302)
    n0: ${n(1024)} 0x1A806F: ngx_http_proxy_handler (ngx_http_proxy_module.c:947)
 n1: ${n(1024)} 0x14F5D0: ngx_memalign (ngx_alloc.c:57)
  n1: ${n(1024)} 0x12E33B: ngx_create_pool (ngx_palloc.c:23)
   n0: ${n(1024)} 0x1695BF: ngx_http_alloc_request (ngx_http_request.c:553)
 n2: ${n(8160 + 200)} 0x4C067A8: CRYPTO_zalloc (in /usr/lib/x86_64-linux-gnu/libcrypto.so.3)
  n1: ${n(8160)} 0x4964773: SSL_new (in /usr/lib/x86_64-linux-gnu/libssl.so.3)
   n1: ${n(8160)} 0x157E83: ngx_ssl_create_connection (ngx_event_openssl.c:1641)
    n0: ${n(8160)} 0x16CF02: ngx_http_ssl_handshake (ngx_http_request.c:750)
  n1: ${n(200)} 0x4CCB0E8: ??? (in /usr/lib/x86_64-linux-gnu/libssl.so.3)
   n1: ${n(200)} 0x49772E8: ngx_ssl_handshake.part.0 (ngx_event_openssl.c:1733)
    n0: ${n(200)} 0x16CF02: ngx_http_ssl_handshake (ngx_http_request.c:750)
 n0: 4096 in 73 places, all below massif's threshold (0.05%)
`;
}

describe('massif snapshots', () => {
  it('parses the totals and the whole tree, children nested by indentation', () => {
    const parsed = parseMassifSnapshot(snapshot(123, 45, loadedTree(2)));
    expect(parsed.heapBytes).toBe(123);
    expect(parsed.extraBytes).toBe(45);
    expect(parsed.tree.children).toHaveLength(4);
    expect(parsed.tree.children[0]!.frame).toBe('0x14F51E: ngx_alloc (ngx_alloc.c:22)');
    expect(parsed.tree.children[0]!.children.map((child) => child.bytes)).toEqual([7_000_000, 2 * (1480 + 1024), 2 * 1024]);
    expect(parsed.tree.children[3]!.frame).toBe("in 73 places, all below massif's threshold (0.05%)");
  });

  it('refuses a file without a detailed tree, and a tree line it cannot read', () => {
    expect(() => parseMassifSnapshot('snapshot=0\nmem_heap_B=1\nmem_heap_extra_B=0\nheap_tree=empty\n')).toThrow(/no detailed heap tree/);
    expect(() => parseMassifSnapshot(snapshot(1, 0, 'n1: 10 root\n garbage'))).toThrow(/unexpected tree line " garbage"/);
  });

  it('attributes bytes to the first frame past the allocators, with how they were allocated and what sizes them', () => {
    const sites = bytesBySite(parseMassifSnapshot(snapshot(0, 0, loadedTree(1))).tree);
    const byName = Object.fromEntries(sites.map((site) => [`${site.allocation}: ${site.site}`, site]));
    expect(byName['object: ngx_http_alloc_request (ngx_http_request.c:558)']).toMatchObject({ bytes: 1480, directive: null, library: null });
    expect(byName['object: ngx_http_upstream_process_upgraded (ngx_http_upstream.c:3450)']).toMatchObject({ bytes: 1024, directive: 'proxy_buffer_size' });
    expect(byName['pool block: ngx_http_proxy_handler (ngx_http_proxy_module.c:947)']).toMatchObject({ bytes: 1024, directive: null });
    expect(byName['new pool: ngx_http_alloc_request (ngx_http_request.c:553)']).toMatchObject({ bytes: 1024, directive: 'request_pool_size' });
    // A library's named function, with the nginx function that called it; unnamed library code by
    // the nginx function above it, without GCC's clone suffix.
    expect(byName['object: libssl: SSL_new (from ngx_ssl_create_connection)']).toMatchObject({ bytes: 8160, library: 'libssl' });
    expect(byName['object: libssl: functions without symbols (from ngx_ssl_handshake (ngx_event_openssl.c:1733))']).toMatchObject({
      bytes: 200,
      library: 'libssl',
    });
    expect(byName['object: ngx_event_process_init (ngx_event.c:734)']!.bytes).toBe(7_000_000);
    expect(byName['object: smaller sites (below the profile threshold)']!.bytes).toBe(4096);
    // Every byte of the tree lands in exactly one site.
    const total = sites.reduce((sum, site) => sum + site.bytes, 0);
    expect(total).toBe(parseMassifSnapshot(snapshot(0, 0, loadedTree(1))).tree.bytes);
  });

  it('per connection: the growth of each site between two snapshots, without what did not grow', () => {
    const before = parseMassifSnapshot(snapshot(7_004_096, 1000, loadedTree(0)));
    const after = parseMassifSnapshot(snapshot(7_004_096 + 300 * 12_912, 1000 + 300 * 16, loadedTree(300)));
    const sites = perConnectionSites(before, after, 300);
    expect(sites.map((site) => [site.site, site.bytes])).toEqual([
      ['libssl: SSL_new (from ngx_ssl_create_connection)', 8160],
      ['ngx_http_alloc_request (ngx_http_request.c:558)', 1480],
      // Sorting is by bytes; equal sizes keep the tree's order.
      ['ngx_http_upstream_process_upgraded (ngx_http_upstream.c:3450)', 1024],
      ['ngx_http_proxy_handler (ngx_http_proxy_module.c:947)', 1024],
      ['ngx_http_alloc_request (ngx_http_request.c:553)', 1024],
      ['libssl: functions without symbols (from ngx_ssl_handshake (ngx_event_openssl.c:1733))', 200],
    ]);
    const profile: HeapProfile = {
      path: 'nginx-https',
      description: 'test',
      nginx: '1.22.1',
      connections: 300,
      failed: 0,
      heapBytesPerConnection: 12_912,
      mallocOverheadBytesPerConnection: 16,
      sites,
    };
    const breakdown = heapBreakdown(profile);
    expect(breakdown).toEqual({ nginxObjects: 1480, pools: 2048, buffers: new Map([['proxy_buffer_size', 1024]]), libraries: 8360 });
    expect(describeHeapProfile(profile)).toBe(
      '12.6 KB per connection on the heap (+0.0 KB malloc overhead): 1.4 KB objects nginx allocates for every proxied connection ' +
        'whatever the configuration (ngx_http_alloc_request (ngx_http_request.c:558) 1480 B), 2.0 KB pool space (blocks of request_pool_size and ' +
        'connection_pool_size), 1.0 KB buffers sized by directives (proxy_buffer_size 1.0), 8.2 KB allocated inside OpenSSL ' +
        '(libssl: SSL_new 8160 B, libssl: functions without symbols 200 B)',
    );
  });
});

/**
 * `renderNginxConf(spec)`: one pure function from an `NginxSpec` to a complete nginx.conf (http/L7,
 * stream/L4 or both). The same text goes to EC2 user data, `npm run render` and the local topology.
 * The rendered file explains its non-obvious choices in comments, for whoever reviews it.
 */
import {
  ERROR_PAGE_FILE,
  NGINX_DEFAULTS,
  STUB_STATUS_PATH,
} from './conf-defaults';
import {
  formatAddress,
  resolveNginxSpec,
  type ResolvedHttp,
  type ResolvedLocation,
  type ResolvedNginx,
  type ResolvedStreamListener,
  type ResolvedUpstream,
} from './conf-model';
import { ORIGIN_MAX_LENGTH } from '../servers/validate';
import type { NginxSpec, TlsSpec } from './spec';

export {
  defaultIdleTimeoutSeconds,
  ERROR_PAGE_FILE,
  mountedProfiles,
  NGINX_DEFAULTS,
  nginxCapacity,
  colocatedWorkerProcesses,
  resolveIdleTimeoutSeconds,
  STUB_STATUS_PATH,
  type NginxCapacity,
} from './conf-defaults';
export { NginxSpecError, resolveNginxSpec, validateNginxSpec, type ResolvedNginx } from './conf-model';

/** TLS versions every listener accepts (Mozilla "intermediate"). */
export const TLS_PROTOCOLS = ['TLSv1.2', 'TLSv1.3'] as const;
/** Mozilla "intermediate" TLS 1.2 ciphers, guideline 6.0 (TLS 1.3 suites are OpenSSL's defaults,
 * which equal Mozilla's list). Guideline 6.0 dropped the DHE suites, so no dhparam file is needed. */
export const TLS_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
] as const;
/** Mozilla 6.0 lists X25519MLKEM768 first; it needs OpenSSL 3.5+, which neither Debian 12 nor
 * Amazon Linux 2023 ships, and an unknown group makes nginx refuse the whole config. */
export const TLS_CURVES = ['X25519', 'prime256v1', 'secp384r1'] as const;

/** Shared memory zone names are global across http and stream: each context needs its own. */
const TLS_SESSION_ZONES = { http: 'realtime_edge_http_tls', stream: 'realtime_edge_stream_tls' } as const;
const ORIGIN_REFUSED = '$realtime_edge_origin_refused';
/** Holds one map key of ORIGIN_MAX_LENGTH characters (an entry is a pointer plus the key, aligned). */
const ORIGIN_MAP_BUCKET_BYTES = 256;
const LOG_FORMATS = { http: 'realtime_edge', stream: 'realtime_edge_stream' } as const;

type Lines = string[];
const INDENT = '    ';

function block(head: string, body: Lines): Lines {
  return [`${head} {`, ...body.map((line) => (line === '' ? '' : INDENT + line)), '}'];
}

function comment(...text: string[]): Lines {
  return text.map((line) => (line === '' ? '#' : `# ${line}`));
}

function listen(model: ResolvedNginx, port: number, options: { tls: boolean; reuseport: boolean }): string {
  const address = model.listenAddress ? formatAddress(model.listenAddress, port) : String(port);
  const flags = [options.tls ? 'ssl' : '', options.reuseport ? 'reuseport' : '', `backlog=${NGINX_DEFAULTS.listenBacklog}`];
  return `listen ${[address, ...flags].filter(Boolean).join(' ')};`;
}

/** An allowed origin as a `map` source: the string itself, or a case-insensitive anchored regex
 * when it has `*` wildcards (which match host characters only, never `/` or `:`). */
function originMapKey(origin: string): string {
  if (!origin.includes('*')) return `"${origin}"`;
  const pattern = origin
    .split('*')
    .map((part) => part.replace(/[.]/g, '\\.'))
    .join('[a-z0-9.-]*');
  return `"~*^${pattern}$"`;
}

// ---------------------------------------------------------------------------------------------
// main context and events
// ---------------------------------------------------------------------------------------------

function mainContext(model: ResolvedNginx): Lines {
  const { capacity } = model;
  return [
    ...(model.streamModulePath
      ? [
          ...comment('This nginx has the stream module as a dynamic module (e.g. Debian libnginx-mod-stream).'),
          `load_module ${model.streamModulePath};`,
          '',
        ]
      : []),
    ...(model.user ? [`user ${model.user};`] : []),
    `worker_processes ${model.workerProcesses};`,
    '',
    ...comment(
      `Sized for ${capacity.maxConnections} concurrent clients. A proxied connection holds two sockets in its`,
      'worker (client and upstream): worker_connections = 2 x clients per worker + 256 (listeners, upstream',
      'keepalive, stub_status). A worker must hold the whole target, unless the worker count is fixed and',
      'reuseport spreads connections (then the target is divided, +25% for uneven hashing and bursts).',
      'worker_rlimit_nofile adds 1024 descriptors for logs and temp files; systemd LimitNOFILE matches it.',
    ),
    `worker_rlimit_nofile ${capacity.rlimitNofile};`,
    '',
    ...comment(
      'WebSockets never finish on their own: without this, workers of an old configuration would live',
      'as long as their last client after every reload. After it, their clients reconnect to new workers.',
    ),
    `worker_shutdown_timeout ${model.workerShutdownSeconds}s;`,
    '',
    `pid ${model.paths.pidFile};`,
    `error_log ${model.paths.errorLog} warn;`,
  ];
}

function eventsContext(model: ResolvedNginx): Lines {
  return block('events', [
    `worker_connections ${model.capacity.workerConnections};`,
    ...(model.reuseport
      ? [
          ...comment(
            'With reuseport each worker drains only its own accept queue, so taking every pending',
            'connection per wakeup cannot starve other workers; it shortens reconnect storms after a failover.',
          ),
          'multi_accept on;',
        ]
      : []),
    ...comment('No `use`: nginx picks epoll on Linux by itself.'),
  ]);
}

// ---------------------------------------------------------------------------------------------
// upstreams
// ---------------------------------------------------------------------------------------------

function balanceDirective(upstream: ResolvedUpstream): Lines {
  switch (upstream.balance.strategy) {
    case 'round-robin':
      return [];
    case 'least-conn':
      return ['least_conn;'];
    case 'ip-hash':
      return ['ip_hash;'];
    case 'hash': {
      const cookie = cookieOfHashKey(upstream.balance.hashKey);
      return [`hash ${cookie === null ? upstream.balance.hashKey : cookieHashVariable(cookie)} consistent;`];
    }
    case 'random-two-least-conn':
      return ['random two least_conn;'];
  }
}

/** The cookie name when a hash key is exactly one `$cookie_NAME`, else null. */
function cookieOfHashKey(hashKey: string | undefined): string | null {
  const match = /^\$(?:cookie_([A-Za-z0-9_]+)|\{cookie_([A-Za-z0-9_]+)\})$/.exec(hashKey ?? '');
  return match ? (match[1] ?? match[2]) : null;
}

function cookieHashVariable(cookie: string): string {
  return `$realtime_edge_cookie_${cookie}_or_address`;
}

function serverLine(upstream: ResolvedUpstream, server: ResolvedUpstream['servers'][number]): string {
  const longLived = upstream.purpose !== 'http';
  const maxFails = server.maxFails ?? (longLived ? NGINX_DEFAULTS.longLivedMaxFails : NGINX_DEFAULTS.httpMaxFails);
  const failTimeout = server.failTimeoutSeconds ?? (longLived ? undefined : NGINX_DEFAULTS.httpFailTimeoutSeconds);
  const parameters = [
    server.weight !== undefined ? `weight=${server.weight}` : null,
    `max_fails=${maxFails}`,
    maxFails > 0 && failTimeout !== undefined ? `fail_timeout=${failTimeout}s` : null,
    server.backup ? 'backup' : null,
  ].filter((p): p is string => p !== null);
  return `server ${server.address} ${parameters.join(' ')};`;
}

function upstreamBlock(upstream: ResolvedUpstream): Lines {
  const purpose = {
    websocket: `${upstream.profile.displayName} WebSocket and streaming routes (upgraded, long-lived).`,
    http: `${upstream.profile.displayName} plain HTTP routes (request/response).`,
    stream: `${upstream.profile.displayName} TCP sessions (long-lived).`,
  }[upstream.purpose];
  return [
    ...comment(purpose),
    ...block(`upstream ${upstream.name}`, [
      // The balancing method must precede `keepalive`, which wraps whatever method is active.
      ...balanceDirective(upstream),
      ...upstream.servers.map((server) => serverLine(upstream, server)),
      ...(upstream.purpose === 'http' ? [`keepalive ${NGINX_DEFAULTS.upstreamKeepalive};`] : []),
    ]),
  ];
}

const LONG_LIVED_UPSTREAM_NOTES = [
  'Passive health checks are off (max_fails=0) on long-lived upstreams. nginx clears a failed node only',
  'when a request to it completes, and an upgraded WebSocket or a TCP session completes only when it',
  'closes: a node that failed once (a restart) would get one probe connection per fail_timeout and stay',
  'starved for as long as that socket lives. Dead nodes are skipped per connection instead: a refused,',
  'reset or timed-out connect is retried on the next server (proxy_next_upstream), and a short',
  'proxy_connect_timeout bounds what a silent node costs each handshake.',
];

const HTTP_UPSTREAM_NOTES = [
  'Plain HTTP upstreams keep passive health checks (requests complete, so a node marked down is probed',
  'again after fail_timeout and restored by the first success) and reuse idle connections (keepalive,',
  'HTTP/1.1, empty Connection header).',
];

// ---------------------------------------------------------------------------------------------
// http
// ---------------------------------------------------------------------------------------------

/** TLS of one server. The stream session cache is set once in the stream context instead. */
function tlsDirectives(tls: TlsSpec, context: 'http' | 'stream'): Lines {
  return [
    `ssl_certificate ${tls.certificatePath};`,
    `ssl_certificate_key ${tls.keyPath};`,
    ...comment('Mozilla "intermediate": TLS 1.2 and 1.3 only, forward-secret AEAD ciphers, client picks the order.'),
    `ssl_protocols ${TLS_PROTOCOLS.join(' ')};`,
    `ssl_ciphers ${TLS_CIPHERS.join(':')};`,
    `ssl_ecdh_curve ${TLS_CURVES.join(':')};`,
    'ssl_prefer_server_ciphers off;',
    ...(context === 'http'
      ? [
          `ssl_session_cache shared:${TLS_SESSION_ZONES.http}:${NGINX_DEFAULTS.tlsSessionCacheMegabytes}m;`,
          `ssl_session_timeout ${NGINX_DEFAULTS.tlsSessionTimeout};`,
        ]
      : []),
    ...comment(
      'Tickets off: nginx before 1.23.2 keeps one ticket key until restart, which defeats forward',
      'secrecy; the shared session cache resumes sessions instead.',
    ),
    'ssl_session_tickets off;',
    ...(context === 'http' ? [`ssl_buffer_size ${NGINX_DEFAULTS.tlsBufferSize};`] : []),
  ];
}

function proxyHeaders(kind: ResolvedLocation['kind']): Lines {
  return [
    'proxy_http_version 1.1;',
    ...(kind === 'websocket'
      ? ['proxy_set_header Upgrade $http_upgrade;', 'proxy_set_header Connection $connection_upgrade;']
      : ['proxy_set_header Connection "";']),
    'proxy_set_header Host $host;',
    'proxy_set_header X-Real-IP $remote_addr;',
    'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    'proxy_set_header X-Forwarded-Proto $scheme;',
  ];
}

function locationBlock(location: ResolvedLocation, upstream: ResolvedUpstream, model: ResolvedNginx): Lines {
  const head = location.exact ? `location = ${location.path}` : `location ${location.path}`;
  const body: Lines = [];
  if (location.checksOrigin) body.push(...block(`if (${ORIGIN_REFUSED})`, ['return 403;']));
  body.push(`proxy_pass http://${location.upstream}${location.proxyPassUri ?? ''};`, ...proxyHeaders(location.kind));
  body.push(`proxy_connect_timeout ${model.connectSeconds}s;`);
  if (location.kind === 'websocket') {
    body.push(
      'proxy_buffering off;',
      `proxy_buffer_size ${NGINX_DEFAULTS.longLivedProxyBufferSize};`,
      `proxy_read_timeout ${model.idleSeconds}s;`,
      `proxy_send_timeout ${model.idleSeconds}s;`,
    );
  }
  body.push('proxy_next_upstream error timeout;', `proxy_next_upstream_tries ${upstream.nextUpstreamTries};`);
  const note = location.proxyPassUri !== null ? ` (prefix stripped: ${location.path} -> ${location.proxyPassUri})` : '';
  return [...comment(`${location.backendName}, ${location.kind}${note}`), ...block(head, body)];
}

function mainServer(http: ResolvedHttp, model: ResolvedNginx): Lines {
  const upstreamByName = new Map(http.upstreams.map((u) => [u.name, u]));
  const body: Lines = [
    listen(model, http.listenPort, { tls: http.tls !== null, reuseport: model.reuseport }),
    `server_name ${http.serverName};`,
    '',
  ];
  if (http.tls) {
    body.push(...tlsDirectives(http.tls, 'http'));
    if (http.tls.hstsMaxAgeSeconds !== undefined) {
      body.push(`add_header Strict-Transport-Security "max-age=${http.tls.hstsMaxAgeSeconds}" always;`);
    }
    body.push('');
  }
  body.push(
    ...comment(
      'Errors nginx itself produces when no upstream answers get a page of ours. Responses of the',
      'backends pass through unchanged (proxy_intercept_errors stays off).',
    ),
    `error_page 502 503 504 /${ERROR_PAGE_FILE};`,
    ...block(`location = /${ERROR_PAGE_FILE}`, ['internal;', `root ${model.paths.errorPageRoot};`, 'default_type text/html;']),
    '',
    ...comment(
      'WebSocket routes: no buffering; read/send timeouts above the servers\' ping interval. A handshake',
      'that fails before the node answered (refused, reset, or a connect timeout: a silent node that',
      'least_conn would keep choosing, since it holds no connections) moves to the next server. nginx',
      'closes the first connection before it tries the next, and never retries once the 101 reached',
      'the client, so no handshake makes two sessions.',
      'Prefixed backends are stripped by proxy_pass URI replacement (no rewrite).',
    ),
  );
  for (const location of http.locations) {
    const upstream = upstreamByName.get(location.upstream);
    if (!upstream) throw new Error(`internal: no upstream ${location.upstream}`);
    body.push(...locationBlock(location, upstream, model), '');
  }
  if (!http.rootClaimed) {
    body.push(...comment('Nothing is served from disk: unclaimed paths answer 404.'), ...block('location /', ['return 404;']));
  } else {
    body.pop();
  }
  return block('server', body);
}

function redirectServer(http: ResolvedHttp, model: ResolvedNginx): Lines {
  if (http.redirectHttpPort === null) return [];
  const port = http.listenPort === NGINX_DEFAULTS.tlsListenPort ? '' : `:${http.listenPort}`;
  return [
    ...comment(`Plain HTTP on ${http.redirectHttpPort} only redirects to https.`),
    ...block('server', [
      listen(model, http.redirectHttpPort, { tls: false, reuseport: model.reuseport }),
      `server_name ${http.serverName};`,
      `return 301 https://$host${port}$request_uri;`,
    ]),
  ];
}

function statusServer(model: ResolvedNginx): Lines {
  if (model.statusPort === null) return [];
  return [
    ...comment('stub_status for local monitoring only: bound to loopback and restricted to it.'),
    ...block('server', [
      `listen 127.0.0.1:${model.statusPort};`,
      'access_log off;',
      ...block(`location = ${STUB_STATUS_PATH}`, ['stub_status;', 'allow 127.0.0.1;', 'deny all;']),
      ...block('location /', ['return 404;']),
    ]),
  ];
}

function httpContext(model: ResolvedNginx): Lines {
  const { http, paths } = model;
  const body: Lines = [
    'server_tokens off;',
    'default_type application/octet-stream;',
    ...comment(
      `A WebSocket keeps its request state for its whole life; ${NGINX_DEFAULTS.requestPoolSize} pool blocks hold it tighter than`,
      'the default 4k ones (bench/: 14.3 -> 12.4 KB per idle connection).',
    ),
    `request_pool_size ${NGINX_DEFAULTS.requestPoolSize};`,
  ];
  if (paths.mimeTypes) body.push(`include ${paths.mimeTypes};`);
  if (paths.tempDir) {
    body.push(
      ...comment('Every temp path under tempDir, so nginx never needs the compiled-in directories.'),
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `${kind}_temp_path ${paths.tempDir}/${kind};`),
    );
  }
  body.push(
    '',
    ...comment('WebSocket lines are written when the socket closes: $request_time is the session length.'),
    `log_format ${LOG_FORMATS.http} '$remote_addr [$time_iso8601] "$request" $status $body_bytes_sent '`,
    `${INDENT}'rt=$request_time upstream=$upstream_addr uct=$upstream_connect_time '`,
    `${INDENT}'urt=$upstream_response_time ustatus=$upstream_status';`,
    `access_log ${paths.accessLog} ${LOG_FORMATS.http};`,
  );
  if (http) {
    const originChecked = [...new Set(http.locations.filter((l) => l.checksOrigin).map((l) => l.backendName))];
    if (originChecked.length > 0) {
      body.push(
        '',
        ...comment(
          `Allowed origins are map keys of up to ${ORIGIN_MAX_LENGTH} characters; the default bucket (one 64-byte cache line) holds`,
          'about 46. Set before the first map, as nginx requires.',
        ),
        `map_hash_bucket_size ${ORIGIN_MAP_BUCKET_BYTES};`,
      );
    }
    if (http.locations.some((location) => location.kind === 'websocket')) {
      body.push(
        '',
        ...comment('Upgrade requests pass Connection: upgrade; other requests on WebSocket routes close.'),
        ...block('map $http_upgrade $connection_upgrade', ['default upgrade;', "'' close;"]),
      );
    }
    if (originChecked.length > 0) {
      body.push(
        '',
        ...comment(
          `${originChecked.join(', ')} ${originChecked.length === 1 ? 'does' : 'do'} not check Origin on WebSocket handshakes: browsers on other`,
          'sites are refused here. Requests without Origin (non-browser clients) pass; strings match',
          'ignoring case, and a * in an allowed host matches any run of host characters.',
        ),
        ...block(`map $http_origin ${ORIGIN_REFUSED}`, ['default 1;', "'' 0;", ...http.allowedOrigins.map((o) => `${originMapKey(o)} 0;`)]),
      );
    }
    const longLived = http.upstreams.some((u) => u.purpose === 'websocket');
    body.push('', ...comment(...(longLived ? [...LONG_LIVED_UPSTREAM_NOTES, ''] : []), ...HTTP_UPSTREAM_NOTES), '');
    const cookieNames = http.upstreams.map((u) => cookieOfHashKey(u.balance.hashKey)).filter((c): c is string => c !== null);
    const cookies = [...new Set(cookieNames)].sort();
    for (const cookie of cookies) {
      body.push(
        ...comment(
          `Cookie affinity on ${cookie}: a client without the cookie yet would hash the empty string, and every`,
          'new client would land on one node; those hash on their address instead.',
        ),
        ...block(`map $cookie_${cookie} ${cookieHashVariable(cookie)}`, ["'' $remote_addr;", `default $cookie_${cookie};`]),
        '',
      );
    }
    for (const upstream of http.upstreams) body.push(...upstreamBlock(upstream), '');
    if (model.reuseport) {
      body.push(
        ...comment(
          'reuseport: one listening socket per worker, the kernel spreads new connections over them. With a',
          'shared socket the worker that wakes first takes most connections, and long-lived WebSockets never',
          'move, so one worker ends up with the load while the others idle.',
        ),
      );
    }
    body.push(...LISTEN_BACKLOG_NOTE);
    body.push(...mainServer(http, model), '');
    const redirect = redirectServer(http, model);
    if (redirect.length > 0) body.push(...redirect, '');
  }
  body.push(...statusServer(model));
  while (body[body.length - 1] === '') body.pop();
  return block('http', body);
}

// ---------------------------------------------------------------------------------------------
// stream
// ---------------------------------------------------------------------------------------------

const LISTEN_BACKLOG_NOTE = comment(
  `backlog=${NGINX_DEFAULTS.listenBacklog} (nginx asks for 511; the kernel caps it at net.core.somaxconn, which the build`,
  'raises to match): a reload closes the old workers\' WebSockets and every client reconnects at once;',
  'a handshake beyond a full accept queue loses its SYN and waits 1 s, then 3 s.',
);

function streamServer(listener: ResolvedStreamListener, model: ResolvedNginx): Lines {
  const { upstream } = listener;
  return block('server', [
    listen(model, listener.listenPort, { tls: listener.tls !== null, reuseport: model.reuseport }),
    ...(listener.tls ? tlsDirectives(listener.tls, 'stream') : []),
    `proxy_pass ${upstream.name};`,
    `proxy_connect_timeout ${model.connectSeconds}s;`,
    ...comment('Idle timeout above the ping interval, in both directions.'),
    `proxy_timeout ${model.idleSeconds}s;`,
    `proxy_buffer_size ${NGINX_DEFAULTS.longLivedProxyBufferSize};`,
    ...comment('Stream retries only while connecting: no byte has reached the failed node.'),
    'proxy_next_upstream on;',
    `proxy_next_upstream_tries ${upstream.nextUpstreamTries};`,
  ]);
}

function streamContext(model: ResolvedNginx, listeners: readonly ResolvedStreamListener[]): Lines {
  const body: Lines = [
    `log_format ${LOG_FORMATS.stream} '$remote_addr [$time_iso8601] $protocol $status sent=$bytes_sent '`,
    `${INDENT}'received=$bytes_received session=$session_time upstream=$upstream_addr '`,
    `${INDENT}'uct=$upstream_connect_time usent=$upstream_bytes_sent ureceived=$upstream_bytes_received';`,
    `access_log ${model.paths.streamAccessLog ?? model.paths.accessLog} ${LOG_FORMATS.stream};`,
  ];
  if (listeners.some((listener) => listener.tls)) {
    body.push(
      `ssl_session_cache shared:${TLS_SESSION_ZONES.stream}:${NGINX_DEFAULTS.tlsSessionCacheMegabytes}m;`,
      `ssl_session_timeout ${NGINX_DEFAULTS.tlsSessionTimeout};`,
    );
  }
  body.push('', ...comment(...LONG_LIVED_UPSTREAM_NOTES), '');
  for (const listener of listeners) body.push(...upstreamBlock(listener.upstream), '');
  body.push(...LISTEN_BACKLOG_NOTE);
  for (const listener of listeners) body.push(...streamServer(listener, model), '');
  body.pop();
  return block('stream', body);
}

/**
 * Renders a complete nginx.conf for `spec`. Pure: no I/O. Throws `NginxSpecError` (naming the field
 * and the allowed values) when the spec is invalid.
 */
export function renderNginxConf(spec: NginxSpec): string {
  const model = resolveNginxSpec(spec);
  const lines: Lines = [
    ...comment('nginx.conf rendered by realtime-edge (nginx/conf.ts renderNginxConf). Change the spec, not this file.'),
    '',
    ...mainContext(model),
    '',
    ...eventsContext(model),
  ];
  if (model.http || model.statusPort !== null) lines.push('', ...httpContext(model));
  if (model.stream) lines.push('', ...streamContext(model, model.stream));
  return `${lines.join('\n')}\n`;
}

/** The custom 50x page; deployers write it to `paths.errorPageRoot`/50x.html. Self-contained HTML. */
export function renderErrorPage(): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>Service temporarily unavailable</title>',
    '<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}</style>',
    '</head>',
    '<body>',
    '<h1>Service temporarily unavailable</h1>',
    '<p>No server is answering right now. Real-time clients reconnect by themselves; please try again in a few seconds.</p>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/**
 * systemd units and the start-and-wait step shared by every server node, so deepstream and
 * Centrifugo get the same file limits, restart policy and sandboxing from one place.
 */
import type { BootstrapStep } from './bootstrap';
import { shellQuote } from './shell';
import { maxConnectionsSchema, parseOrThrow } from './validate';
import { z } from 'zod';

/** Open-file floor for any server node: a comfortable default when no target is configured. */
const MIN_OPEN_FILES = 65_536;
/** File descriptors a node needs besides client sockets: Redis connections, logs, libraries, and
 * sockets in TIME_WAIT/close during reconnect storms. */
const OPEN_FILES_HEADROOM = 4_096;
/** The kernel's default `fs.nr_open`: no process may raise RLIMIT_NOFILE above it. */
const KERNEL_NR_OPEN = 1_048_576;

/** `LimitNOFILE` for a node that should hold `maxConnections` client sockets (one fd each). */
export function openFileLimit(maxConnections?: number): number {
  if (maxConnections === undefined) return MIN_OPEN_FILES;
  parseOrThrow(maxConnectionsSchema, maxConnections, 'openFileLimit: maxConnections');
  return Math.min(KERNEL_NR_OPEN, Math.max(MIN_OPEN_FILES, maxConnections + OPEN_FILES_HEADROOM));
}

export interface SystemdServiceSpec {
  readonly description: string;
  /** Unprivileged account the server runs as (created by the install step). */
  readonly user: string;
  /** argv of the server; each word in a conservative alphabet (systemd expands `%` and `$`). */
  readonly execStart: readonly string[];
  readonly workingDirectory?: string;
  /** Root-only env files with secrets; a missing file is an error (the node must not start
   * without its secrets). */
  readonly environmentFiles?: readonly string[];
  readonly environment?: Readonly<Record<string, string>>;
  /** Client connections the node should hold; sets `LimitNOFILE` (see `openFileLimit`). */
  readonly maxConnections?: number;
  /** Paths the sandboxed service may write (everything else is read-only). */
  readonly readWritePaths?: readonly string[];
  /** Seconds systemd waits after SIGTERM before SIGKILL: the server's graceful shutdown. */
  readonly stopTimeoutSeconds?: number;
}

const wordSchema = z.string().regex(/^[A-Za-z0-9_./:=@+,-]+$/, 'expected a word of letters, digits and _ . / : = @ + , - (no spaces, quotes, % or $)');
const pathSchema = z.string().regex(/^\/[A-Za-z0-9_./@+-]*$/, 'expected an absolute path');
const serviceSchema = z.object({
  description: z.string().regex(/^[^\n\r%$\\]{1,200}$/, 'expected one line without % $ or \\'),
  user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'expected a system user name'),
  execStart: z.array(wordSchema).min(1, 'expected the program and its arguments'),
  workingDirectory: pathSchema.optional(),
  environmentFiles: z.array(pathSchema).optional(),
  environment: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name'), wordSchema).optional(),
  maxConnections: maxConnectionsSchema.optional(),
  readWritePaths: z.array(pathSchema).optional(),
  stopTimeoutSeconds: z.number().int().min(1).max(600).optional(),
});

/** A hardened `simple` service: restarted whenever it exits, no privilege gain, read-only OS. */
export function renderSystemdService(spec: SystemdServiceSpec): string {
  parseOrThrow(serviceSchema, spec, 'renderSystemdService');
  const env = Object.entries(spec.environment ?? {}).map(([k, v]) => `Environment=${k}=${v}`);
  return [
    '# Rendered by realtime-edge.',
    '[Unit]',
    `Description=${spec.description}`,
    'Wants=network-online.target',
    'After=network-online.target',
    // Never give up restarting: a node that lost Redis or crashed must come back by itself.
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=simple',
    `User=${spec.user}`,
    `Group=${spec.user}`,
    ...(spec.workingDirectory ? [`WorkingDirectory=${spec.workingDirectory}`] : []),
    ...(spec.environmentFiles ?? []).map((f) => `EnvironmentFile=${f}`),
    ...env,
    `ExecStart=${spec.execStart.join(' ')}`,
    'Restart=always',
    'RestartSec=2',
    `TimeoutStopSec=${spec.stopTimeoutSeconds ?? 30}`,
    // One descriptor per client socket plus headroom; the distribution default (1024 soft) would
    // cap a node at about a thousand clients.
    `LimitNOFILE=${openFileLimit(spec.maxConnections)}`,
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectControlGroups=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    // Both servers listen on unprivileged ports: no capabilities at all.
    'CapabilityBoundingSet=',
    ...(spec.readWritePaths ?? []).map((p) => `ReadWritePaths=${p}`),
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

export interface StartServiceSpec {
  /** Unit name, e.g. `deepstream.service`. */
  readonly unit: string;
  /** URL answering 2xx once the node is ready, e.g. `http://127.0.0.1:6020/health-check`. */
  readonly healthUrl: string;
  readonly timeoutSeconds?: number;
}

/** The URL a node's own bootstrap polls for health: the listen address, or loopback when the node
 * listens on every interface. */
export function localHealthUrl(listenHost: string | undefined, port: number, path: string): string {
  const host = listenHost === undefined || listenHost === '0.0.0.0' || listenHost === '::' ? '127.0.0.1' : listenHost;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;
}

/** Enables and (re)starts the unit, then waits for its health URL; on timeout prints the unit's
 * recent journal and fails the bootstrap. A restart (not just start) makes a re-run apply changed
 * config files. */
export function renderStartServiceStep(spec: StartServiceSpec): BootstrapStep {
  if (!/^[a-z0-9][a-z0-9_.@-]*\.service$/.test(spec.unit)) {
    throw new Error(`renderStartServiceStep: unit = ${JSON.stringify(spec.unit)}: expected a unit name like deepstream.service`);
  }
  if (!/^https?:\/\/[A-Za-z0-9.:[\]-]+\/[A-Za-z0-9_./-]*$/.test(spec.healthUrl)) {
    throw new Error(`renderStartServiceStep: healthUrl = ${JSON.stringify(spec.healthUrl)}: expected http(s)://host:port/path`);
  }
  const timeout = spec.timeoutSeconds ?? 120;
  return {
    name: `start ${spec.unit} and wait for ${spec.healthUrl}`,
    script: [
      'local waited=0',
      'systemctl daemon-reload',
      `systemctl enable ${shellQuote(spec.unit)}`,
      `systemctl restart ${shellQuote(spec.unit)}`,
      `until curl -fsS -o /dev/null --max-time 2 ${shellQuote(spec.healthUrl)}; do`,
      `  if ((waited >= ${timeout})); then`,
      `    realtime_edge_log ${shellQuote(`${spec.unit} is not healthy after ${timeout}s; its recent journal follows`)}`,
      `    journalctl -u ${shellQuote(spec.unit)} -n 80 --no-pager || true`,
      '    return 1',
      '  fi',
      '  sleep 2',
      '  waited=$((waited + 2))',
      'done',
      `realtime_edge_log ${shellQuote(`${spec.unit} is healthy`)}` + ' "(after ${waited}s)"',
    ].join('\n'),
  };
}

/** bash creating a system account without login shell or home, if it does not exist. */
export function renderSystemUser(user: string): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) {
    throw new Error(`renderSystemUser: user = ${JSON.stringify(user)}: expected a system user name ([a-z_][a-z0-9_-]*)`);
  }
  return [
    `if ! id -u ${user} >/dev/null 2>&1; then`,
    `  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ${user}`,
    'fi',
  ].join('\n');
}

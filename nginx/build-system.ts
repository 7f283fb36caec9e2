/**
 * The host files that go with a source-built nginx: the systemd unit, the sysctl drop-in and the
 * logrotate policy. Pure renderers; `renderNginxBuildScript` embeds their output.
 */
import {
  NGINX_DEFAULT_LOG_RETENTION_DAYS,
  NGINX_DEFAULT_STOP_TIMEOUT_SECONDS,
  resolveNginxInstallPaths,
  resolveNginxSysctlSettings,
  validateOptions,
  type NginxInstallPaths,
  type NginxSysctlSettings,
} from './build-options';

/** Where the build script installs each file (below its `systemRoot`). */
export const NGINX_SYSTEMD_UNIT_PATH = '/etc/systemd/system/nginx.service';
export const NGINX_SYSCTL_PATH = '/etc/sysctl.d/90-realtime-edge-nginx.conf';
export const NGINX_LOGROTATE_PATH = '/etc/logrotate.d/realtime-edge-nginx';

const GENERATED = '# Rendered by realtime-edge (nginx/build.ts); re-render instead of editing.';

export interface NginxSystemdUnitOptions {
  /** `LimitNOFILE`; must equal the config's `worker_rlimit_nofile`. */
  readonly limitNofile: number;
  readonly paths?: Partial<NginxInstallPaths>;
  /** `TimeoutStopSec`; keep it above the config's `worker_shutdown_timeout`. Default 60. */
  readonly stopTimeoutSeconds?: number;
}

export function renderNginxSystemdUnit(options: NginxSystemdUnitOptions): string {
  validateOptions('nginx systemd unit', options, ['limitNofile'], ['paths', 'stopTimeoutSeconds']);
  const paths = resolveNginxInstallPaths(options.paths);
  const nginx = `${paths.sbinPath} -c ${paths.confPath}`;
  return `${GENERATED}
[Unit]
Description=nginx proxy (realtime-edge, built from source)
Documentation=https://nginx.org/en/docs/
After=network-online.target remote-fs.target nss-lookup.target
Wants=network-online.target

[Service]
Type=forking
PIDFile=${paths.pidPath}
# A config that fails \`nginx -t\` never replaces a running one: test before start and before reload.
ExecStartPre=${nginx} -t -q
ExecStart=${nginx}
ExecReload=${nginx} -t -q
ExecReload=/bin/kill -s HUP $MAINPID
# Graceful stop: QUIT lets workers finish open requests (bounded by worker_shutdown_timeout);
# only what is still alive after TimeoutStopSec is killed.
KillSignal=SIGQUIT
KillMode=mixed
TimeoutStopSec=${options.stopTimeoutSeconds ?? NGINX_DEFAULT_STOP_TIMEOUT_SECONDS}
# Matches worker_rlimit_nofile: every proxied WebSocket holds two descriptors.
LimitNOFILE=${options.limitNofile}
Restart=on-failure
RestartSec=5s
PrivateTmp=true
ProtectHome=true
NoNewPrivileges=true

[Install]
WantedBy=multi-user.target
`;
}

export interface NginxSysctlOptions {
  /** The unit's LimitNOFILE; sizes fs.file-max (and fs.nr_open above the kernel default). */
  readonly limitNofile: number;
  readonly sysctl?: Partial<NginxSysctlSettings>;
}

// Kernel default of fs.nr_open: the ceiling of any process's RLIMIT_NOFILE.
const KERNEL_DEFAULT_NR_OPEN = 1_048_576;

export function renderNginxSysctl(options: NginxSysctlOptions): string {
  validateOptions('nginx sysctl', options, ['limitNofile'], ['sysctl']);
  const settings = resolveNginxSysctlSettings(options.limitNofile, options.sysctl);
  const [lowPort, highPort] = settings.localPortRange;
  const nrOpen =
    options.limitNofile > KERNEL_DEFAULT_NR_OPEN
      ? `# LimitNOFILE above the kernel's per-process ceiling needs the ceiling raised first.
fs.nr_open = ${options.limitNofile}
`
      : '';
  return `${GENERATED}
# Kernel limits for a proxy holding many long-lived WebSocket connections.

# Accept and SYN queues: absorb reconnect storms (every client reconnects after a deploy).
net.core.somaxconn = ${settings.somaxconn}
net.ipv4.tcp_max_syn_backlog = ${settings.tcpMaxSynBacklog}

# Each proxied connection holds one source port per upstream node; the range bounds how many
# connections one node can take. It starts above every port realtime-edge listens on.
net.ipv4.ip_local_port_range = ${lowPort} ${highPort}

# System-wide open files: several workers at LimitNOFILE each, plus the rest of the host.
# The build script drops this line when the kernel's value is already higher.
fs.file-max = ${settings.fileMax}
${nrOpen}`;
}

export interface NginxLogrotateOptions {
  readonly paths?: Partial<NginxInstallPaths>;
  /** Owner of freshly created log files: the worker user/group. Default `nginx`. */
  readonly user?: string;
  readonly group?: string;
  /** Default 14. */
  readonly logRetentionDays?: number;
}

export function renderNginxLogrotate(options: NginxLogrotateOptions = {}): string {
  validateOptions('nginx logrotate', options, [], ['paths', 'user', 'group', 'logRetentionDays']);
  const paths = resolveNginxInstallPaths(options.paths);
  const user = options.user ?? 'nginx';
  const group = options.group ?? user;
  const logs = [...new Set([paths.accessLogPath, paths.errorLogPath])].join(' ');
  return `${GENERATED}
${logs} {
    daily
    maxsize 512M
    rotate ${options.logRetentionDays ?? NGINX_DEFAULT_LOG_RETENTION_DAYS}
    missingok
    notifempty
    compress
    # nginx keeps writing to the renamed file until USR1 makes it reopen; compress it next time.
    delaycompress
    create 0640 ${user} ${group}
    sharedscripts
    postrotate
        if [ -s ${paths.pidPath} ]; then kill -USR1 "$(cat ${paths.pidPath})"; fi
    endscript
}
`;
}

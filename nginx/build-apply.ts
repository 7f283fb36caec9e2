/**
 * The script that replaces a running nginx's config in place (run by the SSM document when
 * backends or proxy settings change), so a config change never needs a new instance.
 */
import { NGINX_SERVICE_NAME, resolveNginxInstallPaths, validateOptions } from './build-options';
import { shellArray, shellQuote } from '../servers/shell';

export interface NginxApplyConfigOptions {
  /** The live nginx.conf. Default: the build's default conf path (/etc/nginx/nginx.conf). */
  readonly confPath?: string;
  /** Binary used for `nginx -t`. Default: the build's default sbin path. */
  readonly nginxBinary?: string;
  /** Run after the new file is in place. Default `systemctl reload nginx.service` (whose
   * ExecReload tests the config once more before signalling the master). */
  readonly reloadCommand?: readonly string[];
  /** The running master's pid file, to confirm the reload took. Default: the build's pid path. */
  readonly pidFile?: string;
}

/** How long the master may take to start workers on a new config before the apply counts as failed. */
const RELOAD_CONFIRM_SECONDS = 10;

/**
 * Usage of the rendered script:
 *   apply-nginx-conf --base64 <base64 of the new nginx.conf>   (what an SSM parameter carries)
 *   apply-nginx-conf --file <path of the new nginx.conf>
 *
 * The new text is written to a temp file beside the live one (same filesystem, so the final
 * rename is atomic), tested with `nginx -t`, and only then renamed over the live file and
 * reloaded. A rejected config leaves the live file untouched; a failed reload restores the
 * previous file. The reload signal returns before the master has read the new file, and a master
 * that cannot apply it (a listener it cannot bind: `nginx -t` binds nothing) logs the error and
 * keeps its old workers; so the script waits for new workers and otherwise restores the previous
 * file and fails. An identical config is a no-op. Concurrent runs are serialized with flock.
 */
export function renderNginxApplyConfigScript(options: NginxApplyConfigOptions = {}): string {
  validateOptions('nginx apply-config', options, [], ['confPath', 'nginxBinary', 'reloadCommand', 'pidFile']);
  const defaults = resolveNginxInstallPaths();
  const confPath = options.confPath ?? defaults.confPath;
  const nginxBinary = options.nginxBinary ?? defaults.sbinPath;
  const reloadCommand = options.reloadCommand ?? ['systemctl', 'reload', NGINX_SERVICE_NAME];
  const pidFile = options.pidFile ?? defaults.pidPath;
  return `#!/usr/bin/env bash
# Rendered by realtime-edge (nginx/build.ts); re-render instead of editing.
# Replaces ${confPath} only after \`nginx -t\` accepts the new text, then reloads nginx.
# Usage: $0 --base64 DATA | --file PATH
set -Eeuo pipefail
umask 077

readonly CONF_PATH=${shellQuote(confPath)}
readonly NGINX_BINARY=${shellQuote(nginxBinary)}
readonly -a RELOAD_COMMAND=${shellArray(reloadCommand)}
readonly PID_FILE=${shellQuote(pidFile)}
readonly RELOAD_CONFIRM_SECONDS=${RELOAD_CONFIRM_SECONDS}

log() { printf '%s [nginx-apply] %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
trap 'log "ERROR: command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

same_content() { [[ "$(sha256sum <"$1")" == "$(sha256sum <"$2")" ]]; }
workers_of() { pgrep -P "$1" | sort || true; }
# True once the master runs a worker that was not there before the reload.
new_workers_started() {
  local master=$1 before=$2
  local deadline=$((SECONDS + RELOAD_CONFIRM_SECONDS))
  while ((SECONDS < deadline)); do
    if [[ -n $(comm -13 <(printf '%s\\n' "$before") <(workers_of "$master")) ]]; then return 0; fi
    sleep 0.1
  done
  return 1
}

[[ $# -eq 2 ]] || die "usage: $0 --base64 DATA | --file PATH"
mode=$1
source_value=$2
conf_dir=$(dirname "$CONF_PATH")
conf_name=$(basename "$CONF_PATH")
[[ -d $conf_dir ]] || die "config directory $conf_dir does not exist"

# One apply at a time: two overlapping runs could otherwise reload each other's half-done state.
exec 9>>"$conf_dir/.$conf_name.apply.lock"
flock --wait 300 9 || die "another apply of $CONF_PATH is still running"

candidate=$(mktemp "$conf_dir/.$conf_name.new.XXXXXX")
restore=""
cleanup() { rm -f -- "$candidate" "$restore"; }
trap cleanup EXIT

case $mode in
  --base64)
    printf '%s' "$source_value" | base64 --decode >"$candidate" 2>/dev/null ||
      die "the --base64 argument is not valid base64; $CONF_PATH left unchanged"
    ;;
  --file)
    [[ -f $source_value ]] || die "--file $source_value: no such file"
    cat -- "$source_value" >"$candidate"
    ;;
  *)
    die "unknown mode '$mode'; usage: $0 --base64 DATA | --file PATH"
    ;;
esac
[[ -s $candidate ]] || die "the new config is empty; $CONF_PATH left unchanged"

if [[ -f $CONF_PATH ]] && same_content "$candidate" "$CONF_PATH"; then
  log "$CONF_PATH is already this config; nothing to do"
  exit 0
fi

# Tested from beside the live file, so relative includes resolve exactly as they will live.
if ! test_output=$("$NGINX_BINARY" -t -q -c "$candidate" 2>&1); then
  printf '%s\\n' "$test_output" >&2
  die "nginx -t rejected the new config; $CONF_PATH left unchanged"
fi
log "nginx -t accepted the new config"

if [[ -f $CONF_PATH ]]; then
  chmod --reference="$CONF_PATH" "$candidate"
  restore=$(mktemp "$conf_dir/.$conf_name.previous.XXXXXX")
  cp -p -- "$CONF_PATH" "$restore"
else
  chmod 0644 "$candidate"
fi
master_pid=$(cat -- "$PID_FILE" 2>/dev/null || true)
workers_before=""
if [[ -n $master_pid ]]; then workers_before=$(workers_of "$master_pid"); fi
mv -f -- "$candidate" "$CONF_PATH"
log "installed new $CONF_PATH; reloading: \${RELOAD_COMMAND[*]}"

# Puts the previous file back and fails; the running nginx still serves the previous config.
restore_and_die() {
  if [[ -n $restore ]]; then
    mv -f -- "$restore" "$CONF_PATH"
    die "$1; restored the previous $CONF_PATH (a running nginx keeps serving its previous config)"
  fi
  die "$1, and there was no previous config to restore"
}

if ! "\${RELOAD_COMMAND[@]}"; then restore_and_die "reload failed"; fi
if [[ -z $master_pid ]]; then
  log "no nginx master pid in $PID_FILE; cannot confirm the reload"
elif ! new_workers_started "$master_pid" "$workers_before"; then
  restore_and_die "nginx did not start workers on the new config within \${RELOAD_CONFIRM_SECONDS}s (its error log says why, e.g. a port it cannot bind)"
fi
log "nginx reloaded with the new config"
`;
}

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
}

/**
 * Usage of the rendered script:
 *   apply-nginx-conf --base64 <base64 of the new nginx.conf>   (what an SSM parameter carries)
 *   apply-nginx-conf --file <path of the new nginx.conf>
 *
 * The new text is written to a temp file beside the live one (same filesystem, so the final
 * rename is atomic), tested with `nginx -t`, and only then renamed over the live file and
 * reloaded. A rejected config leaves the live file untouched; a failed reload restores the
 * previous file. An identical config is a no-op. Concurrent runs are serialized with flock.
 */
export function renderNginxApplyConfigScript(options: NginxApplyConfigOptions = {}): string {
  validateOptions('nginx apply-config', options, [], ['confPath', 'nginxBinary', 'reloadCommand']);
  const defaults = resolveNginxInstallPaths();
  const confPath = options.confPath ?? defaults.confPath;
  const nginxBinary = options.nginxBinary ?? defaults.sbinPath;
  const reloadCommand = options.reloadCommand ?? ['systemctl', 'reload', NGINX_SERVICE_NAME];
  return `#!/usr/bin/env bash
# Rendered by realtime-edge (nginx/build.ts); re-render instead of editing.
# Replaces ${confPath} only after \`nginx -t\` accepts the new text, then reloads nginx.
# Usage: $0 --base64 DATA | --file PATH
set -Eeuo pipefail
umask 077

readonly CONF_PATH=${shellQuote(confPath)}
readonly NGINX_BINARY=${shellQuote(nginxBinary)}
readonly -a RELOAD_COMMAND=${shellArray(reloadCommand)}

log() { printf '%s [nginx-apply] %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
trap 'log "ERROR: command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

same_content() { [[ "$(sha256sum <"$1")" == "$(sha256sum <"$2")" ]]; }

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
mv -f -- "$candidate" "$CONF_PATH"
log "installed new $CONF_PATH; reloading: \${RELOAD_COMMAND[*]}"

if ! "\${RELOAD_COMMAND[@]}"; then
  if [[ -n $restore ]]; then
    mv -f -- "$restore" "$CONF_PATH"
    die "reload failed; restored the previous $CONF_PATH (a running nginx keeps serving its previous config)"
  fi
  die "reload failed and there was no previous config to restore"
fi
log "nginx reloaded with the new config"
`;
}

/**
 * `renderNginxBuildScript`: the bash that EC2 user data runs to compile nginx from source with
 * the stream module built in, verified before a single byte of it is compiled.
 *
 * Also re-exports the host-file renderers the script embeds and the apply-config script, so
 * consumers import everything about installing nginx from here.
 */
import {
  NGINX_HARDENING_FLAGS,
  NGINX_REQUIRED_MODULE_FLAGS,
  NGINX_SERVICE_NAME,
  NGINX_UNUSED_MODULE_FLAGS,
  resolveNginxBuildOptions,
  type NginxBuildOptions,
  type ResolvedNginxBuildOptions,
} from './build-options';
import { quotedHeredoc, shellArray, shellQuote } from '../servers/shell';
import {
  NGINX_LOGROTATE_PATH,
  NGINX_SYSCTL_PATH,
  NGINX_SYSTEMD_UNIT_PATH,
  renderNginxLogrotate,
  renderNginxSysctl,
  renderNginxSystemdUnit,
} from './build-system';

export * from './build-options';
export * from './build-system';
export { renderNginxApplyConfigScript, type NginxApplyConfigOptions } from './build-apply';
// Kept for consumers that quote values for the scripts rendered here.
export { shellQuote, shellArray } from '../servers/shell';

/** The full `./configure` argument list the script runs (also what `nginx -V` reports). */
export function nginxConfigureArgs(options: NginxBuildOptions): string[] {
  return configureArgs(resolveNginxBuildOptions(options));
}

function configureArgs(options: ResolvedNginxBuildOptions): string[] {
  const { paths } = options;
  return [
    `--prefix=${paths.prefix}`,
    `--sbin-path=${paths.sbinPath}`,
    `--conf-path=${paths.confPath}`,
    `--pid-path=${paths.pidPath}`,
    `--error-log-path=${paths.errorLogPath}`,
    `--http-log-path=${paths.accessLogPath}`,
    `--http-client-body-temp-path=${paths.tempDir}/client_body`,
    `--http-proxy-temp-path=${paths.tempDir}/proxy`,
    `--http-fastcgi-temp-path=${paths.tempDir}/fastcgi`,
    `--http-uwsgi-temp-path=${paths.tempDir}/uwsgi`,
    `--http-scgi-temp-path=${paths.tempDir}/scgi`,
    `--user=${options.user}`,
    `--group=${options.group}`,
    ...NGINX_REQUIRED_MODULE_FLAGS,
    ...NGINX_HARDENING_FLAGS,
    ...(options.keepUnusedModules ? [] : NGINX_UNUSED_MODULE_FLAGS),
    ...options.extraConfigureFlags,
  ];
}

/** Bash that writes `content` verbatim to the staging file `$staged`. */
function stageFileCommand(content: string, tag: string): string {
  const doc = quotedHeredoc(content, tag);
  return `cat >"$staged" ${doc.operator}\n${doc.body}`;
}

export function renderNginxBuildScript(options: NginxBuildOptions): string {
  const o = resolveNginxBuildOptions(options);
  const { paths, steps } = o;
  const args = configureArgs(o);
  const tarballName = `nginx-${o.version}.tar.gz`;
  // What the stamp records: a re-run with the same identity skips download and build. System
  // steps are not part of it, because they re-run (idempotently) every time.
  const buildId = `nginx-${o.version} sha256=${o.sha256 ?? 'not-pinned'} configure: ${args.join(' ')}`;
  const flag = (on: boolean) => (on ? 'true' : 'false');

  const unit = renderNginxSystemdUnit({ limitNofile: o.limitNofile, paths, stopTimeoutSeconds: o.stopTimeoutSeconds });
  const sysctl = renderNginxSysctl({ limitNofile: o.limitNofile, sysctl: o.sysctl });
  const logrotate = renderNginxLogrotate({ paths, user: o.user, group: o.group, logRetentionDays: o.logRetentionDays });

  return `#!/usr/bin/env bash
# Rendered by realtime-edge (nginx/build.ts); re-render instead of editing.
# Builds nginx ${o.version} from source with the stream module compiled in, after checking the
# tarball's PGP signature against pinned release-key fingerprints (and its sha256 when pinned),
# then installs the worker user, systemd unit, sysctl tuning and logrotate policy.
# Idempotent: a re-run with the same version and flags skips download and build.
set -Eeuo pipefail
umask 022

readonly NGINX_VERSION=${shellQuote(o.version)}
readonly TARBALL_URL=${shellQuote(`${o.downloadBaseUrl}/${tarballName}`)}
readonly SIGNATURE_URL=${shellQuote(`${o.downloadBaseUrl}/${tarballName}.asc`)}
readonly EXPECTED_SHA256=${shellQuote(o.sha256 ?? '')}
readonly -a PGP_KEY_URLS=${shellArray(o.pgpKeyUrls)}
readonly -a PINNED_FINGERPRINTS=${shellArray(o.pgpFingerprints)}
readonly -a CONFIGURE_ARGS=${shellArray(args)}
readonly BUILD_ID=${shellQuote(buildId)}

readonly PREFIX=${shellQuote(paths.prefix)}
readonly NGINX_BINARY=${shellQuote(paths.sbinPath)}
readonly TEMP_DIR=${shellQuote(paths.tempDir)}
readonly STAMP_FILE="$PREFIX/.realtime-edge-build-id"
readonly NGINX_USER=${shellQuote(o.user)}
readonly NGINX_GROUP=${shellQuote(o.group)}
readonly WORK_DIR=${shellQuote(o.workDir)}
readonly LOG_FILE=${shellQuote(o.logFile)}
readonly TOOL_OUTPUT="$WORK_DIR/tool-output.log"
readonly OS_RELEASE=${shellQuote(o.osReleasePath)}
SYSTEM_ROOT=${shellQuote(o.systemRoot)}
SYSTEM_ROOT=\${SYSTEM_ROOT%/}
readonly SYSTEM_ROOT
readonly SERVICE=${shellQuote(NGINX_SERVICE_NAME)}

readonly STEP_INSTALL_DEPENDENCIES=${flag(steps.installDependencies)}
readonly STEP_CREATE_USER=${flag(steps.createUser)}
readonly STEP_SYSTEMD=${flag(steps.systemd)}
readonly START_SERVICE=${flag(o.startService)}
readonly STEP_SYSCTL=${flag(steps.sysctl)}
readonly STEP_LOGROTATE=${flag(steps.logrotate)}

log() {
  local line
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ) [nginx-build] $*"
  printf '%s\\n' "$line" >&2
  printf '%s\\n' "$line" >>"$LOG_FILE" 2>/dev/null || true
}
die() {
  log "ERROR: $*"
  exit 1
}
trap 'log "ERROR: command failed (exit $?) at line $LINENO: $BASH_COMMAND"' ERR

gnupg_home=""
cleanup() {
  if [[ -n $gnupg_home && -d $gnupg_home ]]; then
    # Belt and braces: no agent should run for this home (--no-autostart), but never leave one.
    gpgconf --homedir "$gnupg_home" --kill all >/dev/null 2>&1 || true
    rm -rf -- "$gnupg_home"
  fi
}
trap cleanup EXIT

# Runs a tool with its output going to the tool log; on failure shows the tail and stops.
run_tool() {
  local description=$1
  shift
  printf '\\n=== %s: %s\\n' "$description" "$*" >>"$TOOL_OUTPUT"
  if ! "$@" >>"$TOOL_OUTPUT" 2>&1; then
    tail -n 40 "$TOOL_OUTPUT" >&2 || true
    die "$description failed (full output: $TOOL_OUTPUT)"
  fi
}

fetch() {
  local url=$1 destination=$2
  rm -f -- "$destination"
  curl --fail --silent --show-error --location --retry 3 --retry-delay 2 \\
    --connect-timeout 20 --max-time 900 --output "$destination" "$url" 2>>"$TOOL_OUTPUT" ||
    die "download failed: $url (see $TOOL_OUTPUT)"
}

# Moves a staged file over its target only when the content differs, so re-runs change nothing
# and callers can tell (install_state is "changed" or "unchanged").
install_state=""
install_if_changed() {
  local staged=$1 target=$2 next
  mkdir -p -- "$(dirname "$target")"
  if [[ -f $target ]] && [[ "$(sha256sum <"$staged")" == "$(sha256sum <"$target")" ]]; then
    rm -f -- "$staged"
    install_state=unchanged
  else
    # Copy next to the target first, so the final rename is atomic.
    next=$(mktemp "$target.XXXXXX")
    cat -- "$staged" >"$next"
    rm -f -- "$staged"
    chmod 0644 "$next"
    mv -f -- "$next" "$target"
    install_state=changed
  fi
}

os_release_field() {
  awk -F= -v key="$1" '$1 == key { gsub(/^"|"$/, "", $2); print $2 }' "$OS_RELEASE"
}

install_build_dependencies() {
  [[ -r $OS_RELEASE ]] || die "cannot read $OS_RELEASE to detect the distribution"
  local id like
  id=$(os_release_field ID)
  like=$(os_release_field ID_LIKE)
  case " $id $like " in
    *" amzn "* | *" fedora "* | *" rhel "* | *" centos "*)
      # Amazon Linux 2023 ships curl-minimal and gnupg2-minimal, which conflict with the full
      # packages: install those only when the command is missing altogether.
      local -a packages=(gcc make pcre2-devel zlib-devel openssl-devel tar gzip)
      command -v curl >/dev/null || packages+=(curl)
      command -v gpg >/dev/null || packages+=(gnupg2)
      log "installing build dependencies with dnf ($id): \${packages[*]}"
      run_tool "dnf install" dnf install -y --setopt=install_weak_deps=False "\${packages[@]}"
      ;;
    *" debian "* | *" ubuntu "*)
      # libc6-dev is only a recommendation of gcc, and recommendations are not installed.
      local -a packages=(gcc libc6-dev make libpcre2-dev zlib1g-dev libssl-dev tar gzip ca-certificates)
      command -v curl >/dev/null || packages+=(curl)
      command -v gpg >/dev/null || packages+=(gpg)
      log "installing build dependencies with apt ($id): \${packages[*]}"
      run_tool "apt-get update" env DEBIAN_FRONTEND=noninteractive apt-get update
      run_tool "apt-get install" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "\${packages[@]}"
      ;;
    *)
      die "unsupported distribution '$id' (ID_LIKE '$like'); supported: Amazon Linux 2023 and other dnf systems (amzn, fedora, rhel, centos), Debian and Ubuntu (apt)"
      ;;
  esac
}

create_worker_user() {
  if getent group "$NGINX_GROUP" >/dev/null; then
    log "group $NGINX_GROUP exists"
  else
    log "creating system group $NGINX_GROUP"
    groupadd --system "$NGINX_GROUP"
  fi
  if getent passwd "$NGINX_USER" >/dev/null; then
    log "user $NGINX_USER exists"
  else
    local shell=/usr/sbin/nologin
    [[ -x $shell ]] || shell=/sbin/nologin
    log "creating system user $NGINX_USER (no login, no home)"
    useradd --system --gid "$NGINX_GROUP" --no-create-home --home-dir /nonexistent \\
      --shell "$shell" --comment "nginx workers (realtime-edge)" "$NGINX_USER"
  fi
}

already_built() {
  [[ -x $NGINX_BINARY && -f $STAMP_FILE ]] || return 1
  [[ "$(<"$STAMP_FILE")" == "$BUILD_ID" ]] || return 1
  "$NGINX_BINARY" -v >/dev/null 2>&1
}

verify_sha256() {
  local tarball=$1 actual
  if [[ -z $EXPECTED_SHA256 ]]; then
    log "no sha256 pinned; relying on the PGP signature alone"
    return 0
  fi
  actual=$(sha256sum "$tarball" | cut -d ' ' -f 1)
  [[ $actual == "$EXPECTED_SHA256" ]] ||
    die "sha256 mismatch for $(basename "$tarball"): expected $EXPECTED_SHA256, got $actual. Refusing to build."
  log "sha256 matches the pinned $EXPECTED_SHA256"
}

is_pinned() {
  local candidate=$1 pinned
  for pinned in "\${PINNED_FINGERPRINTS[@]}"; do
    [[ $candidate == "$pinned" ]] && return 0
  done
  return 1
}

# Trust is decided by fingerprint only: the keys are fetched into a throwaway keyring, and a
# signature counts only when gpg reports it VALID and its primary key is a pinned one.
verify_signature() {
  local tarball=$1 signature=$2 status index signer gpg_rc=0
  local -a signers=()
  # A short path under /tmp: gpg fails when its home is too long for a unix socket name, even
  # with --no-autostart (which keeps it from starting an agent it does not need here).
  gnupg_home=$(mktemp -d /tmp/nginx-gpg.XXXXXX)
  for index in "\${!PGP_KEY_URLS[@]}"; do
    fetch "\${PGP_KEY_URLS[$index]}" "$gnupg_home/key-$index.asc"
    gpg --homedir "$gnupg_home" --batch --quiet --no-autostart --import "$gnupg_home/key-$index.asc" >>"$TOOL_OUTPUT" 2>&1 ||
      die "could not import the public key from \${PGP_KEY_URLS[$index]} (see $TOOL_OUTPUT)"
  done
  status="$gnupg_home/verify.status"
  gpg --homedir "$gnupg_home" --batch --no-autostart --status-file "$status" --verify "$signature" "$tarball" \\
    >>"$TOOL_OUTPUT" 2>&1 || gpg_rc=$?
  if grep -qE '^\\[GNUPG:\\] (BADSIG|REVKEYSIG)' "$status"; then
    die "PGP signature check FAILED for $(basename "$tarball"): BAD signature (the tarball was modified after signing, or the signing key is revoked). Refusing to build."
  fi
  # VALIDSIG <signing-key fpr> ... <primary-key fpr>: field 12 is the primary key's fingerprint.
  mapfile -t signers < <(awk '$2 == "VALIDSIG" { print (NF >= 12 ? $12 : $3) }' "$status")
  if [[ \${#signers[@]} -eq 0 ]]; then
    die "PGP signature check FAILED for $(basename "$tarball"): no valid signature from any imported key (gpg exit $gpg_rc; pinned fingerprints: \${PINNED_FINGERPRINTS[*]}). Refusing to build."
  fi
  for signer in "\${signers[@]}"; do
    if is_pinned "$signer"; then
      [[ $gpg_rc -eq 0 ]] || die "gpg reported a valid signature by $signer but exited $gpg_rc. Refusing to build."
      log "PGP signature is valid and made by pinned key $signer"
      cleanup
      return 0
    fi
  done
  die "PGP signature check FAILED for $(basename "$tarball"): signed by \${signers[*]}, which is not a pinned nginx release key (pinned: \${PINNED_FINGERPRINTS[*]}). Refusing to build."
}

build_and_install() {
  local downloads="$WORK_DIR/downloads" sources="$WORK_DIR/src"
  local tarball="$downloads/nginx-$NGINX_VERSION.tar.gz"
  mkdir -p -- "$downloads"
  log "downloading $TARBALL_URL"
  fetch "$TARBALL_URL" "$tarball"
  fetch "$SIGNATURE_URL" "$tarball.asc"
  verify_sha256 "$tarball"
  verify_signature "$tarball" "$tarball.asc"

  log "extracting nginx $NGINX_VERSION"
  rm -rf -- "$sources"
  mkdir -p -- "$sources"
  run_tool "tar" tar -xzf "$tarball" -C "$sources" --no-same-owner
  [[ -x "$sources/nginx-$NGINX_VERSION/configure" ]] ||
    die "the tarball does not contain nginx-$NGINX_VERSION/configure"
  cd "$sources/nginx-$NGINX_VERSION"
  log "configuring: \${CONFIGURE_ARGS[*]}"
  run_tool "./configure" ./configure "\${CONFIGURE_ARGS[@]}"
  log "compiling with $(nproc) jobs"
  run_tool "make" make -j"$(nproc)"
  log "installing into $PREFIX"
  run_tool "make install" make install
  cd /
  mkdir -p -- "$TEMP_DIR"
  [[ "$("$NGINX_BINARY" -V 2>&1)" == *--with-stream* ]] ||
    die "$NGINX_BINARY was installed but does not report --with-stream"
  printf '%s\\n' "$BUILD_ID" >"$STAMP_FILE"
  rm -rf -- "$sources"
  log "installed $("$NGINX_BINARY" -v 2>&1) at $NGINX_BINARY"
}

install_systemd_unit() {
  local staged="$WORK_DIR/nginx.service.staged"
  ${stageFileCommand(unit, 'NGINX_UNIT')}
  install_if_changed "$staged" "$SYSTEM_ROOT"${shellQuote(NGINX_SYSTEMD_UNIT_PATH)}
  log "systemd unit $SYSTEM_ROOT${NGINX_SYSTEMD_UNIT_PATH}: $install_state"
  if [[ $install_state == changed ]]; then
    systemctl daemon-reload
  fi
  systemctl enable "$SERVICE" >>"$TOOL_OUTPUT" 2>&1 || die "systemctl enable $SERVICE failed"
}

start_service() {
  if systemctl is-active --quiet "$SERVICE"; then
    if [[ $rebuilt == true ]]; then
      log "nginx is running the previous binary; run 'systemctl restart $SERVICE' to switch to nginx $NGINX_VERSION"
    else
      log "nginx is already running"
    fi
    return 0
  fi
  log "starting $SERVICE (its ExecStartPre runs nginx -t first)"
  systemctl start "$SERVICE" || die "$SERVICE failed to start; see: journalctl -u $SERVICE"
}

apply_sysctl() {
  local staged="$WORK_DIR/sysctl.conf.staged" target="$SYSTEM_ROOT"${shellQuote(NGINX_SYSCTL_PATH)} current wanted
  ${stageFileCommand(sysctl, 'NGINX_SYSCTL')}
  # Never lower fs.file-max: recent kernels default it far above anything this file would set.
  current=$(cat /proc/sys/fs/file-max)
  wanted=$(awk -F' *= *' '$1 == "fs.file-max" { print $2 }' "$staged")
  if [[ -n $wanted ]] && ((current > wanted)); then
    sed -i '/^fs\\.file-max *=/d' "$staged"
    log "kernel fs.file-max $current is already above $wanted; leaving it as it is"
  fi
  install_if_changed "$staged" "$target"
  log "sysctl settings $target: $install_state"
  sysctl -p "$target" >>"$TOOL_OUTPUT" 2>&1 || die "sysctl could not apply $target (see $TOOL_OUTPUT)"
  log "applied $target"
}

install_logrotate() {
  local staged="$WORK_DIR/logrotate.staged"
  ${stageFileCommand(logrotate, 'NGINX_LOGROTATE')}
  install_if_changed "$staged" "$SYSTEM_ROOT"${shellQuote(NGINX_LOGROTATE_PATH)}
  log "logrotate policy $SYSTEM_ROOT${NGINX_LOGROTATE_PATH}: $install_state"
  command -v logrotate >/dev/null || log "warning: logrotate is not installed; nginx logs will not be rotated"
}

main() {
  mkdir -p -- "$WORK_DIR" "$(dirname "$LOG_FILE")"
  : >"$TOOL_OUTPUT"
  log "nginx $NGINX_VERSION build starting (prefix $PREFIX)"
  rebuilt=false
  if [[ $STEP_CREATE_USER == true ]]; then create_worker_user; fi
  if already_built; then
    log "nginx $NGINX_VERSION is already built with the same flags and checksum ($STAMP_FILE); skipping download and build"
  else
    if [[ $STEP_INSTALL_DEPENDENCIES == true ]]; then install_build_dependencies; fi
    build_and_install
    rebuilt=true
  fi
  # Kernel limits first: nginx's listen() backlog is capped by somaxconn when the socket opens.
  if [[ $STEP_SYSCTL == true ]]; then apply_sysctl; fi
  if [[ $STEP_LOGROTATE == true ]]; then install_logrotate; fi
  if [[ $STEP_SYSTEMD == true ]]; then
    install_systemd_unit
    if [[ $START_SERVICE == true ]]; then start_service; fi
  fi
  log "done: nginx $NGINX_VERSION at $NGINX_BINARY"
}

main "$@"
`;
}

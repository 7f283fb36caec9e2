/**
 * Shell text the nginx proxy hosts run besides nginx.conf (pure renderers: plain inputs -> strings):
 *
 * - `renderNginxTlsFetchScript`: installs nginx's certificate and key from SSM Parameter Store or
 *   Secrets Manager (checked with openssl, written atomically, 0600 key) and reloads a running nginx
 *   when they changed. Run on every config apply, so a renewed certificate arrives in place.
 * - `renderNginxApplyCommands`: the `runCommand` lines of the SSM document that runs it and then
 *   the apply-config script.
 */
import { shellQuote } from './build';

export interface NginxTlsFiles {
  /** Directory of the two files; created 0700 root. */
  readonly directory: string;
  readonly certificatePath: string;
  readonly keyPath: string;
}

/** Where the proxy hosts keep the certificate nginx.conf points to. */
export const NGINX_HOST_TLS_FILES: NginxTlsFiles = {
  directory: '/etc/nginx/tls',
  certificatePath: '/etc/nginx/tls/fullchain.pem',
  keyPath: '/etc/nginx/tls/privkey.pem',
};

export interface NginxTlsFetchOptions {
  readonly files?: NginxTlsFiles;
  /** Run when the files changed and nginx is active. Default `systemctl reload nginx.service`
   * (the unit's ExecReload tests the config first). */
  readonly reloadCommand?: readonly string[];
  /** Command checking whether nginx runs. Default `systemctl is-active --quiet nginx.service`. */
  readonly isActiveCommand?: readonly string[];
}

/**
 * Usage of the rendered script:
 *   fetch-nginx-tls REGION ssm CERTIFICATE_PARAMETER KEY_PARAMETER
 *   fetch-nginx-tls REGION secrets-manager SECRET_ID -
 * A Secrets Manager secret's SecretString is JSON `{"certificate": PEM, "privateKey": PEM}`.
 * Values go from the AWS CLI to files, never to the console or the log.
 */
export function renderNginxTlsFetchScript(options: NginxTlsFetchOptions = {}): string {
  const files = options.files ?? NGINX_HOST_TLS_FILES;
  const reload = options.reloadCommand ?? ['systemctl', 'reload', 'nginx.service'];
  const isActive = options.isActiveCommand ?? ['systemctl', 'is-active', '--quiet', 'nginx.service'];
  for (const [field, path] of Object.entries(files)) {
    if (!/^\/[A-Za-z0-9._/-]+$/.test(path)) {
      throw new Error(`renderNginxTlsFetchScript: files.${field} ${JSON.stringify(path)} is not allowed; expected an absolute path of letters, digits and . _ / -`);
    }
  }
  const words = (command: readonly string[]) => command.map(shellQuote).join(' ');
  return `#!/usr/bin/env bash
# Rendered by realtime-edge; re-render instead of editing.
# Installs nginx's TLS certificate and key from SSM Parameter Store or Secrets Manager.
# Usage: $0 REGION ssm CERTIFICATE_PARAMETER KEY_PARAMETER
#        $0 REGION secrets-manager SECRET_ID -
set -Eeuo pipefail
umask 077
# The hosts require IMDSv2 session tokens; never let the CLI fall back to IMDSv1.
export AWS_EC2_METADATA_V1_DISABLED=true

readonly TLS_DIR=${shellQuote(files.directory)}
readonly CERTIFICATE_FILE=${shellQuote(files.certificatePath)}
readonly KEY_FILE=${shellQuote(files.keyPath)}

log() { printf '%s [nginx-tls] %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $# -eq 4 ]] || die "usage: $0 REGION ssm CERTIFICATE_PARAMETER KEY_PARAMETER | REGION secrets-manager SECRET_ID -"
region=$1
source_kind=$2
first=$3
second=$4

mkdir -p -- "$TLS_DIR"
chmod 0700 "$TLS_DIR"
new_certificate=$(mktemp "$TLS_DIR/.certificate.XXXXXX")
new_key=$(mktemp "$TLS_DIR/.key.XXXXXX")
trap 'rm -f -- "$new_certificate" "$new_key"' EXIT

ssm_value() {
  aws ssm get-parameter --with-decryption --region "$region" --name "$1" \\
    --query Parameter.Value --output text
}

# Prints one field of the JSON document on stdin (python3 ships with Amazon Linux and Debian).
json_field() {
  python3 -c 'import json, sys; sys.stdout.write(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

case $source_kind in
  ssm)
    ssm_value "$first" >"$new_certificate" || die "cannot read SSM parameter $first in $region"
    ssm_value "$second" >"$new_key" || die "cannot read SSM parameter $second in $region"
    ;;
  secrets-manager)
    secret=$(aws secretsmanager get-secret-value --region "$region" --secret-id "$first" \\
      --query SecretString --output text) || die "cannot read secret $first in $region"
    json_field certificate <<<"$secret" >"$new_certificate" ||
      die "secret $first has no \\"certificate\\" field; expected JSON {\\"certificate\\": PEM, \\"privateKey\\": PEM}"
    json_field privateKey <<<"$secret" >"$new_key" ||
      die "secret $first has no \\"privateKey\\" field; expected JSON {\\"certificate\\": PEM, \\"privateKey\\": PEM}"
    unset secret
    ;;
  *)
    die "unknown source '$source_kind'; allowed: ssm, secrets-manager"
    ;;
esac

openssl x509 -noout -in "$new_certificate" 2>/dev/null || die "the certificate from $first is not a PEM certificate"
openssl pkey -noout -in "$new_key" 2>/dev/null || die "the key is not a PEM private key"
certificate_public_key=$(openssl x509 -noout -pubkey -in "$new_certificate" | openssl pkey -pubin -outform DER | sha256sum)
key_public_key=$(openssl pkey -pubout -outform DER -in "$new_key" | sha256sum)
[[ $certificate_public_key == "$key_public_key" ]] || die "the private key does not belong to the certificate"

same_file() { [[ -f $2 ]] && [[ "$(sha256sum <"$1")" == "$(sha256sum <"$2")" ]]; }
if same_file "$new_certificate" "$CERTIFICATE_FILE" && same_file "$new_key" "$KEY_FILE"; then
  log "certificate and key unchanged"
  exit 0
fi
chmod 0644 "$new_certificate"
chmod 0600 "$new_key"
mv -f -- "$new_key" "$KEY_FILE"
mv -f -- "$new_certificate" "$CERTIFICATE_FILE"
log "installed a new certificate and key in $TLS_DIR"
if ${words(isActive)}; then
  ${words(reload)}
  log "nginx reloaded with the new certificate"
fi
`;
}

export interface NginxApplyCommandsOptions {
  /** Where the boot script installed `renderNginxTlsFetchScript`'s output. */
  readonly tlsScriptPath: string;
  /** Where the boot script installed `renderNginxApplyConfigScript`'s output. */
  readonly applyScriptPath: string;
}

/** SSM document parameters the commands below reference (`{{ name }}`). */
export const NGINX_APPLY_DOCUMENT_PARAMETERS = {
  region: 'region',
  tlsSource: 'tlsSource',
  tlsFirst: 'tlsCertificate',
  tlsSecond: 'tlsKey',
  conf: 'nginxConf',
} as const;

/**
 * The `runCommand` lines of the apply document. SSM can start them while the first boot is still
 * compiling nginx (the agent starts before cloud-init's user scripts finish), so they wait for
 * cloud-init first. The parameters are single-quoted; the document restricts their characters so
 * no value can close the quotes.
 */
export function renderNginxApplyCommands(options: NginxApplyCommandsOptions): string[] {
  const p = NGINX_APPLY_DOCUMENT_PARAMETERS;
  return [
    'set -e',
    'cloud-init status --wait >/dev/null 2>&1 || true',
    `${shellQuote(options.tlsScriptPath)} '{{ ${p.region} }}' '{{ ${p.tlsSource} }}' '{{ ${p.tlsFirst} }}' '{{ ${p.tlsSecond} }}'`,
    `${shellQuote(options.applyScriptPath)} --base64 '{{ ${p.conf} }}'`,
  ];
}

/** The boot step that compiles and installs nginx with the script written to `scriptPath`. */
export function renderRunScriptStep(scriptPath: string): string {
  return `bash ${shellQuote(scriptPath)}`;
}

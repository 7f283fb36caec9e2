/**
 * The user-data assembler every realtime-edge host shares (nginx proxies and server nodes): plain
 * data in, one bash script out. It only knows how to log, write files exactly and run named steps;
 * what a host installs is decided by the caller.
 *
 * The rendered script honours two environment variables, both unset on EC2:
 * - `REALTIME_EDGE_ROOT`: a staging root prefixed to every written path and to the log, so a test
 *   (or an image build) can run the real script without touching `/`. Ownership is not applied
 *   under a staging root, because the owners exist only on the target host.
 * - `REALTIME_EDGE_STEPS`: `all` (default), `none` (only write the files), or a comma-separated
 *   list of step numbers to run, e.g. `3,4` to re-run two steps on a host or test one in isolation.
 */
import type { RenderedFile } from './profile';
import { assertShellIdentifier, quotedHeredoc, shellQuote } from './shell';
import { awsRegionSchema, parseOrThrow, ssmParameterNameSchema } from './validate';
import { z } from 'zod';

/** Where every host logs its bootstrap (besides the console, which EC2 keeps as console output). */
export const BOOTSTRAP_LOG_PATH = '/var/log/realtime-edge-bootstrap.log';

/** Root-only directory for env files holding secrets fetched at boot. */
export const SECRETS_DIR = '/etc/realtime-edge';

export interface BootstrapStep {
  /** Shown in the log as `step i/n: name`. */
  readonly name: string;
  /** bash run inside a function: use `local` for scratch variables and `return`, never `exit`.
   * `${REALTIME_EDGE_ROOT}` is the staging root (empty on a real host). */
  readonly script: string;
}

export interface BootstrapScriptSpec {
  /** One line saying what this host is; printed first in the log. */
  readonly description: string;
  /** Run before the files are written: packages, and users that own files. */
  readonly setupSteps?: readonly BootstrapStep[];
  /** Written atomically (temp file, mode, owner, rename), byte for byte. */
  readonly files?: readonly RenderedFile[];
  /** Run once every file is in place: enable and start services, wait for health. */
  readonly steps?: readonly BootstrapStep[];
}

const fileSchema = z.object({
  path: z
    .string()
    .regex(/^\/[A-Za-z0-9_.@+\-/]*$/, 'expected an absolute path of letters, digits and _ . @ + - /')
    .refine((p) => !p.split('/').includes('..') && !p.endsWith('/'), 'expected a file path without ".." and not ending in "/"'),
  content: z.string().refine((c) => !c.includes('\0'), 'file content cannot contain NUL bytes (bash cannot write them from a heredoc)'),
  mode: z.string().regex(/^0?[0-7]{3}$/, 'expected an octal mode such as 0644 or 0600'),
  kind: z.string().min(1, 'expected a non-empty kind'),
  owner: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]*(?::[a-z_][a-z0-9_-]*)?$/, 'expected "user" or "user:group"')
    .optional(),
});

const stepSchema = z.object({
  name: z.string().regex(/^[^\n\r]{1,200}$/, 'expected a one-line step name'),
  script: z.string(),
});

const specSchema = z.object({
  description: z.string().regex(/^[^\n\r]{1,200}$/, 'expected a one-line description'),
  setupSteps: z.array(stepSchema).optional(),
  files: z.array(fileSchema).optional(),
  steps: z.array(stepSchema).optional(),
});

/** Renders the complete bootstrap script (`#!/bin/bash`, strict mode, logging, files, steps). */
export function renderBootstrapScript(spec: BootstrapScriptSpec): string {
  parseOrThrow(specSchema, spec, 'renderBootstrapScript');
  const files = spec.files ?? [];
  const paths = files.map((f) => f.path);
  const duplicate = paths.find((p, i) => paths.indexOf(p) !== i);
  if (duplicate !== undefined) {
    throw new Error(`renderBootstrapScript: files: ${JSON.stringify(duplicate)} is written twice; allowed: each path once`);
  }
  const setupSteps = spec.setupSteps ?? [];
  const steps = spec.steps ?? [];
  const allSteps = [...setupSteps, ...steps];
  const stepFunctions = allSteps.map((step, i) => renderStepFunction(i + 1, step)).join('\n');
  const runStep = (step: BootstrapStep, i: number): string =>
    `realtime_edge_run_step ${i + 1} ${allSteps.length} ${shellQuote(step.name)} realtime_edge_step_${i + 1}`;

  return [
    '#!/bin/bash',
    `# realtime-edge bootstrap: ${spec.description}`,
    '# Rendered by realtime-edge. It holds no secret values: secrets are read from SSM at boot.',
    'set -Eeuo pipefail',
    'umask 022',
    '',
    PRELUDE,
    stepFunctions,
    `realtime_edge_log ${shellQuote(`bootstrap start: ${spec.description}`)}`,
    '',
    ...setupSteps.map((s, i) => runStep(s, i)),
    files.length > 0 ? `REALTIME_EDGE_STEP='write files'\nrealtime_edge_log ${shellQuote(`writing ${files.length} file(s)`)}` : '',
    ...files.map((file, i) => renderFileWrite(file, i)),
    ...steps.map((s, i) => runStep(s, setupSteps.length + i)),
    "realtime_edge_log 'bootstrap complete'",
    '',
  ].join('\n');
}

/** Logging, error reporting and the file writer; identical in every rendered script. */
const PRELUDE = `REALTIME_EDGE_ROOT="\${REALTIME_EDGE_ROOT:-}"
REALTIME_EDGE_STEPS="\${REALTIME_EDGE_STEPS:-all}"
REALTIME_EDGE_LOG="\${REALTIME_EDGE_ROOT}${BOOTSTRAP_LOG_PATH}"
REALTIME_EDGE_STEP='prelude'
REALTIME_EDGE_FAILED_LINE=''
mkdir -p "$(dirname "$REALTIME_EDGE_LOG")"
# Everything (commands included) goes to the console and to the log; the EXIT trap waits for tee
# so the last lines are on disk before the script's exit status is reported.
exec > >(tee -a "$REALTIME_EDGE_LOG") 2>&1
REALTIME_EDGE_TEE_PID=$!

realtime_edge_log() {
  local TZ=UTC
  printf '%(%Y-%m-%dT%H:%M:%SZ)T realtime-edge: %s\\n' -1 "$*" >&2
}

realtime_edge_finish() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    realtime_edge_log "FAILED in step '\${REALTIME_EDGE_STEP}' (exit \${rc}, line \${REALTIME_EDGE_FAILED_LINE:-?}); see \${REALTIME_EDGE_LOG}"
  fi
  exec 1>&- 2>&-
  wait "$REALTIME_EDGE_TEE_PID" 2>/dev/null || true
  exit "$rc"
}
trap 'REALTIME_EDGE_FAILED_LINE=$LINENO' ERR
trap realtime_edge_finish EXIT

realtime_edge_run_step() {
  local index="$1" total="$2" name="$3" fn="$4"
  if [[ $REALTIME_EDGE_STEPS != all && ",\${REALTIME_EDGE_STEPS}," != *",\${index},"* ]]; then
    realtime_edge_log "step \${index}/\${total}: \${name} (skipped: REALTIME_EDGE_STEPS=\${REALTIME_EDGE_STEPS})"
    return 0
  fi
  REALTIME_EDGE_STEP="$name"
  realtime_edge_log "step \${index}/\${total}: \${name}"
  "$fn"
  realtime_edge_log "step \${index}/\${total} done: \${name}"
}

# realtime_edge_write_file PATH MODE OWNER STRIP_FINAL_NEWLINE < content
# Writes through a 0600 temp file in the target directory and renames it into place, so a reader
# never sees a partial file or a secret file with loose permissions.
realtime_edge_write_file() {
  local path="$1" mode="$2" owner="$3" strip_final_newline="$4"
  local target="\${REALTIME_EDGE_ROOT}\${path}"
  local dir="\${target%/*}" tmp
  mkdir -p "$dir"
  tmp="$(mktemp "\${dir}/.realtime-edge.XXXXXX")"
  cat > "$tmp"
  if [[ $strip_final_newline == yes ]]; then
    truncate -s -1 "$tmp"
  fi
  chmod "$mode" "$tmp"
  if [[ -z $REALTIME_EDGE_ROOT ]]; then
    chown "$owner" "$tmp"
  fi
  mv -f "$tmp" "$target"
  realtime_edge_log "wrote \${path} (\${mode} \${owner})"
}
`;

function renderStepFunction(index: number, step: BootstrapStep): string {
  const body = step.script.trim() === '' ? ':' : step.script.replace(/\s+$/, '');
  return [`# step ${index}: ${step.name}`, `realtime_edge_step_${index}() {`, body, '}', ''].join('\n');
}

/** The file's bytes through a quoted heredoc (no expansion, delimiter absent from the content).
 * A heredoc always ends with a newline, so content without one gets an extra newline that the
 * writer then truncates: the file gets exactly the given bytes. */
function renderFileWrite(file: RenderedFile, index: number): string {
  const endsWithNewline = file.content.endsWith('\n');
  const heredoc = quotedHeredoc(file.content, `REALTIME_EDGE_FILE_${index + 1}_EOF`);
  const mode = file.mode.length === 3 ? `0${file.mode}` : file.mode;
  return [
    `realtime_edge_write_file ${shellQuote(file.path)} ${mode} ${shellQuote(file.owner ?? 'root:root')} ${endsWithNewline ? 'no' : 'yes'} ${heredoc.operator}`,
    heredoc.body,
  ].join('\n');
}

/** bash that installs packages with dnf (Amazon Linux 2023) or apt (Debian/Ubuntu). `dnfFallback`
 * is tried when the `dnf` set is not available (e.g. a namespaced package missing from a mirror). */
export function renderPackageInstall(packages: {
  readonly dnf: readonly string[];
  readonly dnfFallback?: readonly string[];
  readonly apt: readonly string[];
}): string {
  const all = [...packages.dnf, ...(packages.dnfFallback ?? []), ...packages.apt];
  for (const name of all) {
    if (!/^[A-Za-z0-9][A-Za-z0-9+._-]*$/.test(name)) {
      throw new Error(`renderPackageInstall: package ${JSON.stringify(name)} is not a valid package name; allowed: letters, digits and + . _ -`);
    }
  }
  if (packages.dnf.length === 0 || packages.apt.length === 0) {
    throw new Error('renderPackageInstall: expected at least one package for dnf and one for apt');
  }
  const dnf = `dnf install -y ${packages.dnf.join(' ')}`;
  return [
    'if command -v dnf >/dev/null 2>&1; then',
    packages.dnfFallback ? `  ${dnf} || dnf install -y ${packages.dnfFallback.join(' ')}` : `  ${dnf}`,
    'elif command -v apt-get >/dev/null 2>&1; then',
    '  export DEBIAN_FRONTEND=noninteractive',
    '  apt-get update -y',
    `  apt-get install -y --no-install-recommends ${packages.apt.join(' ')}`,
    'else',
    "  realtime_edge_log 'no dnf or apt-get: realtime-edge supports Amazon Linux 2023 and Debian/Ubuntu'",
    '  return 1',
    'fi',
  ].join('\n');
}

/** One secret: an SSM SecureString parameter exported to a service as an environment variable. */
export interface SsmSecretEnvVar {
  readonly envVar: string;
  readonly parameterName: string;
  /** `raw` (default) or `yaml-single-quoted`: each `'` doubled, for a service that pastes the
   * variable between single quotes into YAML text before parsing it (deepstream does). */
  readonly encoding?: 'raw' | 'yaml-single-quoted';
}

export interface SsmSecretsEnvFileSpec {
  /** Absolute path of the env file (mode 0600, root): a systemd `EnvironmentFile=`. */
  readonly envFile: string;
  /** Region of the parameters; default: the instance's own region, asked from IMDSv2. */
  readonly region?: string;
  readonly secrets: readonly SsmSecretEnvVar[];
}

const ssmSpecSchema = z.object({
  envFile: z.string().regex(/^\/[A-Za-z0-9_.\-/]+$/, 'expected an absolute path'),
  region: awsRegionSchema.optional(),
  secrets: z
    .array(
      z.object({
        envVar: z.string(),
        parameterName: ssmParameterNameSchema,
        encoding: z.enum(['raw', 'yaml-single-quoted']).optional(),
      }),
    )
    .min(1, 'expected at least one secret'),
});

/** A step that reads SSM SecureString parameters at boot and writes them to a root-only env file.
 *
 * The values exist only in that file and in the service's environment: never in user data, never
 * on the console or in the log (nothing here traces commands or prints a value). Reads are retried
 * because a new instance profile can take a while to become usable; after the last attempt the
 * step fails and no env file is written. The file format is `NAME="value"` with `\ " $ \`` escaped,
 * which systemd's EnvironmentFile= and bash's `source` both read back to the exact value. */
export function renderSsmSecretsEnvFileStep(spec: SsmSecretsEnvFileSpec): BootstrapStep {
  parseOrThrow(ssmSpecSchema, spec, 'renderSsmSecretsEnvFileStep');
  spec.secrets.forEach((s, i) => assertShellIdentifier(`renderSsmSecretsEnvFileStep: secrets.${i}.envVar`, s.envVar));
  const regionLine = spec.region
    ? `region=${shellQuote(spec.region)}`
    : 'region="$(realtime_edge_instance_region)"';
  // Every value is read before any file exists, so a failed read leaves nothing behind.
  const reads = spec.secrets.map((s) =>
    [
      `value="$(realtime_edge_ssm_get "$region" ${shellQuote(s.parameterName)})"`,
      `lines+="$(realtime_edge_env_line ${s.envVar} "$value" ${s.encoding ?? 'raw'})"$'\\n'`,
    ].join('\n'),
  );
  return {
    name: `read ${spec.secrets.length} secret(s) from SSM into ${spec.envFile}`,
    script: [
      SSM_FUNCTIONS,
      ...(spec.region ? [] : [INSTANCE_REGION_FUNCTION]),
      'if ! command -v aws >/dev/null 2>&1; then',
      indent(renderPackageInstall({ dnf: ['awscli-2'], apt: ['awscli'] }), 2),
      'fi',
      'local region value dir tmp',
      "local lines='# Written at boot by realtime-edge from SSM Parameter Store. Root only.'$'\\n'",
      regionLine,
      ...reads,
      `dir="\${REALTIME_EDGE_ROOT}"${shellQuote(dirOf(spec.envFile))}`,
      'mkdir -p "$dir"',
      'chmod 0700 "$dir"',
      'tmp="$(mktemp "${dir}/.realtime-edge-env.XXXXXX")"',
      "printf '%s' \"$lines\" > \"$tmp\"",
      'chmod 0600 "$tmp"',
      'if [[ -z $REALTIME_EDGE_ROOT ]]; then chown root:root "$tmp"; fi',
      `mv -f "$tmp" "\${REALTIME_EDGE_ROOT}"${shellQuote(spec.envFile)}`,
      `realtime_edge_log ${shellQuote(`wrote ${spec.envFile} (0600 root) with ${spec.secrets.map((s) => s.envVar).join(', ')}`)}`,
    ].join('\n'),
  };
}

/** The instance's region from IMDSv2 (a session token first; IMDSv1 is disabled on our hosts). */
const INSTANCE_REGION_FUNCTION = `realtime_edge_instance_region() {
  local token
  token="$(curl -fsS --max-time 5 -X PUT 'http://169.254.169.254/latest/api/token' -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')"
  curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: \${token}" 'http://169.254.169.254/latest/meta-data/placement/region'
}`;

/** Functions of the SSM step. Defined inside the step so hosts without secrets do not carry them. */
const SSM_FUNCTIONS = `# Instances require IMDSv2 (session tokens); never let the CLI fall back to IMDSv1.
export AWS_EC2_METADATA_V1_DISABLED=true
# Prints the decrypted value on stdout (captured by the caller, never logged).
realtime_edge_ssm_get() {
  local region="$1" name="$2" attempt attempts="\${REALTIME_EDGE_SSM_ATTEMPTS:-10}" value
  for ((attempt = 1; attempt <= attempts; attempt++)); do
    if value="$(aws ssm get-parameter --with-decryption --region "$region" --name "$name" --query Parameter.Value --output text)"; then
      printf '%s' "$value"
      return 0
    fi
    if ((attempt < attempts)); then
      realtime_edge_log "SSM parameter \${name} not readable yet (attempt \${attempt}/\${attempts}); retrying"
      sleep $((attempt * 3))
    fi
  done
  realtime_edge_log "cannot read SSM parameter \${name} in \${region} after \${attempts} attempts: check that it exists and that the instance role may ssm:GetParameter and kms:Decrypt it"
  return 1
}
# Prints NAME="value" for systemd's EnvironmentFile= (and bash's source).
realtime_edge_env_line() {
  local name="$1" value="$2" encoding="$3" sq="'" bs="\\\\" dq='"' dollar='$' bq='\`'
  if [[ $value == *$'\\n'* || $value == *$'\\r'* ]]; then
    realtime_edge_log "the value for \${name} contains a line break; refusing to write it"
    return 1
  fi
  if [[ $encoding == yaml-single-quoted ]]; then
    value="\${value//"$sq"/"$sq$sq"}"
  fi
  value="\${value//"$bs"/"$bs$bs"}"
  value="\${value//"$dq"/"$bs$dq"}"
  value="\${value//"$dollar"/"$bs$dollar"}"
  value="\${value//"$bq"/"$bs$bq"}"
  printf '%s="%s"\\n' "$name" "$value"
}`;

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .split('\n')
    .map((line) => (line === '' ? line : pad + line))
    .join('\n');
}

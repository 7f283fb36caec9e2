/**
 * The proxy hosts' certificate fetcher, run for real: bash, real openssl, and a stand-in `aws`
 * CLI on PATH that serves SSM parameters and Secrets Manager secrets from files.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { renderNginxApplyCommands, renderNginxTlsFetchScript } from '../nginx/host-scripts';
import { makeSelfSignedCertificate } from '../local/tls';
import { bashSyntaxError, makeTempDir, removeDir, shellcheck } from './servers-helpers';

const FAKE_AWS = `#!/usr/bin/env bash
# Stand-in for the AWS CLI: answers the two calls the fetcher makes from files under $FAKE_AWS_DATA.
set -euo pipefail
printf '%s\\n' "$*" >>"$FAKE_AWS_DATA/calls.log"
service=$1 operation=$2
shift 2
name=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --name | --secret-id) name=$2; shift 2 ;;
    *) shift ;;
  esac
done
file="$FAKE_AWS_DATA/$service/\${name//\\//_}"
if [[ ! -f $file ]]; then
  echo "An error occurred (ParameterNotFound) when calling the $operation operation" >&2
  exit 254
fi
cat "$file"
`;

let work: string;
let tlsDir: string;
let data: string;
let script: string;
let pair: { certificatePath: string; keyPath: string };
let otherPair: { certificatePath: string; keyPath: string };

function run(...args: string[]) {
  const result = spawnSync('bash', [script, ...args], {
    encoding: 'utf8',
    env: { PATH: `${path.join(work, 'bin')}:${process.env.PATH}`, FAKE_AWS_DATA: data, HOME: work },
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function serve(service: 'ssm' | 'secretsmanager', name: string, content: string): void {
  mkdirSync(path.join(data, service), { recursive: true });
  writeFileSync(path.join(data, service, name.replace(/\//g, '_')), content);
}

beforeAll(() => {
  work = makeTempDir('tls-fetch');
  tlsDir = path.join(work, 'tls');
  data = path.join(work, 'aws');
  mkdirSync(path.join(work, 'bin'), { recursive: true });
  mkdirSync(data, { recursive: true });
  writeFileSync(path.join(work, 'bin', 'aws'), FAKE_AWS);
  chmodSync(path.join(work, 'bin', 'aws'), 0o755);
  script = path.join(work, 'fetch-nginx-tls');
  writeFileSync(
    script,
    renderNginxTlsFetchScript({
      files: { directory: tlsDir, certificatePath: path.join(tlsDir, 'fullchain.pem'), keyPath: path.join(tlsDir, 'privkey.pem') },
      // "nginx" is running; a reload leaves a mark.
      isActiveCommand: ['true'],
      reloadCommand: ['touch', path.join(work, 'reloaded')],
    }),
  );
  pair = makeSelfSignedCertificate(path.join(work, 'pair'), { commonName: 'rt.example.com' });
  otherPair = makeSelfSignedCertificate(path.join(work, 'other'), { commonName: 'other.example.com' });
});

afterAll(() => removeDir(work));

test('the rendered script and the SSM document commands are shellcheck and bash -n clean', () => {
  const text = readFileSync(script, 'utf8');
  expect(shellcheck(text)).toBe('');
  expect(bashSyntaxError(text)).toBe('');
  const commands = renderNginxApplyCommands({ tlsScriptPath: '/usr/local/sbin/a', applyScriptPath: '/usr/local/sbin/b' }).join('\n');
  expect(shellcheck(`#!/bin/bash\n${commands}\n`)).toBe('');
});

test('installs certificate and key from SSM, key 0600, reloads nginx, prints no key material', () => {
  serve('ssm', '/edge/tls/certificate', readFileSync(pair.certificatePath, 'utf8'));
  serve('ssm', '/edge/tls/private-key', readFileSync(pair.keyPath, 'utf8'));
  const result = run('eu-west-1', 'ssm', '/edge/tls/certificate', '/edge/tls/private-key');
  expect(result).toMatchObject({ status: 0 });
  expect(readFileSync(path.join(tlsDir, 'fullchain.pem'), 'utf8')).toBe(readFileSync(pair.certificatePath, 'utf8'));
  expect(readFileSync(path.join(tlsDir, 'privkey.pem'), 'utf8')).toBe(readFileSync(pair.keyPath, 'utf8'));
  expect(statSync(path.join(tlsDir, 'privkey.pem')).mode & 0o777).toBe(0o600);
  expect(statSync(tlsDir).mode & 0o777).toBe(0o700);
  expect(existsSync(path.join(work, 'reloaded'))).toBe(true);
  expect(result.output).not.toContain('PRIVATE KEY');
  expect(readFileSync(path.join(data, 'calls.log'), 'utf8')).toContain('ssm get-parameter --with-decryption --region eu-west-1 --name /edge/tls/certificate');
});

test('an unchanged certificate is a no-op: no reload', () => {
  rmSync(path.join(work, 'reloaded'), { force: true });
  const result = run('eu-west-1', 'ssm', '/edge/tls/certificate', '/edge/tls/private-key');
  expect(result.status).toBe(0);
  expect(result.output).toContain('unchanged');
  expect(existsSync(path.join(work, 'reloaded'))).toBe(false);
});

test('a key that does not belong to the certificate is refused and the live files stay', () => {
  serve('ssm', '/edge/tls/wrong-key', readFileSync(otherPair.keyPath, 'utf8'));
  const result = run('eu-west-1', 'ssm', '/edge/tls/certificate', '/edge/tls/wrong-key');
  expect(result.status).not.toBe(0);
  expect(result.output).toContain('does not belong to the certificate');
  expect(readFileSync(path.join(tlsDir, 'privkey.pem'), 'utf8')).toBe(readFileSync(pair.keyPath, 'utf8'));
});

test('a missing parameter stops with its name', () => {
  const result = run('eu-west-1', 'ssm', '/edge/tls/missing', '/edge/tls/private-key');
  expect(result.status).not.toBe(0);
  expect(result.output).toContain('cannot read SSM parameter /edge/tls/missing in eu-west-1');
});

test('reads a Secrets Manager JSON secret; a secret without the fields is refused', () => {
  serve(
    'secretsmanager',
    'edge/tls-json',
    JSON.stringify({ certificate: readFileSync(otherPair.certificatePath, 'utf8'), privateKey: readFileSync(otherPair.keyPath, 'utf8') }),
  );
  const result = run('eu-west-1', 'secrets-manager', 'edge/tls-json', '-');
  expect(result.status).toBe(0);
  expect(readFileSync(path.join(tlsDir, 'fullchain.pem'), 'utf8')).toBe(readFileSync(otherPair.certificatePath, 'utf8'));
  serve('secretsmanager', 'edge/tls-bad', JSON.stringify({ cert: 'x' }));
  const bad = run('eu-west-1', 'secrets-manager', 'edge/tls-bad', '-');
  expect(bad.status).not.toBe(0);
  expect(bad.output).toContain('has no "certificate" field');
});

test('an unknown source and a bad path option are refused', () => {
  expect(run('eu-west-1', 'vault', 'x', 'y').output).toContain("unknown source 'vault'; allowed: ssm, secrets-manager");
  expect(() => renderNginxTlsFetchScript({ files: { directory: 'relative', certificatePath: '/a', keyPath: '/b' } })).toThrow(
    /files\.directory "relative" is not allowed/,
  );
});

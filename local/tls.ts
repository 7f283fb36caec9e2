/**
 * Self-signed certificates for the local topology and tests, made with the openssl CLI.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { isIP } from 'node:net';
import * as path from 'node:path';

export interface SelfSignedOptions {
  /** Subject CN, e.g. `localhost`. */
  readonly commonName: string;
  /** DNS names and IP addresses the certificate is valid for; default `[commonName]`. */
  readonly altNames?: readonly string[];
  /** Validity; default 30 days. */
  readonly days?: number;
  /** File name stem: `<name>.crt` and `<name>.key`; default `server`. */
  readonly name?: string;
}

export interface CertificateFiles {
  readonly certificatePath: string;
  readonly keyPath: string;
}

/**
 * Writes a self-signed ECDSA P-256 certificate and its key (mode 0600) into `dir` (created if
 * missing). The certificate is its own CA (`CA:TRUE`), so clients can trust it with `ca: <cert>`.
 */
export function makeSelfSignedCertificate(dir: string, options: SelfSignedOptions): CertificateFiles {
  const name = options.name ?? 'server';
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`makeSelfSignedCertificate: name ${JSON.stringify(name)}; allowed: letters, digits, . _ -`);
  if (!/^[A-Za-z0-9.*_-]+$/.test(options.commonName)) {
    throw new Error(`makeSelfSignedCertificate: commonName ${JSON.stringify(options.commonName)}; allowed: a host name or IP address`);
  }
  const altNames = options.altNames ?? [options.commonName];
  const subjectAltName = altNames
    .map((alt) => {
      if (isIP(alt) !== 0) return `IP:${alt}`;
      if (/^[A-Za-z0-9.*_-]+$/.test(alt)) return `DNS:${alt}`;
      throw new Error(`makeSelfSignedCertificate: altName ${JSON.stringify(alt)}; allowed: DNS names and IP addresses`);
    })
    .join(',');
  mkdirSync(dir, { recursive: true });
  const certificatePath = path.join(dir, `${name}.crt`);
  const keyPath = path.join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req', '-x509',
      '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
      '-nodes', '-sha256',
      '-days', String(options.days ?? 30),
      '-subj', `/CN=${options.commonName}`,
      '-addext', `subjectAltName=${subjectAltName}`,
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-keyout', keyPath,
      '-out', certificatePath,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  chmodSync(keyPath, 0o600);
  chmodSync(certificatePath, 0o644);
  return { certificatePath, keyPath };
}

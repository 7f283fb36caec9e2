/** The system tools the local topology runs, and how they get installed when missing. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where Debian's libnginx-mod-stream puts the dynamic stream module (loaded by absolute path). */
export const DEBIAN_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

/** The Debian/Ubuntu packages that provide every tool below. */
export const SYSTEM_PACKAGES = ['nginx', 'libnginx-mod-stream', 'redis-server', 'openssl'] as const;

export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface Prerequisite {
  readonly what: string;
  readonly present: boolean;
}

export function checkPrerequisites(streamModulePath = DEBIAN_STREAM_MODULE): Prerequisite[] {
  return [
    { what: 'nginx', present: findExecutable('nginx') !== undefined },
    { what: `nginx stream module (${streamModulePath})`, present: fs.existsSync(streamModulePath) },
    { what: 'redis-server', present: findExecutable('redis-server') !== undefined },
    { what: 'openssl', present: findExecutable('openssl') !== undefined },
  ];
}

export function isDebianLike(osRelease = '/etc/os-release'): boolean {
  try {
    return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(fs.readFileSync(osRelease, 'utf8'));
  } catch {
    return false;
  }
}

export const INSTALL_COMMAND = `sudo apt-get update && sudo apt-get install -y ${SYSTEM_PACKAGES.join(' ')}`;

export type InstallPlan =
  | { readonly kind: 'nothing-missing' }
  /** Install without asking: Debian/Ubuntu and root. */
  | { readonly kind: 'apt-get'; readonly packages: readonly string[] }
  /** Tell the user what to run, then exit 1. */
  | { readonly kind: 'manual'; readonly command: string };

/** What to do about missing tools on this kind of host. */
export function planInstall(missing: readonly string[], host: { readonly isRoot: boolean; readonly debianLike: boolean }): InstallPlan {
  if (missing.length === 0) return { kind: 'nothing-missing' };
  if (!host.debianLike) {
    return {
      kind: 'manual',
      command: `install nginx (with its stream module), redis-server and openssl with your package manager; on Debian/Ubuntu: ${INSTALL_COMMAND}`,
    };
  }
  if (!host.isRoot) return { kind: 'manual', command: INSTALL_COMMAND };
  return { kind: 'apt-get', packages: SYSTEM_PACKAGES };
}

function missingPrerequisites(): string[] {
  return checkPrerequisites()
    .filter((item) => !item.present)
    .map((item) => item.what);
}

/**
 * Installs what is missing with apt-get when that is possible without asking (Debian/Ubuntu, root).
 * Returns the missing items that remain, with the exact command to run when it could not install.
 */
export function ensurePrerequisites(log: (line: string) => void): { missing: string[]; hint?: string } {
  const missing = missingPrerequisites();
  const plan = planInstall(missing, {
    isRoot: typeof process.getuid === 'function' && process.getuid() === 0,
    debianLike: isDebianLike(),
  });
  if (plan.kind === 'nothing-missing') return { missing };
  if (plan.kind === 'manual') return { missing, hint: plan.command };
  log(`missing: ${missing.join(', ')}; installing with apt-get: ${plan.packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const aptGet = (...args: string[]) => spawnSync('apt-get', args, { stdio: 'inherit', env }).status === 0;
  const install = () => aptGet('install', '-y', '--no-install-recommends', ...plan.packages);
  const listsDir = '/var/lib/apt/lists';
  const listsEmpty = !fs.existsSync(listsDir) || !fs.readdirSync(listsDir).some((file) => file.endsWith('Packages'));
  if (listsEmpty) aptGet('update');
  // Stale package lists are the usual cause of a failed install; refresh once and retry.
  if (!install() && aptGet('update')) install();
  const remaining = missingPrerequisites();
  return remaining.length === 0 ? { missing: remaining } : { missing: remaining, hint: INSTALL_COMMAND.replace(/sudo /g, '') };
}

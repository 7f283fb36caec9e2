/**
 * The client URLs a frontend outputs: `wss://HOST[:PORT][PREFIX]CLIENTPATH` for each backend.
 */
import type { ServerProfile } from '../servers/profile';

export function clientUrl(host: string, profile: ServerProfile, options: { prefix?: string; port?: number } = {}): string {
  const port = options.port !== undefined && options.port !== 443 ? `:${options.port}` : '';
  return `wss://${host}${port}${options.prefix ?? ''}${profile.clientPath}`;
}

/** Where a backend is mounted when several share one frontend: the first at the root, every
 * other one under `/<name>` (stripped before proxying). The first backend keeps its plain paths;
 * the others cannot collide with it (both deepstream and Centrifugo serve `/api`). */
export function mountPrefix(profile: ServerProfile, index: number): string | undefined {
  return index === 0 ? undefined : `/${profile.name}`;
}

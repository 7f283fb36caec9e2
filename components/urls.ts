/**
 * The client URLs a frontend outputs: `wss://HOST[:PORT][PREFIX]CLIENTPATH` for each backend.
 */
import type { ServerProfile } from '../servers/profile';

export function clientUrl(host: string, profile: ServerProfile, options: { prefix?: string; port?: number } = {}): string {
  const port = options.port !== undefined && options.port !== 443 ? `:${options.port}` : '';
  return `wss://${host}${port}${options.prefix ?? ''}${profile.clientPath}`;
}

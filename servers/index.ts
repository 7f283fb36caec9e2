/**
 * The realtime servers realtime-edge can deploy, by name. Everything outside `servers/` reaches a
 * backend through this registry and the `ServerBackend` interface, never by importing one.
 */
import { centrifugoBackend } from './centrifugo';
import { deepstreamBackend } from './deepstream';
import type { ServerBackend } from './profile';

export type ServerBackendName = 'deepstream' | 'centrifugo';

export const serverBackends: Readonly<Record<ServerBackendName, ServerBackend>> = {
  deepstream: deepstreamBackend,
  centrifugo: centrifugoBackend,
};

export const SERVER_BACKEND_NAMES: readonly ServerBackendName[] = ['deepstream', 'centrifugo'];

/** The backend called `name`, or an error naming the allowed names. */
export function serverBackend(name: string): ServerBackend {
  if (!(SERVER_BACKEND_NAMES as readonly string[]).includes(name)) {
    throw new Error(`server backend ${JSON.stringify(name)} is unknown; allowed: ${SERVER_BACKEND_NAMES.join(', ')}`);
  }
  return serverBackends[name as ServerBackendName];
}

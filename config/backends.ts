/**
 * The realtime servers a stack can enable, keyed by the name used in config keys
 * (`backends`, `<name>Nodes`, `<name>InstanceType`, `<name>Version`).
 *
 * Config needs three facts per server, its proxy profile (for the ping-interval rule), its default
 * pinned version and whether it verifies a downloaded release archive, and takes them from the
 * server registry: registering a server in `servers/` generates its config keys, declarations
 * and docs.
 */
import { SERVER_BACKEND_NAMES, serverBackends, type ServerBackendName } from '../servers';
import type { ServerBackend } from '../servers/profile';

export type BackendName = ServerBackendName;

/** Registry order; config output and docs follow it. */
export const BACKEND_NAMES: readonly BackendName[] = SERVER_BACKEND_NAMES;

export const backendCatalog: Readonly<Record<BackendName, Pick<ServerBackend, 'profile' | 'defaultVersion' | 'verifiesReleaseArchive'>>> = serverBackends;

/** Servers whose nodes verify a downloaded release archive (`ServerBackend.verifiesReleaseArchive`);
 * they get `<name>ReleaseSha256` and `<name>AllowUnpinnedRelease`. */
export const installsVerifiedReleaseArchive: Readonly<Record<BackendName, boolean>> = Object.fromEntries(
  BACKEND_NAMES.map((name) => [name, serverBackends[name].verifiesReleaseArchive ?? false]),
) as Record<BackendName, boolean>;

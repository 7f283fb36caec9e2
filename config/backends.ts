/**
 * The realtime servers a stack can enable, keyed by the name used in config keys
 * (`backends`, `<name>Nodes`, `<name>InstanceType`, `<name>Version`).
 *
 * Config needs two facts per server, its proxy profile (for the ping-interval rule) and its default
 * pinned version, and takes both from the server registry: registering a server in `servers/`
 * generates its config keys, declarations and docs.
 */
import { SERVER_BACKEND_NAMES, serverBackends, type ServerBackendName } from '../servers';
import type { ServerBackend } from '../servers/profile';

export type BackendName = ServerBackendName;

export const backendCatalog: Readonly<Record<BackendName, Pick<ServerBackend, 'profile' | 'defaultVersion'>>> = serverBackends;

/**
 * Servers installed from a downloaded release archive that the node verifies against pinned sha256
 * values (per CPU architecture); they get `<name>ReleaseSha256` and `<name>AllowUnpinnedRelease`.
 * deepstream installs from npm. Typed per name so a new server has to decide.
 */
export const installsVerifiedReleaseArchive: Readonly<Record<BackendName, boolean>> = {
  deepstream: false,
  centrifugo: true,
};

/** Registry order; config output and docs follow it. */
export const BACKEND_NAMES: readonly BackendName[] = SERVER_BACKEND_NAMES;

/**
 * realtime-edge as a library (package.json `main`: dist/lib.js). Everything another Pulumi
 * program or tool may use is exported here and only here: the components, the pure renderers
 * behind them, the server registry and the stack-config parser.
 *
 *   import { RealtimeEdge, loadStackFile } from 'realtime-edge';
 *   const edge = new RealtimeEdge('edge', loadStackFile('Pulumi.prod.yaml'));
 */

// ---- components (Pulumi resources) ----------------------------------------------------------
export { RealtimeEdge, edgeNetwork, type EdgeNetwork } from './components/realtimeEdge';
export {
  NginxProxy,
  NGINX_PROXY_DEFAULTS,
  NGINX_HOST_SCRIPTS,
  type NginxProxyArgs,
  type NginxProxyBackend,
  type NginxTlsSource,
} from './components/nginxProxy';
export {
  ServerCluster,
  DeepstreamCluster,
  CentrifugoCluster,
  type ServerClusterArgs,
  type BackendClusterArgs,
  type ClusterRedisArgs,
  type ClusterNode,
} from './components/cluster';
export {
  Redis,
  REDIS_DEFAULTS,
  type RedisArgs,
  type ManagedRedisArgs,
  type ExistingRedisArgs,
} from './components/redis';
export {
  AlbFrontend,
  ALB_DEFAULTS,
  ALB_TLS_POLICY,
  ALB_TLS12_POLICY_PATTERNS,
  ALB_RULE_PRIORITIES,
  checkAlbSslPolicy,
  albRoutes,
  albOriginRules,
  ORIGIN_REFUSED_MESSAGE,
  type AlbOriginRules,
  type AlbFrontendArgs,
  type AlbBackendArgs,
  type AlbRoute,
} from './components/albFrontend';
export {
  HostGroup,
  HOST_DEFAULTS,
  architectureOfInstanceType,
  amazonLinux2023Ami,
  encodeUserData,
  decodeUserData,
  type HostGroupArgs,
  type HostSpec,
  type CpuArchitecture,
} from './components/host';
export type { RenderedArtifact } from './components/artifacts';
export { clientUrl } from './components/urls';

// ---- renderers (plain data in, text out) ------------------------------------------------------
export {
  renderNginxConf,
  renderErrorPage,
  nginxCapacity,
  colocatedWorkerProcesses,
  defaultIdleTimeoutSeconds,
  NGINX_DEFAULTS,
  NginxSpecError,
  TLS_PROTOCOLS,
  TLS_CIPHERS,
  type NginxCapacity,
} from './nginx/conf';
export type {
  NginxSpec,
  BalanceSpec,
  BalanceStrategy,
  BackendMount,
  UpstreamServer,
  TlsSpec,
  HttpFrontendSpec,
  StreamListenerSpec,
  NginxTimeouts,
  NginxPaths,
} from './nginx/spec';
export {
  renderNginxBuildScript,
  renderNginxApplyConfigScript,
  renderNginxSystemdUnit,
  renderNginxSysctl,
  renderNginxLogrotate,
  nginxConfigureArgs,
  NGINX_STABLE_VERSION,
  NGINX_RELEASE_SIGNING_KEYS,
  type NginxBuildOptions,
  type NginxApplyConfigOptions,
} from './nginx/build';
export {
  proxyNginxSpec,
  proxyHostDeployment,
  NGINX_HOST_ERROR_PAGE_ROOT,
  proxyListenerPorts,
  proxyBackendMount,
  proxyBackendPrefix,
  proxyStreamPort,
  mountPrefix,
  streamBalanceOf,
  type ProxySettings,
  type ProxyBackend,
  type ProxyDeployment,
  type ProxyNodeAddress,
} from './nginx/proxy-spec';
export {
  renderNginxTlsFetchScript,
  renderNginxApplyCommands,
  NGINX_HOST_TLS_FILES,
  NGINX_APPLY_DOCUMENT_PARAMETERS,
  type NginxTlsFetchOptions,
  type NginxTlsFiles,
  type NginxApplyCommandsOptions,
} from './nginx/host-scripts';
export { renderBootstrapScript, type BootstrapScriptSpec, type BootstrapStep } from './servers/bootstrap';

// ---- realtime servers -----------------------------------------------------------------------
export { serverBackends, serverBackend, SERVER_BACKEND_NAMES, type ServerBackendName } from './servers';
export { renderDeepstreamConfig, createDeepstreamBackend, deepstreamProfile } from './servers/deepstream';
export { renderCentrifugoConfig, createCentrifugoBackend, centrifugoProfile } from './servers/centrifugo';
export { proxyEnforcesOrigins, maxPingIntervalSeconds } from './servers/profile';
export type {
  ServerBackend,
  ServerProfile,
  ProxyRoute,
  RouteKind,
  NodeRenderInput,
  RedisEndpoint,
  SecretSpec,
  RenderedFile,
} from './servers/profile';

// ---- stack configuration --------------------------------------------------------------------
export {
  parseStackConfig,
  loadStackFile,
  readPulumiConfig,
  resolveStackFile,
  StackConfigError,
  type StackConfigIssue,
} from './config/stack';
export { CONFIG_KEYS, CONFIG_NAMESPACE, type ConfigKeySpec } from './config/schema';
export type {
  StackConfig,
  BackendName,
  BackendSettings,
  Frontend,
  ProxyMode,
  TlsConfig,
  TlsSource,
  RedisConfig,
  VpcConfig,
  NginxProxyConfig,
  AlbConfig,
} from './config/types';

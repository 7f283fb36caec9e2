import type { ServerProfile } from './profile';

/** deepstream.io v7: one port serves the WebSocket endpoint, the HTTP API and the health check. */
export const deepstreamProfile: ServerProfile = {
  name: 'deepstream',
  displayName: 'deepstream.io',
  port: 6020,
  routes: [
    { path: '/deepstream', kind: 'websocket' },
    { path: '/api', kind: 'http' },
    { path: '/health-check', kind: 'http', exact: true },
  ],
  healthPath: '/health-check',
  clientPath: '/deepstream',
  // connectionEndpoints[].options.heartbeatInterval defaults to 30000 ms.
  pingIntervalSeconds: 30,
};

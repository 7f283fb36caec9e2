import type { ServerProfile } from './profile';

/** Centrifugo v6: WebSocket and the other real-time transports under /connection/, the server API,
 * the bidirectional emulation endpoint, the health check and the admin web UI, all on one port. */
export const centrifugoProfile: ServerProfile = {
  name: 'centrifugo',
  displayName: 'Centrifugo',
  port: 8000,
  routes: [
    // Covers /connection/websocket, /connection/http_stream, /connection/sse, /connection/uni_*.
    { path: '/connection/', kind: 'websocket' },
    { path: '/emulation', kind: 'http' },
    { path: '/api', kind: 'http' },
    { path: '/health', kind: 'http', exact: true },
    // Admin web UI and its /admin/ API.
    { path: '/', kind: 'http' },
  ],
  healthPath: '/health',
  clientPath: '/connection/websocket',
  // Centrifugo pings every 25 s by default (client.ping_interval).
  pingIntervalSeconds: 25,
};

'use strict';
// deepstream 7 lists uWebSockets.js (a git dependency) but only loads it for the uws endpoints.
// realtime-edge configures the ws-based endpoints; anything that reaches for uWS fails loudly.
throw new Error('uWebSockets.js is not installed: realtime-edge uses deepstream\'s ws-based endpoints (see README)');

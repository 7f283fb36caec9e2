'use strict';
/**
 * Starts one deepstream node on a rendered config.yml: `node deepstream-launcher.js CONFIG`.
 *
 * Why not `deepstream start -c CONFIG`: that CLI calls process.exit(1) on every FATAL_EXCEPTION,
 * whatever `exitOnFatalError` says, and the Redis plugins report each lost Redis connection as
 * fatal. A Redis restart of a few seconds would end every node. Started through the library, the
 * node logs the error and stays up; ioredis reconnects and resubscribes, and cluster messages and
 * the record cache resume without restarting the node.
 */
const { Deepstream } = require('@deepstream/server');

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node deepstream-launcher.js CONFIG_FILE');
  process.exit(2);
}

const server = new Deepstream(configPath);
server.on('FATAL_EXCEPTION', () => {
  console.error('deepstream reported a fatal error (see above); staying up so its plugins can reconnect');
});
server.start();

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    server.on('stopped', () => process.exit(0));
    server.stop();
    setTimeout(() => process.exit(0), 3000).unref();
  });
}

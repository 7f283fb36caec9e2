/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  // Integration tests start real nginx, redis and deepstream processes.
  testTimeout: 120000,
  maxWorkers: 2,
  // On a loaded 2-core machine a finished worker can take longer than jest's default 500 ms to exit.
  workerGracefulExitTimeout: 5000,
};

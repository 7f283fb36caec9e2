import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { sampleProcesses, threadCpuNanoseconds } from '../bench/procfs';

// A process whose main thread idles while a worker thread sleeps 300 times: each sleep is a
// voluntary context switch of the worker only, which /proc/<pid>/status alone does not show.
const SLEEPS = 300;
const SCRIPT = `
const { Worker } = require('node:worker_threads');
process.stdout.write('ready\\n');
process.stdin.once('data', () => {
  const worker = new Worker(
    // Stays alive after its sleeps: an exited thread's counts leave /proc with it.
    'const { parentPort } = require("node:worker_threads"); const cell = new Int32Array(new SharedArrayBuffer(4));' +
      'for (let i = 0; i < ${SLEEPS}; i += 1) Atomics.wait(cell, 0, 0, 2); parentPort.postMessage("slept"); Atomics.wait(cell, 0, 0);',
    { eval: true },
  );
  worker.on('message', () => process.stdout.write('done\\n'));
});
`;

describe('sampleProcesses', () => {
  it('counts the context switches of every thread of a process, not only its main thread', async () => {
    const child = spawn(process.execPath, ['-e', SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const lines: string[] = [];
      const nextLine = async (expected: string): Promise<void> => {
        while (!lines.includes(expected)) {
          const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
          lines.push(...chunk.toString('utf8').split('\n'));
        }
      };
      await nextLine('ready');
      const before = sampleProcesses([child.pid!]);
      child.stdin.write('go\n');
      await nextLine('done');
      const after = sampleProcesses([child.pid!]);
      expect(after.contextSwitches - before.contextSwitches).toBeGreaterThanOrEqual(SLEEPS);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

// A child that spins for a while and reports its own process.cpuUsage() before and after.
const SPIN_SCRIPT = `
const report = () => process.stdout.write(JSON.stringify(process.cpuUsage()) + '\\n');
report();
process.stdin.once('data', () => {
  const until = Date.now() + 400;
  while (Date.now() < until) {}
  report();
});
`;

describe('sampleProcesses CPU time', () => {
  it("reads utime + stime (and schedstat per thread): a busy child's CPU time matches its own process.cpuUsage()", async () => {
    const child = spawn(process.execPath, ['-e', SPIN_SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      let buffered = '';
      const nextUsage = async (): Promise<number> => {
        while (!buffered.includes('\n')) {
          const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
          buffered += chunk.toString('utf8');
        }
        const [line, ...rest] = buffered.split('\n');
        buffered = rest.join('\n');
        const usage = JSON.parse(line!) as { user: number; system: number };
        return (usage.user + usage.system) / 1e6;
      };
      const ownBefore = await nextUsage();
      const before = sampleProcesses([child.pid!]);
      const threadsBefore = threadCpuNanoseconds([child.pid!]);
      const wallStarted = performance.now();
      child.stdin.write('go\n');
      const ownAfter = await nextUsage();
      const after = sampleProcesses([child.pid!]);
      const threadsAfter = threadCpuNanoseconds([child.pid!]);
      const wallSeconds = (performance.now() - wallStarted) / 1000;
      const own = ownAfter - ownBefore;
      const measured = after.cpuSeconds - before.cpuSeconds;
      expect(own).toBeGreaterThanOrEqual(0.2);
      // /proc counts in 10 ms ticks; the child also runs a little outside its own two readings.
      expect(measured).toBeGreaterThanOrEqual(own - 0.05);
      expect(measured).toBeLessThanOrEqual(Math.min(own + 0.1, wallSeconds + 0.02));
      // schedstat counts nanoseconds of every thread: no tick rounding, yet the same CPU time.
      const threads = (threadsAfter - threadsBefore) / 1e9;
      expect(threads).toBeGreaterThanOrEqual(own - 0.01);
      expect(threads).toBeLessThanOrEqual(Math.min(own + 0.1, wallSeconds + 0.02));
    } finally {
      child.kill('SIGKILL');
    }
  });
});

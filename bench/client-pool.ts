/**
 * The benchmark's side of its client processes: forks bench/client-worker.ts through tsx's loader and
 * turns the message protocol into promises.
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type {
  ConnectReply,
  ConnectRequest,
  DeliveryReply,
  FailoverClientReport,
  StatusReply,
  WorkerReply,
  WorkerRequest,
} from './worker-protocol';

const WORKER_SCRIPT = path.join(__dirname, 'client-worker.ts');
const TSX_LOADER = pathToFileURL(path.join(path.dirname(require.resolve('tsx/package.json')), 'dist', 'loader.mjs')).href;

type Body<T extends WorkerRequest['op']> = Omit<Extract<WorkerRequest, { op: T }>, 'id' | 'op'>;

export class ClientWorker {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private readonly deliveredListeners = new Set<(seq: number) => void>();
  private exitError: Error | null = null;

  private constructor(
    readonly index: number,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (message: WorkerReply) => {
      if (message.op === 'delivered') {
        for (const listener of this.deliveredListeners) listener(message.seq);
      } else if (message.op === 'reply') {
        const waiter = this.pending.get(message.id);
        if (!waiter) return;
        this.pending.delete(message.id);
        if (message.ok) waiter.resolve(message.value);
        else waiter.reject(new Error(`client worker ${index}: ${message.error}`));
      }
    });
    child.on('exit', (code, signal) => {
      this.exitError = new Error(`client worker ${index} exited (code ${code}, signal ${signal})`);
      for (const waiter of this.pending.values()) waiter.reject(this.exitError);
      this.pending.clear();
    });
  }

  static start(index: number): Promise<ClientWorker> {
    const child = fork(WORKER_SCRIPT, [], {
      execArgv: ['--import', TSX_LOADER],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client worker ${index} did not start within 30 s`)), 30_000);
      child.once('message', (message: WorkerReply) => {
        clearTimeout(timer);
        if (message.op === 'ready') resolve(new ClientWorker(index, child));
        else reject(new Error(`client worker ${index} sent ${message.op} before ready`));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`client worker ${index} exited with code ${code} while starting`));
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private call<T>(op: WorkerRequest['op'], body: object = {}): Promise<T> {
    if (this.exitError) return Promise.reject(this.exitError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ ...body, op, id } as WorkerRequest);
    });
  }

  connect(request: Omit<ConnectRequest, 'op'>): Promise<ConnectReply> {
    return this.call('connect', request);
  }
  status(): Promise<StatusReply> {
    return this.call('status');
  }
  resetCounters(): Promise<void> {
    return this.call('resetCounters');
  }
  subscribe(request: Body<'subscribe'>): Promise<void> {
    return this.call('subscribe', request);
  }
  resetDeliveries(): Promise<void> {
    return this.call('resetDeliveries');
  }
  collectDeliveries(): Promise<DeliveryReply> {
    return this.call('collectDeliveries');
  }
  identify(): Promise<Array<string | null>> {
    return this.call('identify');
  }
  markFailover(): Promise<void> {
    return this.call('markFailover');
  }
  failoverReport(from: number, to: number): Promise<FailoverClientReport[]> {
    return this.call('failoverReport', { from, to });
  }
  closeAll(): Promise<void> {
    return this.call('closeAll');
  }
  onDelivered(listener: (seq: number) => void): () => void {
    this.deliveredListeners.add(listener);
    return () => this.deliveredListeners.delete(listener);
  }

  /** Ends the process (its clients' sockets close with it). */
  async stop(): Promise<void> {
    if (this.exitError || this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

export async function startClientWorkers(count: number): Promise<ClientWorker[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, (_, index) => ClientWorker.start(index)));
  const workers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) {
    await Promise.all(workers.map((worker) => worker.stop()));
    throw failed.reason;
  }
  return workers;
}

export async function stopClientWorkers(workers: readonly ClientWorker[]): Promise<void> {
  await Promise.all(workers.map((worker) => worker.stop()));
}

// A pass over a CSV file parsed in worker threads (dist/csv-worker.js): one worker that stays
// ahead of the consumer, or several that each parse their share of the file's blocks (the
// `workers` option), merged back here in the file's order.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { InputError, type Batch } from '../data.js';
import type { CsvJob } from './csv-stream.js';

/** The worker's file beside this module in a build (dist/), or null (sources run by a test runner). */
export function csvWorkerFile(): URL | null {
  try {
    const url = new URL('./csv-worker.js', import.meta.url);
    return url.protocol === 'file:' && existsSync(fileURLToPath(url)) ? url : null;
  } catch {
    return null;
  }
}

/** Messages the worker may have sent ahead of the consumer. */
const WORKER_AHEAD = 8;
/**
 * Bytes of rows per message, at least: a message costs the worker a fixed price (a tenth of its
 * time at one 4096-row batch of 10 columns per message), so it sends several batches at once.
 */
const MESSAGE_BYTES = 1 << 20;

/** Batches per worker message: about MESSAGE_BYTES of features, whole batches, at least one. */
export function batchesPerMessage(job: CsvJob): number {
  const rowBytes = 4 * Math.max(1, job.head.width);
  return Math.max(1, Math.floor(MESSAGE_BYTES / (rowBytes * job.batchRows)));
}

/**
 * The batches of one pass, parsed in a worker thread that stays up to WORKER_AHEAD messages
 * ahead; a message holds several batches' rows, handed on as views of its buffers.
 */
export async function* workerPass(file: URL, job: CsvJob): AsyncGenerator<Batch> {
  const worker = new Worker(file, { workerData: { job: { ...job, batchRows: job.batchRows * batchesPerMessage(job) }, ahead: WORKER_AHEAD } });
  const rowsPerBatch = job.batchRows;
  const queue: WorkerMessage[] = [];
  let wake: (() => void) | null = null, exited = false;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  worker.on('message', (m: WorkerMessage) => {
    queue.push(m);
    notify();
  });
  worker.on('error', (e) => {
    queue.push({ kind: 'error', message: e.message, input: false });
    notify();
  });
  worker.on('exit', () => {
    exited = true;
    notify();
  });
  try {
    for (;;) {
      const m = queue.shift();
      if (!m) {
        if (exited) throw new InputError(`${job.head.path}: the CSV worker ended before the end of the file`);
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      if (m.kind === 'batch') {
        worker.postMessage('more');
        const cols = m.x.length / Math.max(1, m.n);
        for (let r = 0; r < m.n; r += rowsPerBatch) {
          const n = Math.min(rowsPerBatch, m.n - r);
          yield { x: { data: m.x.subarray(r * cols, (r + n) * cols), shape: [n, cols] as [number, number] }, y: m.y.subarray(r, r + n) };
        }
      } else if (m.kind === 'error') {
        throw m.input ? new InputError(m.message) : new Error(m.message);
      } else {
        return;
      }
    }
  } finally {
    await worker.terminate();
  }
}

/**
 * The batches of one pass, parsed by `count` worker threads, each its share of the file's blocks
 * (FileShare), merged here in the file's order into batches of job.batchRows: the same batches,
 * rows and errors as one parser. A worker's messages come in its blocks' order, so its error is
 * met when the merge reaches the block it is in, after every row before it.
 */
export async function* sharedPass(file: URL, job: CsvJob, count: number): AsyncGenerator<Batch> {
  const perMessage = job.batchRows * batchesPerMessage(job);
  const threads = Array.from({ length: count }, (_, index) => {
    const t = { worker: new Worker(file, { workerData: { job: { ...job, batchRows: perMessage }, ahead: WORKER_AHEAD, share: { of: count, index } } }),
      queue: [] as WorkerMessage[], exited: false };
    t.worker.on('message', (m: WorkerMessage) => {
      t.queue.push(m);
      notify();
    });
    t.worker.on('error', (e) => {
      t.queue.push({ kind: 'error', message: e.message, input: false });
      notify();
    });
    t.worker.on('exit', () => {
      t.exited = true;
      notify();
    });
    return t;
  });
  let wake: (() => void) | null = null;
  const notify = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const next = async (t: (typeof threads)[number]): Promise<WorkerMessage> => {
    for (;;) {
      const m = t.queue.shift();
      if (m) return m;
      if (t.exited) throw new InputError(`${job.head.path}: the CSV worker ended before the end of the file`);
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  const cols = job.head.width - 1, rows = job.batchRows;
  const newY = (): Float32Array | Int32Array => (job.classes ? new Int32Array(rows) : new Float32Array(rows));
  let x = new Float32Array(rows * cols), y = newY(), n = 0;
  try {
    for (let block = 0; ; block++) {
      const t = threads[block % count];
      for (let last = false; !last;) {
        const m = await next(t);
        if (m.kind === 'error') throw m.input ? new InputError(m.message) : new Error(m.message);
        if (m.kind === 'done') {
          if (n > 0) yield { x: { data: x.subarray(0, n * cols), shape: [n, cols] }, y: y.subarray(0, n) };
          return;
        }
        t.worker.postMessage('more');
        last = m.last ?? true;
        // the message's rows into whole batches
        for (let r = 0; r < m.n;) {
          const take = Math.min(rows - n, m.n - r);
          x.set(m.x.subarray(r * cols, (r + take) * cols), n * cols);
          y.set(m.y.subarray(r, r + take), n);
          n += take;
          r += take;
          if (n === rows) {
            yield { x: { data: x, shape: [rows, cols] }, y };
            x = new Float32Array(rows * cols);
            y = newY();
            n = 0;
          }
        }
      }
    }
  } finally {
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }
}

export type WorkerMessage =
  | { kind: 'batch'; x: Float32Array; y: Float32Array | Int32Array; n: number; last?: boolean }
  | { kind: 'error'; message: string; input: boolean }
  | { kind: 'done' };

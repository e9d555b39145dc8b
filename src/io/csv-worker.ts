// The CSV worker (dist/csv-worker.js): parses a pass over a file (csv-stream.ts's localPass) on
// its own thread and posts the batches, their buffers transferred, staying a few batches ahead of
// the consumer, so that parsing overlaps training.
import { parentPort, workerData } from 'node:worker_threads';
import { InputError, type Batch } from '../data.js';
import { localPass, sharePass, type CsvJob, type FileShare } from './csv-stream.js';
import type { WorkerMessage } from './csv-workers.js';

const { job, ahead, share } = workerData as { job: CsvJob; ahead: number; share?: FileShare };
const port = parentPort!;
let credits = ahead, waiting: (() => void) | null = null;
port.on('message', () => {
  credits++;
  const w = waiting;
  waiting = null;
  w?.();
});

async function run(): Promise<void> {
  try {
    const batches = share ? sharePass(job, share) : mapped(localPass(job));
    for await (const { batch: b, last } of batches) {
      while (credits === 0) await new Promise<void>((resolve) => (waiting = resolve));
      credits--;
      const x = (b.x as { data: Float32Array }).data, y = b.y as Float32Array | Int32Array;
      // the batch's own buffers, whole (a last, partial batch is a view: copy it)
      const xs = x.byteOffset === 0 && x.byteLength === x.buffer.byteLength ? x : x.slice();
      const ys = y.byteOffset === 0 && y.byteLength === y.buffer.byteLength ? y : y.slice();
      const m: WorkerMessage = { kind: 'batch', x: xs, y: ys, n: ys.length, last };
      port.postMessage(m, [xs.buffer as ArrayBuffer, ys.buffer as ArrayBuffer]);
    }
    port.postMessage({ kind: 'done' } satisfies WorkerMessage);
  } catch (e) {
    port.postMessage({ kind: 'error', message: (e as Error).message, input: e instanceof InputError } satisfies WorkerMessage);
  }
  // the consumer ends the thread once it has the last message
}

async function* mapped(pass: AsyncGenerator<Batch>): AsyncGenerator<{ batch: Batch; last: boolean }> {
  for await (const batch of pass) yield { batch, last: true };
}

void run();

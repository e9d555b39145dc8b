// The CSV worker (dist/csv-worker.js): parses a pass over a file (csv-stream.ts's localPass) on
// its own thread and posts the batches, their buffers transferred, staying a few batches ahead of
// the consumer, so that parsing overlaps training.
import { parentPort, workerData } from 'node:worker_threads';
import { InputError } from '../data.js';
import { localPass, type CsvJob, type WorkerMessage } from './csv-stream.js';

const { job, ahead } = workerData as { job: CsvJob; ahead: number };
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
    for await (const b of localPass(job)) {
      while (credits === 0) await new Promise<void>((resolve) => (waiting = resolve));
      credits--;
      const x = (b.x as { data: Float32Array }).data, y = b.y as Float32Array | Int32Array;
      // the batch's own buffers, whole (a last, partial batch is a view: copy it)
      const xs = x.byteOffset === 0 && x.byteLength === x.buffer.byteLength ? x : x.slice();
      const ys = y.byteOffset === 0 && y.byteLength === y.buffer.byteLength ? y : y.slice();
      const m: WorkerMessage = { kind: 'batch', x: xs, y: ys, n: ys.length };
      port.postMessage(m, [xs.buffer as ArrayBuffer, ys.buffer as ArrayBuffer]);
    }
    port.postMessage({ kind: 'done' } satisfies WorkerMessage);
  } catch (e) {
    port.postMessage({ kind: 'error', message: (e as Error).message, input: e instanceof InputError } satisfies WorkerMessage);
  }
  // the consumer ends the thread once it has the last message
}

void run();

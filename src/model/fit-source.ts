// Fitting and evaluating from a source of batches (data larger than memory): each epoch streams
// the source's rows through a bounded, seeded shuffle buffer into blocks of whole batches, which
// the same batch loop as an in-memory fit trains (fit.ts), while the next batches are read ahead.
import { InputError, isBatchSource, toMatrix, type Batch, type BatchSource, type Matrix, type MatrixInput, type TargetInput } from '../data.js';
import { scheduledRate } from '../spec.js';
import {
  accumulatorFor, addValidation, checkWeights, endEpoch, epochLogs, evaluateNetwork, finishLoop, metricsOf, newRun, now, startLoop, trainRun,
  type CheckpointSaver, type Evaluation, type FitClock, type FitControl, type FitOptions, type History,
} from './fit.js';
import type { Network } from './network.js';

const DEFAULT_SHUFFLE_BUFFER = 16_384;
/** The default buffer holds fewer rows when they are wide (784 pixels: about 10,000 rows). */
const DEFAULT_SHUFFLE_BYTES = 32 * 1024 * 1024;
const DEFAULT_PREFETCH = 4;
/** Rows of a block (rounded up to whole batches): enough that a block's bookkeeping is noise. */
const BLOCK_ROWS = 4096;

/** The chunks of one pass over a source, converted and checked, with `depth` of them read ahead. */
class ReadAhead {
  private readonly it: AsyncIterator<Batch>;
  private readonly ready: Batch[] = [];
  private pending: Promise<void> | null = null;
  private done = false;
  private failure: { error: unknown } | null = null;
  /** Chunks handed out so far (for messages). */
  count = 0;

  constructor(source: BatchSource, private readonly depth: number, private readonly what: string) {
    const it = source[Symbol.asyncIterator]();
    if (it === null || typeof it !== 'object' || typeof it.next !== 'function') {
      throw new InputError(`${what}: [Symbol.asyncIterator]() must return an async iterator, got ${it === null ? 'null' : typeof it}`);
    }
    this.it = it;
    this.pump();
  }

  /** Keeps one request in flight while fewer than `depth` chunks wait: reading overlaps training. */
  private pump(): void {
    if (this.pending || this.done || this.failure || this.ready.length >= this.depth) return;
    let request: Promise<IteratorResult<Batch>>;
    try {
      request = Promise.resolve(this.it.next());
    } catch (e) {
      this.failure = { error: e };
      return;
    }
    this.pending = request.then((r) => {
      this.pending = null;
      if (r.done) this.done = true;
      else this.ready.push(r.value);
      this.pump();
    }, (e: unknown) => {
      this.pending = null;
      this.failure = { error: e };
    });
  }

  /** The next chunk, or null at the end of the pass; rethrows the source's error. */
  async next(): Promise<Batch | null> {
    for (;;) {
      if (this.ready.length > 0) {
        const b = this.ready.shift()!;
        this.count++;
        this.pump();
        return b;
      }
      if (this.failure) throw this.failure.error;
      if (this.done) return null;
      this.pump();
      await this.pending;
    }
  }

  /** Ends the pass early (a stop, an error): lets the source close its files. */
  async close(): Promise<void> {
    this.done = true;
    try {
      await this.pending;
    } catch {
      // the pass is being abandoned
    }
    if (typeof this.it.return === 'function') {
      try {
        await this.it.return(undefined);
      } catch {
        // closing after a failure: the first error is the one to report
      }
    }
  }
}

/**
 * The bounded shuffle: `capacity` rows wait in a buffer; every row that comes in sends a random
 * waiting row (seeded) to the block being filled and takes its place, and at the end of the pass
 * the waiting rows go out in a random order. Rows are handled one at a time, so the order depends
 * on the seed and the rows, not on how the source cut them into batches. Without shuffling
 * (capacity 0) rows go to the block as they come. Synchronous, so that the row copies run as
 * plain loops (not in an async function's heap context).
 */
export class RowShuffler {
  readonly block: Float32Array;
  readonly blockY: Float32Array;
  inBlock = 0;
  private readonly bufX: Float32Array;
  private readonly bufY: Float32Array;
  private filled = 0;
  private rng: { int(n: number): number } = { int: () => 0 };

  constructor(private readonly cols: number, private readonly outs: number, private readonly blockRows: number, private readonly capacity: number) {
    this.block = new Float32Array(blockRows * cols);
    this.blockY = new Float32Array(blockRows * outs);
    this.bufX = new Float32Array(capacity * cols);
    this.bufY = new Float32Array(capacity * outs);
  }

  reset(rng: { int(n: number): number }): void {
    this.rng = rng;
    this.filled = 0;
    this.inBlock = 0;
  }

  blockFull(): boolean {
    return this.inBlock === this.blockRows;
  }

  /** The block's rows so far, as views. */
  blockMatrices(): [Matrix, Matrix] {
    const n = this.inBlock, c = this.cols, o = this.outs;
    return [{ data: this.block.subarray(0, n * c), shape: [n, c] }, { data: this.blockY.subarray(0, n * o), shape: [n, o] }];
  }

  /** Takes rows [from, to) of (x, y) until the block is full; returns the next row to take. */
  take(x: Float32Array, y: Float32Array, from: number, to: number): number {
    const c = this.cols, o = this.outs, cap = this.capacity, bx = this.bufX, by = this.bufY;
    let i = from;
    for (; i < to && this.inBlock < this.blockRows; i++) {
      if (this.filled < cap) {
        const f = this.filled++;
        for (let j = 0; j < c; j++) bx[f * c + j] = x[i * c + j];
        for (let j = 0; j < o; j++) by[f * o + j] = y[i * o + j];
      } else if (cap === 0) {
        this.emit(x, y, i);
      } else {
        const k = this.rng.int(cap);
        this.emit(bx, by, k);
        for (let j = 0; j < c; j++) bx[k * c + j] = x[i * c + j];
        for (let j = 0; j < o; j++) by[k * o + j] = y[i * o + j];
      }
    }
    return i;
  }

  /** End of the pass: waiting rows to the block in a random order; true when the block filled up. */
  drain(): boolean {
    const c = this.cols, o = this.outs, bx = this.bufX, by = this.bufY;
    while (this.filled > 0 && this.inBlock < this.blockRows) {
      const k = this.rng.int(this.filled);
      this.emit(bx, by, k);
      const last = --this.filled;
      for (let j = 0; j < c; j++) bx[k * c + j] = bx[last * c + j];
      for (let j = 0; j < o; j++) by[k * o + j] = by[last * o + j];
    }
    return this.inBlock === this.blockRows;
  }

  private emit(x: Float32Array, y: Float32Array, r: number): void {
    const c = this.cols, o = this.outs, xo = this.inBlock * c, yo = this.inBlock * o, b = this.block, bY = this.blockY;
    for (let j = 0; j < c; j++) b[xo + j] = x[r * c + j];
    for (let j = 0; j < o; j++) bY[yo + j] = y[r * o + j];
    this.inBlock++;
  }
}

/** A chunk as checked matrices: inputs (rows, inputs) and targets (rows, outputs). */
function convert(net: Network, b: Batch, index: number, what: string): [Matrix, Matrix] {
  if (b === null || typeof b !== 'object' || !('x' in b) || !('y' in b)) {
    throw new InputError(`${what}: batch ${index} is not an object { x, y }`);
  }
  const X = toMatrix(b.x, `${what}: batch ${index} inputs`, net.inputs);
  try {
    return [X, net.targets(b.y, X.shape[0])];
  } catch (e) {
    if (e instanceof InputError) throw new InputError(`${what}: batch ${index} ${e.message}`);
    throw e;
  }
}

function checkCount(name: string, v: number | undefined, fallback: number): number {
  const n = v ?? fallback;
  if (!Number.isInteger(n) || n < 1) throw new InputError(`${name}: must be a positive integer, got ${String(v)}`);
  return n;
}

/**
 * Trains `net` on the rows of `source`, epoch by epoch, as `fit` does on arrays: the same batch
 * loop, callbacks, early stopping, checkpoints and divergence checks. validationSplit needs rows
 * in memory: validation comes from `validationData` (arrays or a second source).
 */
export async function fitSource(net: Network, control: FitControl, clock: FitClock, source: BatchSource, options: FitOptions,
saver: CheckpointSaver | null = null): Promise<History> {
  if (!isBatchSource(source)) throw new InputError('fit: expected (x, y) or a BatchSource (an async iterable of { x, y })');
  if (options.validationSplit !== undefined && options.validationSplit !== 0) {
    throw new InputError('validationSplit: a source has no last rows to hold out; give validationData (arrays or a second source)');
  }
  const rowBytes = 4 * (net.inputs + net.outputs);
  const bufferRows = checkCount('shuffleBuffer', options.shuffleBuffer,
    Math.max(1, Math.min(DEFAULT_SHUFFLE_BUFFER, Math.floor(DEFAULT_SHUFFLE_BYTES / rowBytes))));
  const depth = checkCount('prefetch', options.prefetch, DEFAULT_PREFETCH);
  const knownRows = source.rows;
  if (knownRows !== undefined && !(Number.isInteger(knownRows) && knownRows >= 0)) {
    throw new InputError(`source.rows: must be a non-negative integer when given, got ${String(knownRows)}`);
  }
  let val: [Matrix, Matrix] | null = null;
  const valSource = isBatchSource(options.validationData) ? options.validationData : null;
  if (!valSource && options.validationData) {
    const [vx, vy] = options.validationData as [MatrixInput, TargetInput];
    const VX = toMatrix(vx, 'validation inputs', net.inputs);
    val = [VX, net.targets(vy, VX.shape[0])];
  }
  const loop = await startLoop(net, control, clock, options, val !== null || valSource !== null, knownRows ?? 0, saver);
  const batchSize = loop.batchSize, cols = net.inputs, outs = net.outputs;
  const shuffle = options.shuffle ?? true;
  const blockRows = batchSize * Math.max(1, Math.ceil(BLOCK_ROWS / batchSize));
  const rowsBuffer = new RowShuffler(cols, outs, blockRows, shuffle ? bufferRows : 0);
  let lastBatches = knownRows !== undefined ? Math.ceil(knownRows / batchSize) : 0;

  for (let epoch = 0; epoch < loop.epochs && !control.stopTraining; epoch++) {
    const lr = scheduledRate(net.spec.optimizer, epoch, loop.epochs);
    const t0 = now();
    loop.metrics.reset();
    const sums = { lossSum: 0, correct: 0 };
    let rows = 0, batchBase = 0;
    rowsBuffer.reset(loop.rng);

    /** Trains the block's rows (whole batches; a partial one only at the end of the epoch). */
    const trainBlock = async (): Promise<void> => {
      const [bx, by] = rowsBuffer.blockMatrices();
      const run = newRun(loop, bx, by, undefined, epoch, batchBase);
      const count = Math.ceil(bx.shape[0] / batchSize);
      await trainRun(net, control, clock, loop, run, lr, count, lastBatches);
      sums.lossSum += run.lossSum;
      sums.correct += run.correct;
      batchBase += count;
      rowsBuffer.inBlock = 0;
    };

    const pass = new ReadAhead(source, depth, 'fit source');
    try {
      for (let chunk = await pass.next(); chunk !== null && !control.stopTraining; chunk = await pass.next()) {
        const [X, Y] = convert(net, chunk, pass.count, 'fit source');
        const m = X.shape[0];
        rows += m;
        for (let i = 0; i < m && !control.stopTraining;) {
          i = rowsBuffer.take(X.data, Y.data, i, m);
          if (rowsBuffer.blockFull()) await trainBlock();
        }
      }
      while (rowsBuffer.drain() && !control.stopTraining) await trainBlock();
      if (rowsBuffer.inBlock > 0 && !control.stopTraining) await trainBlock();
    } finally {
      await pass.close();
    }
    if (rows === 0) {
      throw new InputError(epoch === 0 ? 'fit source: no rows to train on (the source yielded no batches with rows)'
        : `fit source: no rows in epoch ${epoch + 1}; every [Symbol.asyncIterator]() call must start a new pass over the data `
          + '(a one-shot async generator serves one epoch: wrap it as { [Symbol.asyncIterator]: () => makeGenerator() })');
    }
    lastBatches = batchBase;
    checkWeights(net, epoch, batchBase);
    const logs = epochLogs(net, loop, epoch, control.stopTraining ? Math.min(rows, batchBase * batchSize) : rows, sums, lr, t0);
    if (val) addValidation(logs, evaluateNetwork(net, val[0], val[1], batchSize));
    else if (valSource) addValidation(logs, await evaluateSource(net, valSource, batchSize, depth, 'validationData'));
    if (await endEpoch(net, loop, logs)) break;
  }
  return finishLoop(net, loop);
}

/** Loss, accuracy and every metric of the task over the rows of a source (one pass, read ahead). */
export async function evaluateSource(net: Network, source: BatchSource, batchSize: number, prefetch: number | undefined,
what = 'evaluate source'): Promise<Evaluation> {
  if (!isBatchSource(source)) throw new InputError(`${what}: expected a BatchSource (an async iterable of { x, y })`);
  const depth = checkCount('prefetch', prefetch, DEFAULT_PREFETCH);
  const known = source.rows;
  const acc = accumulatorFor(net, Number.isInteger(known) && known! > 0 ? known! : 0);
  const pass = new ReadAhead(source, depth, what);
  let loss = 0, correct = 0, rows = 0;
  try {
    for (let chunk = await pass.next(); chunk !== null; chunk = await pass.next()) {
      const [X, Y] = convert(net, chunk, pass.count, what);
      const m = X.shape[0];
      for (let start = 0; start < m; start += batchSize) {
        const p = net.plan(Math.min(batchSize, m - start));
        net.stage(p, X, Y, start);
        net.forward(p);
        loss += net.lossDelta(p);
        if (net.hasAccuracy()) correct += net.correct(p);
        acc.add(p.acts[p.acts.length - 1].data, p.y.data, p.m);
      }
      rows += m;
    }
  } finally {
    await pass.close();
  }
  if (rows === 0) throw new InputError(`${what}: no rows (the source yielded no batches with rows)`);
  const result: Evaluation = { loss: loss / rows };
  if (net.hasAccuracy()) result.accuracy = correct / rows;
  return Object.assign(result, metricsOf(acc));
}

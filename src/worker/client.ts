/// <reference lib="dom" />
// WorkerModel: a Model that lives in a module Web Worker (dist/model-worker.js), so that a page
// keeps drawing while it trains. The same methods as Model; whatever crosses the thread returns a
// promise. Inputs are copied to the worker (structured clone) unless fit is told to transfer them;
// callbacks run on the page, and the worker's fit waits for each, so stopTraining, early stopping
// and the divergence check mean what they mean on the page, and the weights are the same bits.
import type { BackendName } from '../backends/backend.js';
import { BackendError } from '../backends/select.js';
import { InputError, isBatchSource, type BatchSource, type Matrix, type MatrixInput, type TargetInput } from '../data.js';
import { ModelFileError } from '../io/modelFile.js';
import { TrainingError, type BatchLogs, type EpochLogs, type Evaluation, type FitOptions, type History } from '../model/fit.js';
import type { EvaluateOptions } from '../model/model.js';
import { printSummary, type ModelSummary } from '../model/summary.js';
import type { ClassWeight } from '../model/weights.js';
import type { WebBackendOptions } from '../runtimeEntry.js';
import { SpecError, type ModelSpec, type OptimizerSpec } from '../spec.js';
import type { ClonableBackendOptions, ClonableWasmSource, FromWorker, ModelFacts, ModelMethod, RemoteError, ToWorker } from './protocol.js';
import type { WasmSource } from '../backends/wasm.js';

/** The model worker died (an uncaught error in it, a script that failed to load) or was terminated. */
export class WorkerError extends Error {
  override name = 'WorkerError';
}

export interface WorkerModelOptions extends WebBackendOptions {
  worker?: {
    /**
     * Where the worker's script is (default: dist/model-worker.js beside the web entry, located
     * with `new URL('./model-worker.js', import.meta.url)`, which Vite and webpack follow). Give it
     * when a bundle has no import.meta.url, or serves the file elsewhere.
     */
    url?: string | URL;
    /** The worker's name, shown by the browser's developer tools. */
    name?: string;
  };
}

export interface WorkerFitOptions extends FitOptions {
  /**
   * Move the ArrayBuffers of the typed arrays in x, y, sampleWeight and validationData to the
   * worker instead of copying them: no second copy of a large data set, but those arrays (and any
   * other view of the same buffers) are detached on the page, length 0, after the call.
   * Default false: the data is copied and the page's arrays stay as they were.
   */
  transfer?: boolean;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface FitState {
  onBatchEnd?: FitOptions['onBatchEnd'];
  onEpochEnd?: FitOptions['onEpochEnd'];
  /** A callback on the page threw `callbackError`: the fit's promise rejects with it. */
  callbackFailed?: boolean;
  callbackError?: unknown;
}

const ERRORS: Record<string, new (message: string) => Error> = {
  InputError, SpecError, TrainingError, ModelFileError, BackendError, WorkerError,
  TypeError, RangeError, Error,
};

/** The worker's error on the page: the same class (for the library's errors) and message, the worker's stack. */
function fromRemote(r: RemoteError): Error {
  const Cls = ERRORS[r.name] ?? Error;
  const e = new Cls(r.message);
  if (e.name !== r.name) e.name = r.name;
  if (r.stack) e.stack = r.stack;
  return e;
}

function clonableSource(s: WasmSource): ClonableWasmSource {
  return s instanceof URL ? s.href : s;
}

function clonableBackend(opts: WebBackendOptions): ClonableBackendOptions {
  const { backend, threads, isa, wasm, wasmOptions } = opts;
  const out: ClonableBackendOptions = { backend, threads, isa, wasmOptions };
  if (wasm !== undefined) {
    out.wasm = typeof wasm === 'object' && wasm !== null && 'simd' in wasm
      ? { simd: clonableSource(wasm.simd), relaxed: wasm.relaxed === undefined ? undefined : clonableSource(wasm.relaxed) }
      : clonableSource(wasm as WasmSource);
  }
  return out;
}

/** The whole ArrayBuffers behind the typed arrays in `values` (plain arrays are copied anyway). */
function buffersOf(...values: unknown[]): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  const visit = (v: unknown, depth: number): void => {
    if (v === null || typeof v !== 'object' || depth > 2) return;
    if (ArrayBuffer.isView(v)) {
      if (v.buffer instanceof ArrayBuffer) out.add(v.buffer);
      return;
    }
    if (Array.isArray(v)) {
      // an array of rows: each row may be a typed array; an array of numbers has nothing to move
      for (const item of v) visit(item, depth + 1);
      return;
    }
    if ('data' in v) visit((v as { data: unknown }).data, depth + 1);
  };
  for (const v of values) visit(v, 0);
  return [...out];
}

/**
 * A Model running in a Web Worker. Create it with `createWorkerModel(spec, options)` or
 * `loadWorkerModel(bytes, options)`; end it with `terminate()`.
 */
export class WorkerModel {
  readonly spec: ModelSpec;
  readonly paramCount: number;
  readonly inputs: number;
  readonly outputs: number;
  /** The backend the worker's model runs on. */
  readonly backend: { name: BackendName; isa: string; threads: number };

  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private readonly fits = new Map<number, FitState>();
  private nextId = 1;
  private stopFlag = false;
  /** Why the worker is gone: every later call rejects with it. */
  private dead: WorkerError | null = null;

  /** Use createWorkerModel or loadWorkerModel. */
  private constructor(worker: Worker, facts: ModelFacts) {
    this.worker = worker;
    this.spec = facts.spec;
    this.paramCount = facts.paramCount;
    this.inputs = facts.inputs;
    this.outputs = facts.outputs;
    this.backend = facts.backend;
    worker.onmessage = (e: MessageEvent<FromWorker>) => this.receive(e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      this.fail(new WorkerError(`the model worker crashed: ${e.message || 'an uncaught error'}${e.filename ? ` (${e.filename}:${e.lineno})` : ''}`));
    };
    worker.onmessageerror = () => this.fail(new WorkerError('the model worker sent a message that could not be read'));
  }

  /** Starts the worker and makes its model: from a spec, or from the bytes of a model file. */
  static async start(what: { spec: ModelSpec } | { bytes: Uint8Array }, opts: WorkerModelOptions = {}): Promise<WorkerModel> {
    const { worker, release } = startWorker(opts.worker);
    const facts = await new Promise<ModelFacts>((resolve, reject) => {
      const failed = (why: string) => {
        worker.terminate();
        reject(new WorkerError(why));
      };
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.op === 'result' && m.id === 0) resolve(m.value as ModelFacts);
        else if (m.op === 'error' && m.id === 0) {
          worker.terminate();
          reject(fromRemote(m.error));
        }
      };
      worker.onerror = (e) => {
        e.preventDefault();
        failed(`the model worker failed to start${e.message ? `: ${e.message}` : ' (its script did not load: see worker.url)'}`);
      };
      worker.onmessageerror = () => failed('the model worker sent a message that could not be read');
      const msg: ToWorker = { op: 'create', id: 0, backend: clonableBackend(opts), ...what };
      try {
        worker.postMessage(msg);
      } catch (e) {
        worker.terminate();
        reject(new InputError(`${'spec' in what ? 'spec' : 'bytes'}: cannot be sent to the model worker: ${(e as Error).message}`));
      }
    }).finally(release); // the worker has loaded its script (or failed to)
    return new WorkerModel(worker, facts);
  }

  /**
   * Set to true to end the worker's `fit` after its current batch: from a callback (the worker
   * waits for the callback, so no batch runs after it), or from anywhere on the page (the worker
   * reads it between batches: within one time slice of the fit, `yieldEveryMs`, 10 ms by default).
   */
  get stopTraining(): boolean {
    return this.stopFlag;
  }

  set stopTraining(value: boolean) {
    this.stopFlag = value;
    if (!this.dead) this.worker.postMessage({ op: 'stop', value } satisfies ToWorker);
  }

  /** The optimizer as configured (with defaults filled in). */
  get optimizer(): OptimizerSpec {
    return this.spec.optimizer;
  }

  /** True once the worker is gone (terminate(), or it crashed): every call then rejects. */
  get terminated(): boolean {
    return this.dead !== null;
  }

  /**
   * Trains in the worker, as Model.fit does on the page, and resolves to its History. onBatchEnd
   * and onEpochEnd run on the page and the worker waits for each (one message each way per call:
   * leave onBatchEnd out where batches are short). A BatchSource cannot cross to the worker.
   */
  fit(x: MatrixInput, y: TargetInput, options: WorkerFitOptions = {}): Promise<History> {
    if (isBatchSource(x)) return Promise.reject(new InputError('fit: a WorkerModel trains on arrays (x, y); a BatchSource cannot be sent to its worker'));
    if (options === null || typeof options !== 'object') return Promise.reject(new InputError('fit: options must be an object'));
    const { onBatchEnd, onEpochEnd, transfer, ...rest } = options;
    for (const [name, f] of [['onBatchEnd', onBatchEnd], ['onEpochEnd', onEpochEnd]] as const) {
      if (f !== undefined && typeof f !== 'function') return Promise.reject(new InputError(`${name}: must be a function, got ${typeof f}`));
    }
    if (isBatchSource(rest.validationData as BatchSource)) {
      return Promise.reject(new InputError('validationData: a WorkerModel validates on arrays [x, y]; a BatchSource cannot be sent to its worker'));
    }
    if (transfer !== undefined && typeof transfer !== 'boolean') return Promise.reject(new InputError(`transfer: must be true or false, got ${JSON.stringify(transfer)}`));
    // as Model.fit: a fit starts with stopTraining false (the worker's fit resets its own); a
    // second fit while one runs is refused by the worker and leaves the flag alone
    if (this.fits.size === 0) this.stopFlag = false;
    const id = this.nextId++;
    const state: FitState = { onBatchEnd, onEpochEnd };
    this.fits.set(id, state);
    const msg: ToWorker = { op: 'fit', id, x, y, options: rest, onBatchEnd: onBatchEnd !== undefined, onEpochEnd: onEpochEnd !== undefined };
    const moved = transfer ? buffersOf(x, y, rest.sampleWeight, rest.validationData) : [];
    return this.request<History>(id, msg, moved, 'fit').finally(() => this.fits.delete(id));
  }

  /** Model.evaluate in the worker (arrays only). */
  evaluate(x: MatrixInput, y: TargetInput, options?: number | EvaluateOptions): Promise<Evaluation> {
    if (isBatchSource(x)) return Promise.reject(new InputError('evaluate: a WorkerModel evaluates arrays (x, y); a BatchSource cannot be sent to its worker'));
    return this.call('evaluate', [x, y, options]);
  }

  /** Model.predict in the worker. */
  predict(x: MatrixInput, batchSize?: number): Promise<Matrix> {
    return this.call('predict', [x, batchSize]);
  }

  /** Model.predictClasses in the worker. */
  predictClasses(x: MatrixInput, batchSize?: number): Promise<Int32Array> {
    return this.call('predictClasses', [x, batchSize]);
  }

  /** Each layer's weights (in, out) and bias (out), copies. */
  getWeights(): Promise<{ w: Float32Array; b: Float32Array }[]> {
    return this.call('getWeights', []);
  }

  /** Model.setWeights in the worker (refused while a fit runs, as on the page). */
  setWeights(weights: { w: ArrayLike<number>; b: ArrayLike<number> }[]): Promise<void> {
    return this.call('setWeights', [weights]);
  }

  getRunningStats(): Promise<Float32Array> {
    return this.call('getRunningStats', []);
  }

  setRunningStats(values: ArrayLike<number>): Promise<void> {
    return this.call('setRunningStats', [values]);
  }

  resetOptimizer(): Promise<void> {
    return this.call('resetOptimizer', []);
  }

  initialize(seed: number): Promise<void> {
    return this.call('initialize', [seed]);
  }

  gradients(x: MatrixInput, y: TargetInput, weights: { sampleWeight?: ArrayLike<number>; classWeight?: ClassWeight } = {}): Promise<{ loss: number; grads: Float32Array }> {
    return this.call('gradients', [x, y, weights]);
  }

  /** The model file's bytes (modelToBytes of the worker's model): loadModel(bytes) on the page, or save them. */
  toBytes(): Promise<Uint8Array> {
    return this.call('toBytes', []);
  }

  /** The layer table, as Model.summary (on the page: it needs only the spec). */
  summary(options: { print?: boolean | ((text: string) => void) } = {}): ModelSummary {
    return printSummary(this.spec, options.print);
  }

  /** Ends the worker at once; pending calls (a fit too) reject with a WorkerError. */
  terminate(): void {
    this.fail(new WorkerError('the model worker was terminated'));
  }

  private call<T>(method: ModelMethod, args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return this.request<T>(id, { op: 'call', id, method, args }, [], method);
  }

  private request<T>(id: number, msg: ToWorker, transfer: Transferable[], what: string): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      try {
        this.worker.postMessage(msg, transfer);
      } catch (e) {
        this.pending.delete(id);
        // a function, a DOM node or another value that does not clone: the arguments' fault
        reject(new InputError(`${what}: its arguments cannot be sent to the model worker: ${(e as Error).message}`));
      }
    });
  }

  private receive(m: FromWorker): void {
    if (m.op === 'callback') {
      this.runCallback(m.fit, m.callback, m.kind, m.logs);
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.op === 'result') p.resolve(m.value);
    else if (m.callbackFailed && this.fits.get(m.id)?.callbackFailed) p.reject(this.fits.get(m.id)!.callbackError as Error);
    else p.reject(fromRemote(m.error));
  }

  private runCallback(fit: number, callback: number, kind: 'batch' | 'epoch', logs: BatchLogs | EpochLogs): void {
    const state = this.fits.get(fit);
    const f = kind === 'batch' ? state?.onBatchEnd : state?.onEpochEnd;
    const done = (failed: boolean) => {
      if (!this.dead) this.worker.postMessage({ op: 'callbackDone', callback, stop: this.stopFlag, failed } satisfies ToWorker);
    };
    if (!state || !f) {
      done(false);
      return;
    }
    let result: void | Promise<void>;
    try {
      result = (f as (l: BatchLogs | EpochLogs) => void | Promise<void>)(logs);
    } catch (e) {
      state.callbackFailed = true;
      state.callbackError = e;
      done(true);
      return;
    }
    if (result && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(() => done(false), (e: unknown) => {
        state.callbackFailed = true;
        state.callbackError = e;
        done(true);
      });
    } else {
      done(false);
    }
  }

  private fail(why: WorkerError): void {
    if (this.dead) return;
    this.dead = why;
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(why);
    this.pending.clear();
  }
}

const WORKER_FILE = './model-worker.js';

function startWorker(opts: WorkerModelOptions['worker'] = {}): { worker: Worker; release: () => void } {
  if (typeof Worker !== 'function') {
    throw new WorkerError('this runtime has no Web Workers (Worker): use createModel, which trains on this thread');
  }
  const name = opts.name ?? 'deltaprop model';
  try {
    // written out in full so that bundlers see the pattern and emit the worker's file
    if (opts.url === undefined) return { worker: new Worker(new URL('./model-worker.js', import.meta.url), { type: 'module', name }), release: () => {} };
    return { worker: new Worker(opts.url, { type: 'module', name }), release: () => {} };
  } catch (e) {
    // A page may not start a worker from a script of another origin (the package on a CDN), but
    // a module worker of its own may import that script (served with CORS, as CDNs do).
    if ((e as Error).name !== 'SecurityError' || typeof location === 'undefined' || typeof URL.createObjectURL !== 'function') throw e;
    // (not the literal `new URL('./model-worker.js', import.meta.url)` again: bundlers would emit
    // a second, unbundled copy of the file; a bundled worker is never on another origin anyway)
    const script = new URL(String(opts.url ?? new URL(WORKER_FILE, import.meta.url)), location.href).href;
    const local = URL.createObjectURL(new Blob([`import ${JSON.stringify(script)};\n`], { type: 'text/javascript' }));
    return { worker: new Worker(local, { type: 'module', name }), release: () => URL.revokeObjectURL(local) };
  }
}

// The messages between a WorkerModel (the page's side, client.ts) and the model worker that owns
// the real Model (model-worker.ts). Everything in them is structured-clonable: no functions, no
// URL objects, errors as their name and message.
import type { BackendName } from '../backends/backend.js';
import type { BatchLogs, EpochLogs, FitOptions } from '../model/fit.js';
import type { ModelSpec } from '../spec.js';
import type { WasmBackendOptions } from '../backends/wasm.js';

/** A wasm build's source as it can cross to the worker: a compiled module, bytes, or a URL's text. */
export type ClonableWasmSource = WebAssembly.Module | BufferSource | string;

/** WebBackendOptions with URL objects turned into their href. */
export interface ClonableBackendOptions {
  backend?: BackendName | 'auto';
  threads?: number;
  isa?: string;
  wasm?: ClonableWasmSource | { simd: ClonableWasmSource; relaxed?: ClonableWasmSource };
  wasmOptions?: WasmBackendOptions;
}

/** Methods of the worker's Model that the page calls with arguments and awaits a value from. */
export const MODEL_METHODS = [
  'predict', 'predictClasses', 'evaluate', 'getWeights', 'setWeights', 'getRunningStats', 'setRunningStats',
  'resetOptimizer', 'initialize', 'gradients', 'toBytes',
] as const;
export type ModelMethod = (typeof MODEL_METHODS)[number];

/** The fit options that cross: the callbacks stay on the page, the worker only learns which exist. */
export type ClonableFitOptions = Omit<FitOptions, 'onBatchEnd' | 'onEpochEnd'>;

export type ToWorker =
  | { op: 'create'; id: number; spec?: ModelSpec; bytes?: Uint8Array; backend: ClonableBackendOptions }
  | { op: 'call'; id: number; method: ModelMethod; args: unknown[] }
  | { op: 'fit'; id: number; x: unknown; y: unknown; options: ClonableFitOptions; onBatchEnd: boolean; onEpochEnd: boolean }
  /** The page's `stopTraining` changed (outside a callback's reply). */
  | { op: 'stop'; value: boolean }
  /** A callback on the page finished: `stop` is the page's stopTraining then; `failed`: it threw. */
  | { op: 'callbackDone'; callback: number; stop: boolean; failed: boolean };

/** What the worker's model is, for the page's synchronous properties. */
export interface ModelFacts {
  spec: ModelSpec;
  paramCount: number;
  inputs: number;
  outputs: number;
  backend: { name: BackendName; isa: string; threads: number };
}

export interface RemoteError {
  name: string;
  message: string;
  stack?: string;
}

export type FromWorker =
  | { op: 'result'; id: number; value: unknown }
  /** `callbackFailed`: the fit ended because a callback on the page threw (the page has that error). */
  | { op: 'error'; id: number; error: RemoteError; callbackFailed?: boolean }
  | { op: 'callback'; fit: number; callback: number; kind: 'batch'; logs: BatchLogs }
  | { op: 'callback'; fit: number; callback: number; kind: 'epoch'; logs: EpochLogs };

export function toRemoteError(e: unknown): RemoteError {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

// The Node entry: everything in core, plus the native and wasm backends, automatic selection,
// model files on disk and the built-in data sets.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import * as workerThreads from 'node:worker_threads';
import type { Backend } from './backends/backend.js';
import { JsBackend } from './backends/js.js';
import { loadNativeBackend } from './backends/native.js';
import { loadWasmBackend, registerNodeFs, registerNodeThreads } from './backends/wasm.js';
import { probeBackends, selectBackend, type BackendLoader, type BackendOptions, type BackendReport } from './backends/select.js';
import { checkWritableFile, readModelFile, saveModel } from './io/files.js';
import { modelFromOnnx, type OnnxImportOptions } from './onnx/import.js';
import { Model } from './model.js';
import { registerModelFileSaver } from './model/model.js';
import type { ModelSpec } from './spec.js';
import type { BackendName } from './backends/backend.js';

export * from './core.js';
export { checkWritableFile, FileWriteError, readModelFile, saveModel, writeFileAtomic } from './io/files.js';
export { BUILTIN_DATASETS, loadBuiltin, trainTestSplit } from './io/datasets.js';
export type { BuiltinName, Dataset } from './io/datasets.js';
export { csvSource } from './io/csv-stream.js';
export type { CsvSource, CsvSourceOptions, RowSplit } from './io/csv-stream.js';
export { idxSource } from './io/idx-stream.js';
export type { IdxSource, IdxSourceOptions } from './io/idx-stream.js';
export * from './onnx/index.js';

// the wasm loader reads the packaged .wasm files through this on every Node 20 (no
// process.getBuiltinModule before 20.16)
registerNodeFs({ existsSync, readFileSync });
// and starts its worker threads through these (every Node 20)
registerNodeThreads(workerThreads, os);
// fit's checkpoints write model files through the atomic writer
registerModelFileSaver({ check: (path) => checkWritableFile(path, 'checkpoint'), save: saveModel });

/** The backends this runtime can try, fastest first. */
export const loaders: Partial<Record<BackendName, BackendLoader>> = {
  native: (o) => loadNativeBackend({ isa: o.isa, threads: o.threads }),
  wasm: (o) => loadWasmBackend(undefined, { threads: o.threads }),
  js: () => new JsBackend(),
};

/** Loads a backend: the one asked for (option or DELTAPROP_BACKEND), else the fastest that loads. */
export async function loadBackend(opts: BackendOptions = {}): Promise<Backend> {
  return (await selectBackend(loaders, opts)).backend;
}

/** Which backend runs and why, with the status of every other backend. */
export async function backendInfo(opts: BackendOptions = {}): Promise<BackendReport> {
  return probeBackends(loaders, opts);
}

/** Creates a model on the selected backend (see `loadBackend`). */
export async function createModel(spec: ModelSpec, opts: BackendOptions = {}): Promise<Model> {
  return new Model(spec, await loadBackend(opts));
}

/** Loads a model file onto the selected backend. */
export async function loadModel(path: string, opts: BackendOptions = {}): Promise<Model> {
  return readModelFile(path, await loadBackend(opts));
}

/** Builds a model from the bytes of an ONNX file (an MLP graph) on the selected backend. */
export async function fromOnnx(bytes: Uint8Array, opts: BackendOptions & OnnxImportOptions = {}): Promise<Model> {
  return modelFromOnnx(bytes, await loadBackend(opts), opts);
}

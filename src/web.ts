// The entry for browsers and Deno (and any runtime with ES modules and fetch): the Node-free core,
// the wasm backend with its .wasm fetched from the package's wasm/ folder next to dist/, and
// automatic selection wasm, then js. Never imports a Node module.
import { makeEntry } from './runtimeEntry.js';
import type { WebBackendOptions } from './runtimeEntry.js';
import type { Model } from './model.js';
import { modelFromOnnx, type OnnxImportOptions } from './onnx/import.js';
import type { ModelSpec } from './spec.js';
import { WorkerModel, type WorkerModelOptions } from './worker/client.js';

export * from './core.js';
export * from './onnx/index.js';
export type { WebBackendOptions } from './runtimeEntry.js';
export { WorkerError, WorkerModel } from './worker/client.js';
export type { WorkerFitOptions, WorkerModelOptions } from './worker/client.js';

export const { loaders, loadBackend, backendInfo, createModel, loadModel } = makeEntry();

/** Builds a model from the bytes of an ONNX file (an MLP graph) on the selected backend. */
export async function fromOnnx(bytes: Uint8Array, opts: WebBackendOptions & OnnxImportOptions = {}): Promise<Model> {
  return modelFromOnnx(bytes, await loadBackend(opts), opts);
}

/**
 * Creates a model inside a module Web Worker (dist/model-worker.js) on the worker's backend
 * (selected there as `loadBackend(opts)` would): the same methods as Model, async where they cross
 * the thread, so that training never blocks the page. See WorkerModel.
 */
export function createWorkerModel(spec: ModelSpec, opts: WorkerModelOptions = {}): Promise<WorkerModel> {
  return WorkerModel.start({ spec }, opts);
}

/** Loads a model from the bytes of a model file into a model worker (see createWorkerModel). */
export function loadWorkerModel(bytes: Uint8Array, opts: WorkerModelOptions = {}): Promise<WorkerModel> {
  return WorkerModel.start({ bytes }, opts);
}

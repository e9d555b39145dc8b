// The entry for browsers and Deno (and any runtime with ES modules and fetch): the Node-free core,
// the wasm backend with its .wasm fetched from the package's wasm/ folder next to dist/, and
// automatic selection wasm, then js. Never imports a Node module.
import { makeEntry } from './runtimeEntry.js';
import type { WebBackendOptions } from './runtimeEntry.js';
import type { Model } from './model.js';
import { modelFromOnnx, type OnnxImportOptions } from './onnx/import.js';

export * from './core.js';
export * from './onnx/index.js';
export type { WebBackendOptions } from './runtimeEntry.js';

export const { loaders, loadBackend, backendInfo, createModel, loadModel } = makeEntry();

/** Builds a model from the bytes of an ONNX file (an MLP graph) on the selected backend. */
export async function fromOnnx(bytes: Uint8Array, opts: WebBackendOptions & OnnxImportOptions = {}): Promise<Model> {
  return modelFromOnnx(bytes, await loadBackend(opts), opts);
}

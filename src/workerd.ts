// The entry for Cloudflare Workers (workerd), which refuse to compile WebAssembly from bytes at
// run time: both builds are imported as modules (the bundler or wrangler turns each .wasm import
// into a compiled WebAssembly.Module) and feature detection picks one.
import relaxed from '../wasm/deltaprop-relaxed.wasm';
import simd from '../wasm/deltaprop-simd.wasm';
import { makeEntry } from './runtimeEntry.js';
import type { WebBackendOptions } from './runtimeEntry.js';
import type { Model } from './model.js';
import { modelFromOnnx, type OnnxImportOptions } from './onnx/import.js';

export * from './core.js';
export * from './onnx/index.js';
export type { WebBackendOptions } from './runtimeEntry.js';

export const { loaders, loadBackend, backendInfo, createModel, loadModel } = makeEntry(() => ({ simd, relaxed }));

/** Builds a model from the bytes of an ONNX file (an MLP graph) on the selected backend. */
export async function fromOnnx(bytes: Uint8Array, opts: WebBackendOptions & OnnxImportOptions = {}): Promise<Model> {
  return modelFromOnnx(bytes, await loadBackend(opts), opts);
}

// The entry for bundles that cannot ship the .wasm files beside them (esbuild, which does not emit
// `new URL('…', import.meta.url)` assets, and IIFE bundles, which have no import.meta.url): the
// web entry with both wasm builds inside the JavaScript (about 80 KB as base64; the build inlines
// them). Never imports a Node module and never fetches.
import relaxed from 'deltaprop-inline-wasm:relaxed';
import simd from 'deltaprop-inline-wasm:simd';
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

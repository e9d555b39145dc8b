// The entry for bundles that cannot ship the .wasm files beside them (esbuild, which does not emit
// `new URL('…', import.meta.url)` assets, and IIFE bundles, which have no import.meta.url): the
// web entry with both wasm builds inside the JavaScript (about 80 KB as base64; the build inlines
// them). Never imports a Node module and never fetches.
import relaxed from 'deltaprop-inline-wasm:relaxed';
import simd from 'deltaprop-inline-wasm:simd';
import { makeEntry } from './runtimeEntry.js';

export * from './core.js';
export type { WebBackendOptions } from './runtimeEntry.js';

export const { loaders, loadBackend, backendInfo, createModel, loadModel } = makeEntry(() => ({ simd, relaxed }));

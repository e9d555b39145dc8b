// The entry for browsers and Deno (and any runtime with ES modules and fetch): the Node-free core,
// the wasm backend with its .wasm fetched from the package's wasm/ folder next to dist/, and
// automatic selection wasm, then js. Never imports a Node module.
import { makeEntry } from './runtimeEntry.js';

export * from './core.js';
export type { WebBackendOptions } from './runtimeEntry.js';

export const { loaders, loadBackend, backendInfo, createModel, loadModel } = makeEntry();

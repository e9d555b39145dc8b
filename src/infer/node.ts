// deltaprop/infer for Node and Bun: prediction only, on the native addon, else wasm, else js; a
// model file by path or bytes.
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import * as workerThreads from 'node:worker_threads';
import { JsBackend } from '../backends/js.js';
import { loadNativeBackend } from '../backends/native.js';
import type { BackendOptions } from '../backends/select.js';
import { loadWasmBackend, registerNodeFs, registerNodeThreads } from '../backends/wasm.js';
import { ModelFileError } from '../io/modelFile.js';
import { makeInferEntry } from './entry.js';
import type { ModelParts, Predictor } from './predictor.js';

export * from './exports.js';
export { loadNativeBackend } from '../backends/native.js';

registerNodeFs({ existsSync, readFileSync });
registerNodeThreads(workerThreads, os);

const entry = makeInferEntry<BackendOptions>({
  native: (o) => loadNativeBackend({ isa: o.isa, threads: o.threads }),
  wasm: (o) => loadWasmBackend(undefined, { threads: o.threads }),
  js: () => new JsBackend(),
});

export const { loaders, loadBackend, backendInfo } = entry;

/** A predictor from a model file (path or bytes) or from parts (`parseOnnx(bytes)`). */
export async function loadPredictor(model: string | Uint8Array | ModelParts, opts: BackendOptions = {}): Promise<Predictor> {
  if (typeof model !== 'string') return entry.loadPredictor(model, opts);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(model);
  } catch (e) {
    throw new ModelFileError(`${model}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return await entry.loadPredictor(bytes, opts);
  } catch (e) {
    if (e instanceof ModelFileError) throw new ModelFileError(`${model}: ${e.message}`);
    throw e;
  }
}

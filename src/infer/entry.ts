// What every inference entry exports, given its runtime's backend loaders: backend selection (the
// same rules as the full entries) and loadPredictor. Imports no training code.
import type { Backend, BackendName } from '../backends/backend.js';
import { probeBackends, selectBackend, warnJsFallbackOnce, type BackendLoader, type BackendOptions, type BackendReport } from '../backends/select.js';
import { predictorFrom, type ModelParts, type Predictor } from './predictor.js';

export function makeInferEntry<O extends BackendOptions>(loaders: Partial<Record<BackendName, BackendLoader>>,
  unavailable: Partial<Record<BackendName, string>> = {}) {
  /** Loads a backend: the one asked for (option or DELTAPROP_BACKEND), else the fastest that loads. */
  async function loadBackend(opts: O = {} as O): Promise<Backend> {
    const { backend, report } = await selectBackend(loaders, opts, unavailable);
    warnJsFallbackOnce(report);
    return backend;
  }

  /** Which backend runs and why, with the status of every other backend. */
  async function backendInfo(opts: O = {} as O): Promise<BackendReport> {
    return probeBackends(loaders, opts, unavailable);
  }

  /**
   * A predictor on the selected backend, from the bytes of a model file or from parts
   * (`{ spec, weights }`, e.g. `parseOnnx(bytes)` from 'deltaprop/infer/onnx').
   */
  async function loadPredictor(model: Uint8Array | ModelParts, opts: O = {} as O): Promise<Predictor> {
    return predictorFrom(model, await loadBackend(opts));
  }

  return { loaders, loadBackend, backendInfo, loadPredictor };
}

/// <reference lib="webworker" />
// The model worker (dist/model-worker.js): a module Web Worker that owns one real Model and runs
// what its WorkerModel (client.ts) asks, so that training never runs on the page's thread. Its fit
// is the library's own: callbacks are proxies that post the logs to the page and wait for the
// page's callback to finish (so stopTraining from a callback ends the fit exactly where it would
// on the page), and requests that arrive while a fit yields run between its batches, as they
// would on the page.
import { modelFromBytes, modelToBytes } from '../io/modelFile.js';
import { Model } from '../model/model.js';
import type { FitOptions } from '../model/fit.js';
import { makeEntry } from '../runtimeEntry.js';
import type { WebBackendOptions } from '../runtimeEntry.js';
import { toRemoteError, type FromWorker, type ModelFacts, type ModelMethod, type ToWorker } from './protocol.js';

declare const self: DedicatedWorkerGlobalScope;

// fit yields to the event loop with setImmediate where it exists, else setTimeout(0). A worker
// has no setImmediate, and browsers clamp nested zero timeouts to 4 ms: the worker would idle
// between its 10 ms slices a quarter of the time. A MessageChannel task is not clamped.
const g = globalThis as { setImmediate?: (cb: () => void) => void };
if (typeof g.setImmediate !== 'function') {
  const channel = new MessageChannel();
  const queue: (() => void)[] = [];
  channel.port1.onmessage = () => queue.shift()?.();
  g.setImmediate = (cb) => {
    queue.push(cb);
    channel.port2.postMessage(0);
  };
}

const { loadBackend } = makeEntry();
let model: Model | null = null;
let nextCallback = 0;
const callbacks = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();

/** Thrown inside the worker's fit when the page's callback threw: the page rejects with its own error. */
class CallbackFailed extends Error {}

function post(message: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

/** Sends a request's value, or its error (also when the value does not clone): the page never waits forever. */
function reply(id: number, value: unknown, transfer: Transferable[] = []): void {
  try {
    post({ op: 'result', id, value }, transfer);
  } catch (e) {
    post({ op: 'error', id, error: toRemoteError(e) });
  }
}

function theModel(): Model {
  if (!model) throw new Error('model worker: no model yet (create it first)');
  return model;
}

/**
 * The buffers of arrays that own them whole, deduplicated: moved to the page instead of copied.
 * A view into a larger buffer (the wasm memory, an arena) is copied: moving it would detach that.
 */
function owned(...arrays: ArrayBufferView[]): Transferable[] {
  const out = new Set<ArrayBuffer>();
  for (const a of arrays) {
    if (a.buffer instanceof ArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) out.add(a.buffer);
  }
  return [...out];
}

/** Each method with the buffers of its result that are fresh copies, moved to the page instead of copied again. */
const methods: Record<ModelMethod, (m: Model, args: unknown[]) => [unknown, Transferable[]]> = {
  predict: (m, [x, batchSize]) => {
    const r = m.predict(x as never, batchSize as number | undefined);
    return [r, owned(r.data)];
  },
  predictClasses: (m, [x, batchSize]) => {
    const r = m.predictClasses(x as never, batchSize as number | undefined);
    return [r, owned(r)];
  },
  evaluate: (m, [x, y, options]) => [m.evaluate(x as never, y as never, options as never), []],
  getWeights: (m) => {
    const r = m.getWeights();
    return [r, owned(...r.flatMap((l) => [l.w, l.b]))];
  },
  setWeights: (m, [weights]) => [m.setWeights(weights as never), []],
  getRunningStats: (m) => {
    const r = m.getRunningStats();
    return [r, owned(r)];
  },
  setRunningStats: (m, [values]) => [m.setRunningStats(values as never), []],
  resetOptimizer: (m) => [m.resetOptimizer(), []],
  initialize: (m, [seed]) => [m.initialize(seed as number), []],
  gradients: (m, [x, y, weights]) => {
    const r = m.gradients(x as never, y as never, weights as never);
    return [r, owned(r.grads)];
  },
  toBytes: (m) => {
    const r = modelToBytes(m);
    return [r, owned(r)];
  },
};

/** A callback proxy: posts the logs and resolves when the page's callback has finished. */
function pageCallback<L>(fit: number, kind: 'batch' | 'epoch'): (logs: L) => Promise<void> {
  return (logs) => new Promise<void>((resolve, reject) => {
    const callback = nextCallback++;
    callbacks.set(callback, { resolve, reject });
    post({ op: 'callback', fit, callback, kind, logs } as FromWorker);
  });
}

async function runFit(msg: Extract<ToWorker, { op: 'fit' }>): Promise<void> {
  const options: FitOptions = { ...msg.options };
  if (msg.onBatchEnd) options.onBatchEnd = pageCallback(msg.id, 'batch');
  if (msg.onEpochEnd) options.onEpochEnd = pageCallback(msg.id, 'epoch');
  try {
    reply(msg.id, await theModel().fit(msg.x as never, msg.y as never, options));
  } catch (e) {
    post({ op: 'error', id: msg.id, error: toRemoteError(e), callbackFailed: e instanceof CallbackFailed });
  }
}

async function create(msg: Extract<ToWorker, { op: 'create' }>): Promise<ModelFacts> {
  if (model) throw new Error('model worker: this worker already has its model');
  const backend = await loadBackend(msg.backend as WebBackendOptions);
  const m = msg.bytes ? modelFromBytes(msg.bytes, backend) : new Model(msg.spec!, backend);
  model = m;
  return {
    spec: m.spec, paramCount: m.paramCount, inputs: m.inputs, outputs: m.outputs,
    backend: { name: backend.name, isa: backend.isa, threads: backend.threads },
  };
}

self.addEventListener('message', (event: MessageEvent<ToWorker>) => {
  const msg = event.data;
  switch (msg.op) {
    case 'create':
      create(msg).then((facts) => reply(msg.id, facts), (e: unknown) => post({ op: 'error', id: msg.id, error: toRemoteError(e) }));
      break;
    case 'call':
      try {
        const [value, transfer] = methods[msg.method](theModel(), msg.args);
        reply(msg.id, value, transfer);
      } catch (e) {
        post({ op: 'error', id: msg.id, error: toRemoteError(e) });
      }
      break;
    case 'fit':
      void runFit(msg);
      break;
    case 'stop':
      if (model) model.stopTraining = msg.value;
      break;
    case 'callbackDone': {
      const waiting = callbacks.get(msg.callback);
      if (!waiting) break;
      callbacks.delete(msg.callback);
      if (model) model.stopTraining = msg.stop;
      if (msg.failed) waiting.reject(new CallbackFailed('a fit callback threw on the page'));
      else waiting.resolve();
      break;
    }
  }
});

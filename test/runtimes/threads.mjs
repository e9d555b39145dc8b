// Run by Bun and Deno (test/runtimes/runtimes.test.ts): the wasm backend on 1, 2 and 3 threads
// through the entry the runtime resolves, a few Adam steps of a network whose GEMMs are split over
// the threads and a 256-row forward pass; the bits of each run as hex, for the test to compare.
// Plain JavaScript shared by both runtimes: `lib` is the loaded entry.

const toHex = (f32) => Array.from(new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength), (b) => b.toString(16).padStart(2, '0')).join('');

/** A cheap fingerprint of the bits (FNV-1a over the bytes), so the JSON stays small. */
function fingerprint(f32) {
  const bytes = new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
  return `${bytes.length}:${h.toString(16)}`;
}

export async function runThreads(lib) {
  const rows = 256, inputs = 96, classes = 10;
  let s = 12345;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const x = new Float32Array(rows * inputs).map(() => rand() * 2 - 1);
  const y = new Int32Array(rows).map(() => Math.floor(rand() * classes));
  const runs = [];
  for (const threads of [1, 2, 3]) {
    const backend = await lib.loadBackend({ backend: 'wasm', threads });
    // the workers start lazily (at the first split kernel): started here, so that every GEMM of the
    // run is split over them
    await backend.startThreads?.();
    const model = new lib.Model({
      inputs,
      layers: [{ units: 384, activation: 'relu' }, { units: 384, activation: 'relu' }, { units: classes, activation: 'softmax' }],
      loss: 'categoricalCrossEntropy',
      optimizer: { type: 'adam', learningRate: 1e-3 },
      seed: 5,
    }, backend);
    const h = await model.fit({ data: x, shape: [rows, inputs] }, y, { epochs: 2, batchSize: 128, seed: 1 });
    const p = model.predict({ data: x, shape: [rows, inputs] });
    runs.push({
      threads: backend.threads,
      workersStarted: backend.workersStarted ?? false,
      threadsReason: backend.threadsReason ?? null,
      loss: h.epochs.map((e) => e.loss),
      params: fingerprint(model.params.data),
      predicted: fingerprint(p.data),
      first: toHex(p.data.subarray(0, 4)),
    });
    backend.dispose?.();
  }
  const info = await lib.backendInfo({ backend: 'wasm', threads: 1 });
  return { runs, oneThread: info.backends.wasm.threadsReason ?? null };
}

// Model.predict against deltaprop/infer's Predictor on the same backend and weights: batch 1 and
// batch 256 of the infer workload's shapes (784-128-10, 784-512-512-10), in alternating rounds
// (ABAB: a neighbour's load falls on both alike), after checking that both give the same bits.
// Prints the median per-call time of each, the median of the rounds' ratios (Model ÷ Predictor:
// 1.0 is parity) and the ratio of the fastest rounds (on a loaded machine the least disturbed
// round of each side is the nearest to its quiet time). Needs the built package (`npx tsup`).
//   node bench/predict-vs-predictor.mjs [native,wasm1,wasm2,js] [rounds]
import { loaders, Model, Random } from '../dist/index.js';
import { Predictor } from '../dist/infer.js';

const which = (process.argv[2] ?? 'native,wasm1,wasm2').split(',');
const rounds = Number(process.argv[3] ?? 21);
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
const SHAPES = { 'mnist-mlp': [784, 128, 10], 'wide-mlp': [784, 512, 512, 10] };
const same = (a, b) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

for (const name of which) {
  const backend = name === 'native' ? await loaders.native({ backend: 'native' })
    : name.startsWith('wasm') ? await loaders.wasm({ backend: 'wasm', threads: Number(name.slice(4) || 1) }) : await loaders.js({ backend: 'js' });
  for (const [shape, sizes] of Object.entries(SHAPES)) {
    const spec = {
      inputs: sizes[0], layers: sizes.slice(1).map((u, i) => ({ units: u, activation: i === sizes.length - 2 ? 'softmax' : 'relu' })),
      loss: 'categoricalCrossEntropy', optimizer: { type: 'sgd', learningRate: 0.1 }, seed: 42,
    };
    const model = new Model(spec, backend), r = new Random(43);
    model.setWeights(model.getWeights().map((l) => ({ w: l.w, b: l.b.map(() => 0.1 * r.normal()) })));
    const predictor = new Predictor(spec, model.getWeights(), backend);
    for (const rows of [1, 256]) {
      const x = { data: new Float32Array(rows * sizes[0]).map((_, i) => ((i * 7919) % 1000) / 1000), shape: [rows, sizes[0]] };
      if (!same(model.predict(x).data, predictor.predict(x).data)) throw new Error(`${name} ${shape}: Model.predict and the Predictor disagree`);
      // about 5 ms a side a round
      for (let i = 0; i < 5; i++) predictor.predict(x);
      const t0 = performance.now();
      predictor.predict(x);
      const calls = Math.max(2, Math.round(5 / Math.max(performance.now() - t0, 0.005)));
      const time = (f) => {
        const t = performance.now();
        for (let i = 0; i < calls; i++) f();
        return ((performance.now() - t) * 1000) / calls;
      };
      const a = [], b = [];
      time(() => model.predict(x));
      time(() => predictor.predict(x));
      for (let k = 0; k < rounds; k++) {
        if (k % 2) {
          b.push(time(() => predictor.predict(x)));
          a.push(time(() => model.predict(x)));
        } else {
          a.push(time(() => model.predict(x)));
          b.push(time(() => predictor.predict(x)));
        }
      }
      console.log(`${name} (${backend.threads} thread${backend.threads > 1 ? 's' : ''}) ${shape} batch ${rows}: Model.predict ${median(a).toFixed(1)} µs, `
        + `Predictor ${median(b).toFixed(1)} µs, Model ÷ Predictor ${median(a.map((v, i) => v / b[i])).toFixed(3)} (median of rounds), `
        + `${(Math.min(...a) / Math.min(...b)).toFixed(3)} (fastest rounds: ${Math.min(...a).toFixed(1)} / ${Math.min(...b).toFixed(1)} µs; ${rounds} rounds, ${calls} calls a side)`);
    }
  }
  backend.dispose?.();
}

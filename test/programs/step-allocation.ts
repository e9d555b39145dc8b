// Run by test/steady-state.test.ts in a process of its own: trains tiny-xor through fit on the
// backend its argument names (native, the default, or wasm) and prints the bytes V8's sampling
// heap profiler saw allocated per step inside the batch loop (Model.trainBatches and everything
// it calls).
import { Session } from 'node:inspector/promises';
import { loadNativeBackend } from '../../src/backends/native.js';
import { loadWasmBackend } from '../../src/backends/wasm.js';
import { Model } from '../../src/model/model.js';
import { Random } from '../../src/random.js';

const ROWS = 4 * 5000, EPOCHS = 4, ROUNDS = 5;
const model = new Model({
  inputs: 2, layers: [{ units: 8, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
  loss: 'binaryCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, seed: 1,
}, process.argv[2] === 'wasm' ? await loadWasmBackend() : loadNativeBackend());
const rng = new Random(3), x = new Float32Array(ROWS * 2), y = new Float32Array(ROWS);
for (let r = 0; r < ROWS; r++) {
  x[2 * r] = rng.int(2);
  x[2 * r + 1] = rng.int(2);
  y[r] = x[2 * r] !== x[2 * r + 1] ? 1 : 0;
}
const X = { data: x, shape: [ROWS, 2] as [number, number] }, Y = { data: y, shape: [ROWS, 1] as [number, number] };
await model.fit(X, Y, { epochs: 10, batchSize: 4 }); // warm-up: feedback, plans, the compiled step

type Node = { callFrame: { functionName: string }; selfSize: number; children: Node[] };
const inLoop = (n: Node, under: boolean): number => {
  const u = under || n.callFrame.functionName === 'trainBatches';
  return (u ? n.selfSize : 0) + n.children.reduce((s, c) => s + inLoop(c, u), 0);
};

// V8 optimizes the batch loop on a background thread while the loop goes on in a lower tier,
// which boxes the doubles it handles (the loss, the clock). On a loaded machine the
// compile can outlast a whole round (20,000 tiny steps take a few ms), so a round can measure the
// tier instead of the step: rounds are separated by a pause for the compiler, and the quietest
// round is the steady state.
const session = new Session();
session.connect();
const steps = (ROWS / 4) * EPOCHS, rounds: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  await new Promise((resolve) => setTimeout(resolve, 200));
  // a 16-byte interval sees every kind of object a step could make
  await session.post('HeapProfiler.startSampling', { samplingInterval: 16, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
  await model.fit(X, Y, { epochs: EPOCHS, batchSize: 4, shuffle: false });
  const { profile } = await session.post('HeapProfiler.stopSampling');
  rounds.push(inLoop(profile.head as Node, false) / steps);
}
session.disconnect();
console.log(JSON.stringify({ steps, rounds, bytesPerStep: Math.min(...rounds) }));

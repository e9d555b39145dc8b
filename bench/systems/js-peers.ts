// The JavaScript peers, in this process: TensorFlow.js (cpu and wasm backends) and brain.js.
// They are devDependencies, imported only when asked for, so the bench still runs (and says why a
// peer is missing) where they are not installed.
import { Random } from '../../src/index.js';
import type { Pool, TrainWorkload } from '../workloads.js';
import type { FashionData, FashionRun, TrainSystem } from './types.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Tf = any;

let tfModule: Tf | null = null;

// A module name in a variable keeps bundlers (tsup for dist/bench.js and the CLI) from inlining
// the peers: they stay optional run-time imports.
async function importPeer(name: string): Promise<Tf> {
  try {
    return await import(name);
  } catch (e) {
    throw new Error(`${name} cannot be imported (npm install --save-dev ${name}): ${(e as Error).message.split('\n')[0]}`);
  }
}

/** Imports tfjs (and its wasm backend) once, without its "install tfjs-node" banner. */
async function importTf(): Promise<Tf> {
  if (tfModule) return tfModule;
  const log = console.log, warn = console.warn;
  console.log = console.warn = () => {};
  try {
    const tf = await importPeer('@tensorflow/tfjs');
    await importPeer('@tensorflow/tfjs-backend-wasm');
    tfModule = tf;
    return tf;
  } finally {
    console.log = log;
    console.warn = warn;
  }
}

/** Switches tfjs to `name` ('cpu' or 'wasm'); the wasm binary is read from node_modules, no network. */
export async function useTf(name: 'cpu' | 'wasm'): Promise<Tf> {
  const tf = await importTf();
  const log = console.log, warn = console.warn;
  console.log = console.warn = () => {};
  try {
    if (!(await tf.setBackend(name))) throw new Error(`tfjs: the ${name} backend did not initialize`);
    await tf.ready();
    tf.tensor1d([0]).dispose(); // the cpu backend prints its banner on the first tensor it stores
  } finally {
    console.log = log;
    console.warn = warn;
  }
  return tf;
}

/** What a tfjs backend reports about itself (threads, SIMD) for the results' notes. */
export function tfInfo(tf: Tf): string {
  if (tf.getBackend() !== 'wasm') return 'tfjs cpu';
  const threads = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  return `tfjs wasm (simd ${simd ? 'on' : 'off'}, threads ${threads ? 'on' : 'off'})`;
}

/** The workload's MLP as tf variables: He-normal weights for ReLU, Glorot-uniform otherwise. */
function tfModel(tf: Tf, w: TrainWorkload, seed: number) {
  const vars: Tf[] = [];
  const layers: { W: Tf; b: Tf }[] = [];
  for (let l = 0; l + 1 < w.sizes.length; l++) {
    const inp = w.sizes[l], out = w.sizes[l + 1];
    const W = w.hidden === 'relu'
      ? tf.variable(tf.randomNormal([inp, out], 0, Math.sqrt(2 / inp), 'float32', seed + l))
      : tf.variable(tf.randomUniform([inp, out], -Math.sqrt(6 / (inp + out)), Math.sqrt(6 / (inp + out)), 'float32', seed + l));
    const b = tf.variable(tf.zeros([out]));
    layers.push({ W, b });
    vars.push(W, b);
  }
  const logits = (x: Tf): Tf => {
    let h = x;
    layers.forEach(({ W, b }, l) => {
      const z = tf.add(tf.matMul(h, W), b);
      h = l === layers.length - 1 ? z : (w.hidden === 'relu' ? tf.relu(z) : tf.tanh(z));
    });
    return h;
  };
  const loss = (x: Tf, y: Tf): Tf => (w.output === 'softmax'
    ? tf.losses.softmaxCrossEntropy(y, logits(x))
    : tf.losses.sigmoidCrossEntropy(y, logits(x)));
  const optimizer = w.optimizer === 'adam' ? tf.train.adam(w.lr) : tf.train.sgd(w.lr);
  const step = (x: Tf, y: Tf): void => {
    tf.tidy(() => {
      optimizer.minimize(() => loss(x, y), false, vars);
    });
  };
  const dispose = (): void => {
    vars.forEach((v) => v.dispose());
    optimizer.dispose();
  };
  return { logits, loss, step, dispose };
}

/**
 * A manual train step (optimizer.minimize over tf.variables), the fastest way tfjs trains: a
 * unit of work is one step; the pool's batches are tensors made before timing.
 */
export async function tfjsTrainer(name: 'cpu' | 'wasm', w: TrainWorkload, pool: Pool): Promise<TrainSystem> {
  const tf = await useTf(name);
  const inp = w.sizes[0], out = w.sizes[w.sizes.length - 1];
  const model = tfModel(tf, w, 1);
  const nb = Math.min(pool.batches, 16);
  const xs: Tf[] = [], ys: Tf[] = [];
  for (let i = 0; i < nb; i++) {
    xs.push(tf.tensor2d(pool.x.subarray(i * w.batch * inp, (i + 1) * w.batch * inp), [w.batch, inp]));
    ys.push(tf.tensor2d(pool.y.subarray(i * w.batch * out, (i + 1) * w.batch * out), [w.batch, out]));
  }
  let next = 0;
  return {
    system: `tfjs-${name}`,
    note: tfInfo(tf),
    samplesPerUnit: w.batch,
    checkLoss: () => tf.tidy(() => model.loss(xs[0], ys[0]).dataSync()[0]),
    trainOnCheck: (steps) => {
      for (let s = 0; s < steps; s++) model.step(xs[0], ys[0]);
    },
    run: async (units) => {
      await tf.setBackend(name); // a no-op unless another tfjs system ran in between
      for (let u = 0; u < units; u++) {
        model.step(xs[next], ys[next]);
        next = (next + 1) % nb;
      }
    },
    dispose: () => {
      model.dispose();
      xs.forEach((t) => t.dispose());
      ys.forEach((t) => t.dispose());
    },
  };
}

/** Fashion-MNIST on tfjs: shuffled batches gathered from the training tensor, as model.fit does. */
export async function tfjsFashion(name: 'cpu' | 'wasm', w: TrainWorkload, data: FashionData, epochs: number): Promise<FashionRun> {
  const tf = await useTf(name);
  const model = tfModel(tf, w, 1);
  const X = tf.tensor2d(data.trainX, [data.trainRows, 784]);
  const Y = tf.oneHot(tf.tensor1d(data.trainY, 'int32'), 10).toFloat();
  const TX = tf.tensor2d(data.testX, [data.testRows, 784]);
  const run: FashionRun = { system: `tfjs-${name}`, note: tfInfo(tf), epochSeconds: [], testAccuracy: [], trainLoss: [] };
  const rng = new Random(3);
  const order = new Int32Array(data.trainRows).map((_, i) => i);
  try {
    for (let e = 0; e < epochs; e++) {
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
      const t0 = performance.now();
      for (let s = 0; s < data.trainRows; s += w.batch) {
        const idx = order.subarray(s, Math.min(s + w.batch, data.trainRows));
        tf.tidy(() => {
          const it = tf.tensor1d(idx, 'int32');
          const xb = tf.gather(X, it), yb = tf.gather(Y, it);
          model.step(xb, yb);
        });
      }
      run.epochSeconds.push((performance.now() - t0) / 1000);
      let correct = 0;
      for (let s = 0; s < data.testRows; s += 1000) {
        const n = Math.min(1000, data.testRows - s);
        const pred = tf.tidy(() => model.logits(TX.slice([s, 0], [n, 784])).argMax(1).dataSync() as Int32Array);
        for (let i = 0; i < n; i++) if (pred[i] === data.testY[s + i]) correct++;
      }
      run.testAccuracy.push(correct / data.testRows);
    }
  } finally {
    model.dispose();
    X.dispose();
    Y.dispose();
    TX.dispose();
  }
  return run;
}

/**
 * brain.js 1.6 NeuralNetwork: per-sample training, squared-error delta, the hidden activation on
 * the output layer too; a unit of work is one `train` iteration over a set of rows. Sigmoid
 * everywhere, brain.js's default: its ReLU net puts a ReLU on the output (which cannot fit one-hot
 * targets) and its tanh net does not learn XOR here. Its default trainer (SGD, momentum 0.1) for
 * every workload, as its users train: its 'adam' praxis is far slower per sample.
 */
export async function brainTrainer(w: TrainWorkload, pool: Pool): Promise<TrainSystem> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const mod: any = await importPeer('brain.js');
  const brain = mod.default ?? mod;
  const inp = w.sizes[0], out = w.sizes[w.sizes.length - 1];
  const activation = 'sigmoid';
  const net = new brain.NeuralNetwork({ hiddenLayers: w.sizes.slice(1, -1), activation });
  // a unit is one pass over these rows: XOR's 4, else a few batches' worth of per-sample steps
  const rows = Math.min(pool.rows, w.name === 'tiny-xor' ? 4 : w.name === 'wide-mlp' ? 8 : 64);
  const data: { input: number[]; output: number[] }[] = [];
  for (let r = 0; r < rows; r++) {
    data.push({ input: Array.from(pool.x.subarray(r * inp, (r + 1) * inp)), output: Array.from(pool.y.subarray(r * out, (r + 1) * out)) });
  }
  // SGD workloads keep their rate; Adam's 1e-3 is no SGD rate, brain.js's default 0.3 is
  const opts = { errorThresh: 1e-12, learningRate: w.optimizer === 'sgd' ? w.lr : 0.3, log: false };
  net.train(data, { ...opts, iterations: 1 }); // sizes the net (brain.js initializes on first train)
  return {
    system: 'brain.js',
    note: `per-sample, sigmoid hidden + output, squared error, SGD lr ${opts.learningRate} momentum 0.1`,
    samplesPerUnit: rows,
    checkLoss: () => {
      let sum = 0;
      for (const d of data) {
        const o = net.run(d.input);
        for (let j = 0; j < out; j++) sum += (o[j] - d.output[j]) ** 2;
      }
      return sum / (data.length * out);
    },
    trainOnCheck: (steps) => {
      net.train(data, { ...opts, iterations: steps });
    },
    run: (units) => {
      net.train(data, { ...opts, iterations: units });
    },
  };
}

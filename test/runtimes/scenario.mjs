// The training every runtime test runs (Node, Bun, Deno, workerd, Chromium), through the public
// API of whichever entry the runtime loaded: the seed 001 XOR network and an Iris classifier on
// the wasm backend. Plain JavaScript, no I/O: the caller passes the Iris CSV text, so the same file
// runs in a worker that has no file system. Returns plain JSON for comparison with Node.

/** The seed 001 network (MATH.md golden numbers, #4) and its initial weights. */
const XOR_X = [[0, 0], [0, 1], [1, 0], [1, 1]];
const XOR_Y = [0, 1, 1, 0];
const XOR_WEIGHTS = [
  { w: [0.5, -0.6, 0.3, 0.8, -0.4, 0.7, 0.9, -0.2], b: [0.1, 0, -0.1, 0.2] },
  { w: [0.6, -0.5, 0.4, 0.3], b: [-0.1] },
];

/** Parses data/iris.csv: a header `rows,cols,class names…`, then `f1,…,fcols,label` rows. */
export function parseIris(text) {
  const lines = text.trim().split(/\r?\n/);
  const head = lines[0].split(',');
  const rows = Number(head[0]), cols = Number(head[1]);
  const classes = head.slice(2);
  const x = [], y = [];
  for (const line of lines.slice(1)) {
    const f = line.split(',').map(Number);
    x.push(f.slice(0, cols));
    y.push(f[cols]);
  }
  if (x.length !== rows) throw new Error(`iris: header says ${rows} rows, found ${x.length}`);
  return { x, y, classes };
}

const round = (v) => Array.from(v, (t) => Number(t));

/**
 * lib: the loaded entry (its Model, fitNormalization, toMatrix…); backend: a wasm backend from it;
 * irisCsv: the text of data/iris.csv.
 */
export async function runScenario(lib, backend, irisCsv) {
  const { Model, toMatrix, fitNormalization } = lib;
  const out = { runtime: '', backend: backend.name, isa: backend.isa };

  // seed 001: full-batch SGD from the seed's weights, no shuffling: a deterministic run
  const xor = new Model({
    inputs: 2,
    layers: [{ units: 4, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
    loss: 'binaryCrossEntropy',
    optimizer: { type: 'sgd', learningRate: 0.5 },
  }, backend);
  xor.setWeights(XOR_WEIGHTS);
  const initial = xor.gradients(XOR_X, XOR_Y);
  const xorHistory = await xor.fit(XOR_X, XOR_Y, { epochs: 1000, batchSize: 4, shuffle: false });
  const xorPred = xor.predict(XOR_X);
  out.xor = {
    initialLoss: initial.loss,
    initialGrads: round(initial.grads),
    finalLoss: xorHistory.epochs[xorHistory.epochs.length - 1].loss,
    predictions: round(xorPred.data),
    accuracy: xorPred.data.reduce((n, p, i) => n + ((p > 0.5 ? 1 : 0) === XOR_Y[i] ? 1 : 0), 0) / 4,
    params: round(xor.params.data),
  };

  // Iris: 4-16-3 ReLU / softmax, Adam, standardized inputs, seeded init and shuffling; every 5th
  // row held out for testing
  const iris = parseIris(irisCsv);
  const trainX = [], trainY = [], testX = [], testY = [];
  iris.x.forEach((row, i) => (i % 5 === 4 ? testX : trainX).push(row));
  iris.y.forEach((label, i) => (i % 5 === 4 ? testY : trainY).push(label));
  const normalization = fitNormalization(toMatrix(trainX, 'iris'));
  const model = new Model({
    inputs: 4,
    layers: [{ units: 16, activation: 'relu' }, { units: 3, activation: 'softmax' }],
    loss: 'categoricalCrossEntropy',
    optimizer: { type: 'adam', learningRate: 0.01 },
    seed: 42,
    normalization,
    classes: iris.classes,
  }, backend);
  const history = await model.fit(trainX, trainY, { epochs: 60, batchSize: 16, seed: 7 });
  const test = model.evaluate(testX, testY);
  const train = model.evaluate(trainX, trainY);
  out.iris = {
    finalLoss: history.epochs[history.epochs.length - 1].loss,
    trainAccuracy: train.accuracy,
    testAccuracy: test.accuracy,
    testLoss: test.loss,
    params: round(model.params.data),
  };
  return out;
}

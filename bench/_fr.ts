import { createModel } from '../src/index.js';
import { loadFashion } from './fashion.js';
import { modelSpec, TRAIN_WORKLOADS } from './workloads.js';
const d = loadFashion('/usr/share/datasets/fashion-mnist');
const w = TRAIN_WORKLOADS['fashion-regularized'];
const model = await createModel(modelSpec(w), { backend: 'native', threads: 1 });
const tx = { data: d.testX, shape: [d.testRows, 784] as [number, number] };
let total = 0;
await model.fit({ data: d.trainX, shape: [d.trainRows, 784] }, d.trainY, { epochs: 20, batchSize: 128, onEpochEnd: (l) => {
  total += l.seconds;
  console.log(l.epoch, l.seconds.toFixed(2), total.toFixed(1), l.loss.toFixed(4), model.evaluate(tx, d.testY, 1000).accuracy?.toFixed(4));
} });

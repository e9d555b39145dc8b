// Classification and regression metrics against scikit-learn's definitions: hand-worked numbers
// (the confusion matrices and sums are in the comments), a straightforward second implementation
// on seeded random data with ties and absent classes, and the numbers evaluate and fit report.
import { describe, expect, it } from 'vitest';
import { JsBackend } from '../src/backends/js.js';
import { classificationMetrics, MetricAccumulator, regressionMetrics, rocAuc } from '../src/metrics.js';
import { Model } from '../src/model/model.js';
import { Random } from '../src/random.js';
import type { ModelSpec } from '../src/spec.js';

describe('precision, recall, F1 (sklearn average=None and average="macro", zero_division=0)', () => {
  // y_true = [0, 0, 0, 0, 1, 1, 2], y_pred = [0, 0, 1, 1, 1, 1, 1]; confusion (rows true):
  //   [2 2 0]   class 0: tp 2, predicted 2, actual 4 → P 1,   R 1/2, F1 2·2/(4+2) = 2/3
  //   [0 2 0]   class 1: tp 2, predicted 5, actual 2 → P 2/5, R 1,   F1 2·2/(2+5) = 4/7
  //   [0 1 0]   class 2: tp 0, predicted 0, actual 1 → P 0 (0/0), R 0, F1 0
  // macro P = 1.4/3 = 0.4667, R = 1.5/3 = 0.5, F1 = (2/3 + 4/7)/3 = 26/63 = 0.4127: what
  // precision_score / recall_score / f1_score(average='macro', zero_division=0) give.
  const yTrue = [0, 0, 0, 0, 1, 1, 2], yPred = [0, 0, 1, 1, 1, 1, 1];

  it('per class and macro, with a class that is never predicted', () => {
    const m = classificationMetrics(yTrue, yPred, 3);
    expect(m.perClass.precision).toEqual([1, 0.4, 0]);
    expect(m.perClass.recall).toEqual([0.5, 1, 0]);
    expect(m.perClass.f1[0]).toBeCloseTo(2 / 3, 15);
    expect(m.perClass.f1[1]).toBeCloseTo(4 / 7, 15);
    expect(m.perClass.f1[2]).toBe(0);
    expect(m.perClass.support).toEqual([4, 2, 1]);
    expect(m.precision).toBeCloseTo(1.4 / 3, 15);
    expect(m.recall).toBeCloseTo(0.5, 15);
    expect(m.f1).toBeCloseTo(26 / 63, 15);
  });

  it('a class absent from targets and predictions stays out of the macro average (sklearn default labels)', () => {
    // the same rows with a fourth class that never occurs: its scores are 0 with support 0, and
    // the macro averages are still over classes 0–2
    const m = classificationMetrics(yTrue, yPred, 4);
    expect(m.perClass.precision).toEqual([1, 0.4, 0, 0]);
    expect(m.perClass.support).toEqual([4, 2, 1, 0]);
    expect(m.precision).toBeCloseTo(1.4 / 3, 15);
    expect(m.f1).toBeCloseTo(26 / 63, 15);
  });

  it('a class that is predicted but never true counts, with recall 0 (0/0)', () => {
    // y_true = [0, 0, 1, 1, 1, 2], y_pred = [0, 1, 1, 1, 0, 3]:
    //   class 0: tp 1, predicted 2, actual 2 → P 1/2, R 1/2, F1 1/2
    //   class 1: tp 2, predicted 3, actual 3 → P 2/3, R 2/3, F1 2/3
    //   class 2: never predicted → P 0, R 0, F1 0;  class 3: never true → P 0, R 0, F1 0
    // macro over the four present classes: (1/2 + 2/3)/4 = 7/24 for each
    const m = classificationMetrics([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 0, 3], 4);
    expect(m.perClass.recall).toEqual([0.5, 2 / 3, 0, 0]);
    expect(m.precision).toBeCloseTo(7 / 24, 15);
    expect(m.recall).toBeCloseTo(7 / 24, 15);
    expect(m.f1).toBeCloseTo(7 / 24, 15);
  });

  it('refuses labels outside [0, k) and mismatched lengths, naming the row', () => {
    expect(() => classificationMetrics([0, 3], [0, 1], 3)).toThrow(/target 1 is 3/);
    expect(() => classificationMetrics([0, 1], [0, -1], 3)).toThrow(/prediction 1 is -1/);
    expect(() => classificationMetrics([0, 1], [0], 3)).toThrow(/2 targets but 1 predictions/);
  });
});

describe('ROC AUC (sklearn roc_auc_score)', () => {
  it("sklearn's documented example: 0.75", () => {
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBe(0.75);
  });

  it('ties share their average rank', () => {
    // scores sorted: 0.1 (neg) 0.35 (pos) 0.4 0.4 0.4 (neg, neg, pos) 0.8 (pos); ranks 1, 2,
    // 4, 4, 4, 6. Positives' rank sum 2 + 4 + 6 = 12, AUC = (12 − 3·4/2) / (3·3) = 6/9
    expect(rocAuc([0.1, 0.4, 0.35, 0.8, 0.4, 0.4], [0, 0, 1, 1, 0, 1])).toBeCloseTo(2 / 3, 15);
    // every score equal: 0.5
    expect(rocAuc([0.3, 0.3, 0.3, 0.3], [0, 1, 0, 1])).toBe(0.5);
  });

  it('is undefined with a single class in the targets (sklearn raises)', () => {
    expect(rocAuc([0.1, 0.9], [1, 1])).toBeUndefined();
    expect(rocAuc([0.1, 0.9], [0, 0])).toBeUndefined();
  });
});

describe('MAE, RMSE, R² (sklearn mean_absolute_error, root_mean_squared_error, r2_score)', () => {
  it("sklearn's documented example", () => {
    // errors −0.5, 0.5, 0, 1: MAE 2/4 = 0.5, MSE 1.5/4 = 0.375, RMSE 0.61237; mean of y 2.875,
    // ss_tot 29.1875, R² = 1 − 1.5/29.1875 = 0.948608137
    const m = regressionMetrics([2.5, 0, 2, 8], [3, -0.5, 2, 7], 4);
    expect(m.mae).toBeCloseTo(0.5, 15);
    expect(m.rmse).toBeCloseTo(Math.sqrt(0.375), 15);
    expect(m.r2).toBeCloseTo(0.9486081370449679, 14);
  });

  it('several outputs: each metric per output, then their plain mean (multioutput="uniform_average")', () => {
    // y_true [[0.5, 1], [-1, 1], [7, -6]], y_pred [[0, 2], [-1, 2], [8, -5]]
    // output 0: ss_res 1.25, ss_tot 36.1667 → R² 0.965438; MSE 0.41667 → RMSE 0.645497
    // output 1: ss_res 3,    ss_tot 32.6667 → R² 0.908163; MSE 1       → RMSE 1
    // MAE 0.75; RMSE 0.822749; R² 0.936801
    const m = regressionMetrics([0, 2, -1, 2, 8, -5], [0.5, 1, -1, 1, 7, -6], 3, 2);
    expect(m.mae).toBeCloseTo(0.75, 14);
    expect(m.rmse).toBeCloseTo((Math.sqrt(1.25 / 3) + 1) / 2, 14);
    expect(m.r2).toBeCloseTo((1 - 1.25 / (108.5 / 3) + 1 - 3 / (98 / 3)) / 2, 14);
  });

  it('a constant target: R² is 1 for a perfect fit, else 0 (force_finite)', () => {
    expect(regressionMetrics([2, 2, 2], [2, 2, 2], 3).r2).toBe(1);
    expect(regressionMetrics([1, 2, 3], [2, 2, 2], 3).r2).toBe(0);
  });

  it('keeps its precision for targets far from zero', () => {
    // the same residuals on y + 1e6: R² unchanged (the sums are taken about the first target)
    const shifted = regressionMetrics([2.5 + 1e6, 1e6, 2 + 1e6, 8 + 1e6], [3 + 1e6, -0.5 + 1e6, 2 + 1e6, 7 + 1e6], 4);
    expect(shifted.r2).toBeCloseTo(0.9486081370449679, 9);
  });
});

// ---- a second, deliberately plain implementation of each definition -------------------------

function plainClassMetrics(yTrue: number[], yPred: number[], k: number) {
  const precision: number[] = [], recall: number[] = [], f1: number[] = [];
  const present: number[] = [];
  for (let c = 0; c < k; c++) {
    const tp = yTrue.filter((t, i) => t === c && yPred[i] === c).length;
    const fp = yTrue.filter((t, i) => t !== c && yPred[i] === c).length;
    const fn = yTrue.filter((t, i) => t === c && yPred[i] !== c).length;
    const p = tp + fp === 0 ? 0 : tp / (tp + fp), r = tp + fn === 0 ? 0 : tp / (tp + fn);
    precision.push(p);
    recall.push(r);
    f1.push(p + r === 0 ? 0 : (2 * p * r) / (p + r));
    if (yTrue.includes(c) || yPred.includes(c)) present.push(c);
  }
  const mean = (v: number[]) => present.reduce((s, c) => s + v[c], 0) / present.length;
  return { precision, recall, f1, macro: { precision: mean(precision), recall: mean(recall), f1: mean(f1) } };
}

/** The probability that a random positive scores above a random negative, ties counting 1/2. */
function plainAuc(scores: number[], labels: number[]): number {
  let wins = 0, pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < scores.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      wins += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return wins / pairs;
}

function plainRegression(pred: number[], target: number[]) {
  const n = target.length, mean = target.reduce((s, v) => s + v, 0) / n;
  const ssRes = target.reduce((s, t, i) => s + (t - pred[i]) ** 2, 0);
  const ssTot = target.reduce((s, t) => s + (t - mean) ** 2, 0);
  return {
    mae: target.reduce((s, t, i) => s + Math.abs(t - pred[i]), 0) / n,
    rmse: Math.sqrt(ssRes / n),
    r2: ssTot === 0 ? (ssRes === 0 ? 1 : 0) : 1 - ssRes / ssTot,
  };
}

describe('against a plain implementation on seeded random data', () => {
  it('classes (some absent, some never predicted), 200 draws', () => {
    const rng = new Random(7);
    for (let draw = 0; draw < 200; draw++) {
      const k = 2 + rng.int(5), n = 1 + rng.int(40);
      // labels from a subset of the classes, so that some are absent from one side or both
      const yTrue = Array.from({ length: n }, () => rng.int(k - (draw % 2)));
      const yPred = Array.from({ length: n }, () => (rng.int(3) === 0 ? yTrue[0] : rng.int(k)));
      const got = classificationMetrics(yTrue, yPred, k), want = plainClassMetrics(yTrue, yPred, k);
      for (let c = 0; c < k; c++) {
        expect(got.perClass.precision[c]).toBeCloseTo(want.precision[c], 12);
        expect(got.perClass.recall[c]).toBeCloseTo(want.recall[c], 12);
        expect(got.perClass.f1[c]).toBeCloseTo(want.f1[c], 12);
      }
      expect(got.precision).toBeCloseTo(want.macro.precision, 12);
      expect(got.recall).toBeCloseTo(want.macro.recall, 12);
      expect(got.f1).toBeCloseTo(want.macro.f1, 12);
    }
  });

  it('ROC AUC with many ties (scores on a coarse grid), 200 draws', () => {
    const rng = new Random(8);
    for (let draw = 0; draw < 200; draw++) {
      const n = 2 + rng.int(60);
      const labels = Array.from({ length: n }, (_, i) => (i < 2 ? i : rng.int(2)));
      const scores = labels.map((l) => Math.round((rng.uniform() + 0.3 * l) * 5) / 5);
      expect(rocAuc(scores, labels)).toBeCloseTo(plainAuc(scores, labels), 12);
    }
  });

  it('regression, including targets far from zero, 100 draws', () => {
    const rng = new Random(9);
    for (let draw = 0; draw < 100; draw++) {
      const n = 2 + rng.int(50), offset = draw % 3 === 0 ? 1000 : 0;
      const target = Array.from({ length: n }, () => offset + rng.normal() * 3);
      const pred = target.map((t) => t + rng.normal());
      const got = regressionMetrics(pred, target, n), want = plainRegression(pred, target);
      expect(got.mae).toBeCloseTo(want.mae, 10);
      expect(got.rmse).toBeCloseTo(want.rmse, 10);
      expect(got.r2).toBeCloseTo(want.r2, 9);
    }
  });

  it('the batch-by-batch accumulator gives the same numbers as one pass', () => {
    const rng = new Random(10), n = 57, k = 3;
    const a = Float32Array.from({ length: n * k }, () => rng.uniform());
    const y = new Float32Array(n * k);
    for (let i = 0; i < n; i++) y[i * k + rng.int(k)] = 1;
    const whole = new MetricAccumulator('classification', k), parts = new MetricAccumulator('classification', k);
    whole.add(a, y, n);
    for (let s = 0; s < n; s += 10) parts.add(a.subarray(s * k), y.subarray(s * k), Math.min(10, n - s));
    expect(parts.classification()).toEqual(whole.classification());
  });
});

// ---- what evaluate and fit report -------------------------------------------------------------

const argmaxRows = (data: ArrayLike<number>, rows: number, k: number): number[] => Array.from({ length: rows }, (_, i) => {
  let best = 0;
  for (let j = 1; j < k; j++) if (data[i * k + j] > data[i * k + best]) best = j;
  return best;
});

function blobs(seed: number, rows: number, k: number): { x: number[][]; y: number[] } {
  const rng = new Random(seed), x: number[][] = [], y: number[] = [];
  for (let i = 0; i < rows; i++) {
    const c = rng.int(k);
    x.push([c + rng.normal() * 0.8, (c % 2) - rng.normal() * 0.8]);
    y.push(c);
  }
  return { x, y };
}

describe('evaluate and fit report the metrics of their task', () => {
  const backend = new JsBackend();
  const classifier = (k: number): ModelSpec => ({
    inputs: 2, layers: [{ units: 8, activation: 'tanh' }, k === 1 ? { units: 1, activation: 'sigmoid' } : { units: k, activation: 'softmax' }],
    loss: k === 1 ? 'binaryCrossEntropy' : 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, seed: 3,
  });

  it('softmax: evaluate gives precision, recall, F1 of the argmax predictions, no regression metrics', async () => {
    const { x, y } = blobs(1, 120, 3), model = new Model(classifier(3), backend);
    await model.fit(x, y, { epochs: 3, batchSize: 16 });
    const e = model.evaluate(x, y), want = plainClassMetrics(y, Array.from(model.predictClasses(x)), 3);
    expect(e.precision).toBeCloseTo(want.macro.precision, 12);
    expect(e.recall).toBeCloseTo(want.macro.recall, 12);
    expect(e.f1).toBeCloseTo(want.macro.f1, 12);
    expect(e.perClass!.f1).toEqual(want.f1.map((v) => expect.closeTo(v, 12)));
    expect(e.auc).toBeUndefined();
    expect(e.mae).toBeUndefined();
  });

  it('one sigmoid output: ROC AUC of the probabilities, classes at 0.5', async () => {
    const { x, y: y3 } = blobs(2, 100, 2), y = y3.map((c) => c % 2);
    const model = new Model(classifier(1), backend);
    await model.fit(x, y, { epochs: 2, batchSize: 16 });
    const p = Array.from(model.predict(x).data), e = model.evaluate(x, y);
    expect(e.auc).toBeCloseTo(plainAuc(p, y), 12);
    expect(e.f1).toBeCloseTo(plainClassMetrics(y, p.map((v) => (v >= 0.5 ? 1 : 0)), 2).macro.f1, 12);
  });

  it('mse: MAE, RMSE, R² of the predictions, no classification metrics', async () => {
    const rng = new Random(4), x = Array.from({ length: 80 }, () => [rng.normal(), rng.normal()]);
    const y = x.map(([a, b]) => 2 * a - b + 5);
    const model = new Model({ inputs: 2, layers: [{ units: 1, activation: 'linear' }], loss: 'mse', optimizer: { type: 'adam', learningRate: 0.05 }, seed: 1 }, backend);
    await model.fit(x, y, { epochs: 5, batchSize: 8 });
    const e = model.evaluate(x, y), want = plainRegression(Array.from(model.predict(x).data), y);
    expect(e.mae).toBeCloseTo(want.mae, 5);
    expect(e.rmse).toBeCloseTo(want.rmse, 5);
    expect(e.r2).toBeCloseTo(want.r2, 5);
    expect(e.loss).toBeCloseTo(want.rmse ** 2, 4);
    expect(e.precision).toBeUndefined();
    expect(e.accuracy).toBeUndefined();
  });

  it('epoch logs: training metrics from the outputs before each update, validation metrics as evaluate gives them', async () => {
    const { x, y } = blobs(5, 90, 3), val = blobs(6, 40, 3);
    const model = new Model(classifier(3), backend);
    // one batch per epoch, in order: epoch 1's training metrics are those of the initial weights
    const before = model.evaluate(x, y);
    let afterFirst: ReturnType<Model['evaluate']> | null = null;
    const history = await model.fit(x, y, {
      epochs: 2, batchSize: 90, shuffle: false, validationData: [val.x, val.y],
      onEpochEnd: (e) => {
        if (e.epoch === 1) afterFirst = model.evaluate(val.x, val.y);
      },
    });
    const [e1, e2] = history.epochs;
    expect(e1.precision).toBeCloseTo(before.precision!, 12);
    expect(e1.recall).toBeCloseTo(before.recall!, 12);
    expect(e1.f1).toBeCloseTo(before.f1!, 12);
    expect(e1.perClass).toEqual(before.perClass);
    expect(e1.valF1).toBeCloseTo(afterFirst!.f1!, 12);
    expect(e1.valPerClass).toEqual(afterFirst!.perClass);
    const last = model.evaluate(val.x, val.y), pred = argmaxRows(model.predict(val.x).data, 40, 3);
    expect(e2.valPrecision).toBeCloseTo(plainClassMetrics(val.y, pred, 3).macro.precision, 12);
    expect(e2.valRecall).toBeCloseTo(last.recall!, 12);
  });

  it('epoch logs of a binary and of a regression fit carry roc_auc and MAE/RMSE/R²', async () => {
    const { x, y: y3 } = blobs(7, 60, 2), y = y3.map((c) => c % 2);
    const bin = new Model(classifier(1), backend);
    const before = bin.evaluate(x, y);
    const hb = await bin.fit(x, y, { epochs: 1, batchSize: 60, shuffle: false, validationSplit: 0.25 });
    // the training rows are the first 45 (validationSplit holds out the last)
    expect(hb.epochs[0].auc).toBeCloseTo(new Model(classifier(1), backend).evaluate(x.slice(0, 45), y.slice(0, 45)).auc!, 12);
    expect(before.auc).toBeDefined();
    expect(hb.epochs[0].valAuc).toBeCloseTo(bin.evaluate(x.slice(45), y.slice(45)).auc!, 12);

    const reg = new Model({ inputs: 2, layers: [{ units: 1, activation: 'linear' }], loss: 'mse', optimizer: { type: 'sgd', learningRate: 0.01 }, seed: 1 }, backend);
    const t = x.map(([a]) => 3 * a);
    const r0 = reg.evaluate(x.slice(0, 45), t.slice(0, 45));
    const hr = await reg.fit(x, t, { epochs: 1, batchSize: 64, shuffle: false, validationSplit: 0.25 });
    expect(hr.epochs[0].mae).toBeCloseTo(r0.mae!, 5);
    expect(hr.epochs[0].rmse).toBeCloseTo(r0.rmse!, 5);
    expect(hr.epochs[0].r2).toBeCloseTo(r0.r2!, 5);
    const r1 = reg.evaluate(x.slice(45), t.slice(45));
    expect(hr.epochs[0].valR2).toBeCloseTo(r1.r2!, 10);
    expect(hr.epochs[0].valMae).toBeCloseTo(r1.mae!, 10);
    expect(hr.epochs[0].valRmse).toBeCloseTo(r1.rmse!, 10);
  });
});

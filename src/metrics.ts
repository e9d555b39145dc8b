// Classification and regression metrics, with scikit-learn's definitions:
// - precision, recall, F1 per class and macro (precision_score / recall_score / f1_score with
//   average=None and average='macro', zero_division=0): a ratio whose denominator is 0 is 0, and
//   the macro average runs over the classes that occur in the targets or the predictions (sklearn's
//   default labels), so a class that is in neither does not pull the average down;
// - ROC AUC for a binary task (roc_auc_score): the Mann–Whitney statistic, tied scores counted by
//   their average rank; undefined (absent) when only one class occurs in the targets;
// - MAE, RMSE and R² (mean_absolute_error, root_mean_squared_error, r2_score): per output, then
//   the plain mean over the outputs; R² of a constant target is 1 for a perfect fit, else 0.
// With sample weights (scikit-learn's sample_weight, Keras's weighted metrics): the confusion
// matrix counts each row with its weight (so support is a sum of weights), ROC AUC counts each
// (positive, negative) pair with the product of their weights, and MAE, RMSE and R² are weighted
// means (R²'s mean target too).
// MetricAccumulator gathers what these need batch by batch without allocating, so fit can report
// them per epoch at the cost of one pass over each batch's outputs.

/** Per-class precision, recall, F1 and support (rows of that class in the targets). */
export interface PerClassMetrics {
  precision: number[];
  recall: number[];
  f1: number[];
  support: number[];
}

export interface ClassificationMetrics {
  /** Macro averages over the classes present in the targets or the predictions. */
  precision: number;
  recall: number;
  f1: number;
  perClass: PerClassMetrics;
  /** ROC AUC, binary tasks only, when both classes occur in the targets. */
  auc?: number;
}

export interface RegressionMetrics {
  mae: number;
  rmse: number;
  r2: number;
}

/** Precision, recall and F1 from a confusion matrix, counts[true * k + predicted]. */
export function metricsFromConfusion(counts: ArrayLike<number>, k: number): ClassificationMetrics {
  const precision: number[] = [], recall: number[] = [], f1: number[] = [], support: number[] = [];
  let p = 0, r = 0, f = 0, present = 0;
  for (let c = 0; c < k; c++) {
    let tp = 0, actual = 0, predicted = 0;
    for (let j = 0; j < k; j++) {
      actual += counts[c * k + j];
      predicted += counts[j * k + c];
    }
    tp = counts[c * k + c];
    const pc = predicted === 0 ? 0 : tp / predicted;
    const rc = actual === 0 ? 0 : tp / actual;
    // 2tp / (2tp + fp + fn), as sklearn computes it: 0 when the class is never right
    const fc = tp === 0 ? 0 : (2 * tp) / (actual + predicted);
    precision.push(pc);
    recall.push(rc);
    f1.push(fc);
    support.push(actual);
    if (actual > 0 || predicted > 0) {
      present++;
      p += pc;
      r += rc;
      f += fc;
    }
  }
  const avg = (s: number): number => (present === 0 ? 0 : s / present);
  return { precision: avg(p), recall: avg(r), f1: avg(f), perClass: { precision, recall, f1, support } };
}

/** Precision, recall and F1 of predicted class indices against true ones (k classes). */
export function classificationMetrics(yTrue: ArrayLike<number>, yPred: ArrayLike<number>, k: number,
  sampleWeight?: ArrayLike<number>): ClassificationMetrics {
  if (yTrue.length !== yPred.length) throw new RangeError(`classificationMetrics: ${yTrue.length} targets but ${yPred.length} predictions`);
  if (sampleWeight && sampleWeight.length !== yTrue.length) throw new RangeError(`classificationMetrics: ${yTrue.length} targets but ${sampleWeight.length} weights`);
  const counts = new Float64Array(k * k);
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i], p = yPred[i];
    if (!(Number.isInteger(t) && t >= 0 && t < k)) throw new RangeError(`classificationMetrics: target ${i} is ${t}, not a class in [0, ${k})`);
    if (!(Number.isInteger(p) && p >= 0 && p < k)) throw new RangeError(`classificationMetrics: prediction ${i} is ${p}, not a class in [0, ${k})`);
    counts[t * k + p] += sampleWeight ? sampleWeight[i] : 1;
  }
  return metricsFromConfusion(counts, k);
}

/**
 * ROC AUC of scores against 0/1 labels: the share of (positive, negative) pairs where the positive
 * scores higher, a tie counting 1/2 — the same number as the rank form (sum of the positives'
 * ranks − P(P+1)/2) / (P·N) with tied scores sharing their average rank, which sklearn computes.
 * Sorts the two classes' scores apart (native typed-array sorts) and merges them: cheap enough to
 * run on the training rows every epoch. Undefined when P or N is 0 (sklearn raises there).
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>, n = scores.length,
  sampleWeight?: ArrayLike<number>): number | undefined {
  if (sampleWeight) return weightedRocAuc(scores, labels, n, sampleWeight);
  let positives = 0;
  for (let i = 0; i < n; i++) if (labels[i] >= 0.5) positives++;
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return undefined;
  const pos = new Float64Array(positives), neg = new Float64Array(negatives);
  for (let i = 0, p = 0, q = 0; i < n; i++) {
    if (labels[i] >= 0.5) pos[p++] = scores[i];
    else neg[q++] = scores[i];
  }
  pos.sort();
  neg.sort();
  let below = 0, wins = 0;
  for (let i = 0; i < positives;) {
    const s = pos[i];
    while (below < negatives && neg[below] < s) below++;
    let tiedTo = below;
    while (tiedTo < negatives && neg[tiedTo] === s) tiedTo++;
    let same = 0;
    while (i < positives && pos[i] === s) {
      i++;
      same++;
    }
    wins += same * (below + (tiedTo - below) / 2);
  }
  return wins / (positives * negatives);
}

/**
 * The weighted form: each (positive, negative) pair counts with the product of their weights (a
 * tie half), over the product of the two classes' weight sums: sklearn's roc_auc_score with
 * sample_weight (the area under the weighted ROC curve). Undefined when either sum is 0.
 */
function weightedRocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>, n: number, w: ArrayLike<number>): number | undefined {
  const pos: number[] = [], neg: number[] = [];
  let wp = 0, wn = 0;
  for (let i = 0; i < n; i++) {
    if (labels[i] >= 0.5) {
      pos.push(i);
      wp += w[i];
    } else {
      neg.push(i);
      wn += w[i];
    }
  }
  if (!(wp > 0 && wn > 0)) return undefined;
  const byScore = (a: number, b: number): number => scores[a] - scores[b];
  pos.sort(byScore);
  neg.sort(byScore);
  let below = 0, wBelow = 0, wins = 0;
  for (let i = 0; i < pos.length;) {
    const s = scores[pos[i]];
    while (below < neg.length && scores[neg[below]] < s) wBelow += w[neg[below++]];
    let tiedTo = below, wTied = 0;
    while (tiedTo < neg.length && scores[neg[tiedTo]] === s) wTied += w[neg[tiedTo++]];
    let same = 0;
    while (i < pos.length && scores[pos[i]] === s) same += w[pos[i++]];
    wins += same * (wBelow + wTied / 2);
  }
  return wins / (wp * wn);
}

/**
 * MAE, RMSE and R² of predictions against targets, both (rows, outputs) row-major; with
 * `sampleWeight` (one per row), weighted means.
 */
export function regressionMetrics(pred: ArrayLike<number>, target: ArrayLike<number>, rows: number, outputs = 1,
  sampleWeight?: ArrayLike<number>): RegressionMetrics {
  if (pred.length !== rows * outputs || target.length !== rows * outputs) {
    throw new RangeError(`regressionMetrics: expected ${rows} × ${outputs} values, got ${pred.length} predictions and ${target.length} targets`);
  }
  if (sampleWeight && sampleWeight.length !== rows) throw new RangeError(`regressionMetrics: ${rows} rows but ${sampleWeight.length} weights`);
  const wt = (i: number): number => (sampleWeight ? sampleWeight[i] : 1);
  let total = 0;
  for (let i = 0; i < rows; i++) total += wt(i);
  let mae = 0, rmse = 0, rr = 0;
  for (let j = 0; j < outputs; j++) {
    let mean = 0;
    for (let i = 0; i < rows; i++) mean += wt(i) * target[i * outputs + j];
    mean /= total;
    let abs = 0, ssRes = 0, ssTot = 0;
    for (let i = 0; i < rows; i++) {
      const t = target[i * outputs + j], e = pred[i * outputs + j] - t, w = wt(i);
      abs += w * Math.abs(e);
      ssRes += w * e * e;
      ssTot += w * (t - mean) * (t - mean);
    }
    mae += abs / total;
    rmse += Math.sqrt(ssRes / total);
    rr += r2(ssRes, ssTot);
  }
  return { mae: mae / outputs, rmse: rmse / outputs, r2: rr / outputs };
}

/** R² from the residual and total sums of squares, with sklearn's rule for a constant target. */
function r2(ssRes: number, ssTot: number): number {
  if (ssTot === 0) return ssRes === 0 ? 1 : 0;
  return 1 - ssRes / ssTot;
}

/**
 * What the metrics need, gathered batch by batch from a network's outputs and targets:
 * - classification: the confusion matrix (class = the argmax of the outputs and of the targets,
 *   or for one sigmoid output, output ≥ 0.5 and target ≥ 0.5), and for a binary task the scores
 *   for the ROC AUC (class 1's output) when `scoreRows` leaves room for them;
 * - regression: per output, sums of |e|, e², and of the target (shifted by the first target seen,
 *   so that the total sum of squares keeps its precision for targets far from 0).
 * `add` allocates nothing: it runs once per training step.
 */
export class MetricAccumulator {
  readonly counts: Float64Array;
  readonly k: number;
  private readonly scores: Float32Array;
  private readonly labels: Uint8Array;
  /** The scored rows' weights, once a weighted batch came (the rows before it weigh 1). */
  private readonly scoreWeights: Float32Array;
  private weighted = false;
  private scored = 0;
  private rows = 0;
  /** Σ of the rows' weights (rows, when unweighted). */
  private total = 0;
  private readonly sums: Float64Array; // per output: |e|, e², (y − shift), (y − shift)²
  private readonly shift: Float64Array;

  constructor(readonly kind: 'classification' | 'regression', readonly outputs: number, scoreRows = 0) {
    this.k = kind === 'classification' ? Math.max(2, outputs) : 0;
    this.counts = new Float64Array(this.k * this.k);
    const binary = kind === 'classification' && this.k === 2;
    this.scores = new Float32Array(binary ? scoreRows : 0);
    this.labels = new Uint8Array(binary ? scoreRows : 0);
    this.scoreWeights = new Float32Array(binary ? scoreRows : 0);
    this.sums = new Float64Array(kind === 'regression' ? 4 * outputs : 0);
    this.shift = new Float64Array(kind === 'regression' ? outputs : 0);
  }

  /** Whether this accumulator serves a task of this kind and width, with room for `rows` scores. */
  fits(kind: 'classification' | 'regression', outputs: number, rows: number): boolean {
    return kind === this.kind && outputs === this.outputs && (this.k !== 2 || this.scores.length >= rows);
  }

  reset(): void {
    this.counts.fill(0);
    this.sums.fill(0);
    this.scored = 0;
    this.rows = 0;
    this.total = 0;
    this.weighted = false;
  }

  /**
   * Adds m rows of outputs `a` and targets `y`, both (m, outputs) row-major, each row weighing
   * w[i] when w is given.
   */
  add(a: Float32Array, y: Float32Array, m: number, w: Float32Array | null = null): void {
    // one loop per rule, in functions of their own: V8 compiled such rules in one loop, the
    // unused one included, into code that boxed a number on every call
    if (this.kind === 'regression') {
      if (this.rows === 0 && m > 0) for (let j = 0; j < this.outputs; j++) this.shift[j] = y[j];
      if (w) addWeightedValues(a, y, w, m, this.outputs, this.sums, this.shift);
      else addValues(a, y, m, this.outputs, this.sums, this.shift);
    } else if (w) {
      weightedConfusion(a, y, w, m, this.outputs, this.counts, this.k);
    } else if (this.outputs === 1) {
      thresholdConfusion(a, y, m, this.counts);
    } else {
      argmaxConfusion(a, y, m, this.outputs, this.counts, this.k);
    }
    if (this.scored + m <= this.scores.length) {
      if (w && !this.weighted) {
        this.scoreWeights.fill(1, 0, this.scored);
        this.weighted = true;
      }
      if (this.weighted) for (let i = 0; i < m; i++) this.scoreWeights[this.scored + i] = w ? w[i] : 1;
      this.scored = keepScores(a, y, m, this.outputs, this.scores, this.labels, this.scored);
    }
    this.rows += m;
    this.total += w ? sum(w, m) : m;
  }

  /** Precision, recall, F1 and (binary, with the scores kept for every row) ROC AUC. */
  classification(): ClassificationMetrics {
    const m = metricsFromConfusion(this.counts, this.k);
    if (this.scores.length > 0 && this.scored === this.rows && this.rows > 0) {
      const auc = rocAuc(this.scores, this.labels, this.scored, this.weighted ? this.scoreWeights : undefined);
      if (auc !== undefined) m.auc = auc;
    }
    return m;
  }

  regression(): RegressionMetrics {
    const n = this.total, outs = this.outputs, s = this.sums;
    let mae = 0, rmse = 0, rr = 0;
    for (let j = 0; j < outs; j++) {
      const mean = s[4 * j + 2] / n;
      mae += s[4 * j] / n;
      rmse += Math.sqrt(s[4 * j + 1] / n);
      rr += r2(s[4 * j + 1], Math.max(0, s[4 * j + 3] - n * mean * mean));
    }
    return { mae: mae / outs, rmse: rmse / outs, r2: rr / outs };
  }
}

function sum(w: Float32Array, m: number): number {
  let s = 0;
  for (let i = 0; i < m; i++) s += w[i];
  return s;
}

/** The confusion matrix with weights: the classes as thresholdConfusion (one output) or argmaxConfusion. */
function weightedConfusion(a: Float32Array, y: Float32Array, w: Float32Array, m: number, outs: number, counts: Float64Array, k: number): void {
  for (let i = 0; i < m; i++) {
    if (outs === 1) {
      counts[(y[i] >= 0.5 ? 2 : 0) + (a[i] >= 0.5 ? 1 : 0)] += w[i];
      continue;
    }
    let best = 0, target = 0;
    for (let j = 1; j < outs; j++) {
      if (a[i * outs + j] > a[i * outs + best]) best = j;
      if (y[i * outs + j] > y[i * outs + target]) target = j;
    }
    counts[target * k + best] += w[i];
  }
}

function addWeightedValues(a: Float32Array, y: Float32Array, w: Float32Array, m: number, outs: number, s: Float64Array, shift: Float64Array): void {
  for (let i = 0; i < m; i++) {
    const wi = w[i];
    for (let j = 0; j < outs; j++) {
      const t = y[i * outs + j], e = a[i * outs + j] - t, d = t - shift[j];
      s[4 * j] += wi * Math.abs(e);
      s[4 * j + 1] += wi * e * e;
      s[4 * j + 2] += wi * d;
      s[4 * j + 3] += wi * d * d;
    }
  }
}

function thresholdConfusion(a: Float32Array, y: Float32Array, m: number, counts: Float64Array): void {
  for (let i = 0; i < m; i++) counts[(y[i] >= 0.5 ? 2 : 0) + (a[i] >= 0.5 ? 1 : 0)]++;
}

function argmaxConfusion(a: Float32Array, y: Float32Array, m: number, outs: number, counts: Float64Array, k: number): void {
  for (let i = 0; i < m; i++) {
    let best = 0, target = 0;
    for (let j = 1; j < outs; j++) {
      if (a[i * outs + j] > a[i * outs + best]) best = j;
      if (y[i * outs + j] > y[i * outs + target]) target = j;
    }
    counts[target * k + best]++;
  }
}

/** Class 1's score and the 0/1 label of m rows of a binary task, from `at` on; returns the new count. */
function keepScores(a: Float32Array, y: Float32Array, m: number, outs: number, scores: Float32Array, labels: Uint8Array, at: number): number {
  const col = outs === 1 ? 0 : 1;
  for (let i = 0; i < m; i++) {
    scores[at + i] = a[i * outs + col];
    labels[at + i] = outs === 1 ? (y[i] >= 0.5 ? 1 : 0) : (y[i * outs + 1] > y[i * outs] ? 1 : 0);
  }
  return at + m;
}

function addValues(a: Float32Array, y: Float32Array, m: number, outs: number, s: Float64Array, shift: Float64Array): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < outs; j++) {
      const t = y[i * outs + j], e = a[i * outs + j] - t, d = t - shift[j];
      s[4 * j] += Math.abs(e);
      s[4 * j + 1] += e * e;
      s[4 * j + 2] += d;
      s[4 * j + 3] += d * d;
    }
  }
}

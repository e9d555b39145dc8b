// Evaluating a network on in-memory rows: the loss and every metric of its task, in one forward
// pass per batch (fit's validation and Model.evaluate).
import type { Matrix } from '../data.js';
import { MetricAccumulator } from '../metrics.js';
import type { Evaluation } from './fit-options.js';
import type { Network } from './network.js';
import { weightSum } from './weights.js';

/** An accumulator for the network's task, with room for `rows` scores (ROC AUC of a binary task). */
export function accumulatorFor(net: Network, rows: number): MetricAccumulator {
  return new MetricAccumulator(net.hasAccuracy() ? 'classification' : 'regression', net.outputs, rows);
}

export function metricsOf(acc: MetricAccumulator): Partial<Evaluation> {
  return acc.kind === 'classification' ? acc.classification() : acc.regression();
}

/**
 * Loss, accuracy and every metric of the task over (X, Y), in one forward pass per batch; with
 * row weights W, the weighted loss sum over the rows and weighted metrics (as Keras evaluates
 * with sample_weight).
 */
export function evaluateNetwork(net: Network, X: Matrix, Y: Matrix, batchSize: number, W: Float32Array | null = null): Evaluation {
  const rows = X.shape[0], acc = accumulatorFor(net, rows);
  let loss = 0, correct = 0;
  for (let start = 0; start < rows; start += batchSize) {
    const p = net.plan(Math.min(batchSize, rows - start));
    net.stage(p, X, Y, start, undefined, W);
    net.forward(p);
    loss += net.lossDelta(p);
    if (net.hasAccuracy()) correct += net.correct(p);
    acc.add(p.acts[p.acts.length - 1].data, p.y.data, p.m, p.weighted ? p.w.data : null);
  }
  const result: Evaluation = { loss: loss / rows };
  if (net.hasAccuracy()) result.accuracy = correct / weightSum(W, rows);
  return Object.assign(result, metricsOf(acc));
}

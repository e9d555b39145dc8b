// model.summary(): the layers as a table (name, output shape, parameters, total), as Keras prints
// it, and the same numbers as data.
import { isDense, type LayerType, type ModelSpec } from '../spec.js';

export interface LayerSummary {
  /** `dense_1`, `dropout_1`, `batch_normalization_1`, `layer_normalization_1`, … numbered per type. */
  name: string;
  type: LayerType;
  /** The layer's activation (dropout: linear). */
  activation: string;
  /** [null, units]: null stands for the batch dimension (Keras prints it as None). */
  outputShape: [null, number];
  /**
   * Dense: weights (inputs × units) plus biases (units). Batch normalization: γ, β and the running
   * mean and variance (4 × width, as Keras counts them; the running two are not trained). Layer
   * normalization: γ and β. Dropout: none.
   */
  params: number;
  /** Dropout only: its rate. */
  rate?: number;
}

export interface ModelSummary {
  inputs: number;
  layers: LayerSummary[];
  totalParams: number;
  /** Every parameter the optimizer updates: all but batch normalization's running statistics. */
  trainableParams: number;
  /** The table, one line per layer, without a trailing newline. */
  text: string;
}

const thousands = (n: number): string => n.toLocaleString('en-US');
const NAMES: Record<LayerType, string> = {
  dense: 'dense', dropout: 'dropout', batchNormalization: 'batch_normalization', layerNormalization: 'layer_normalization',
};

export function summarize(spec: ModelSpec): ModelSummary {
  const layers: LayerSummary[] = [];
  const counts: Record<string, number> = {};
  let inp = spec.inputs, total = 0, frozen = 0;
  for (const l of spec.layers) {
    const type: LayerType = isDense(l) ? 'dense' : l.type;
    const name = `${NAMES[type]}_${(counts[type] = (counts[type] ?? 0) + 1)}`;
    if (isDense(l)) {
      const params = inp * l.units + l.units;
      layers.push({ name, type, activation: l.activation, outputShape: [null, l.units], params });
      total += params;
      inp = l.units;
    } else if (l.type === 'dropout') {
      layers.push({ name, type, activation: 'linear', outputShape: [null, inp], params: 0, rate: l.rate });
    } else {
      const bn = l.type === 'batchNormalization', params = (bn ? 4 : 2) * inp;
      layers.push({ name, type, activation: l.activation ?? 'linear', outputShape: [null, inp], params });
      total += params;
      if (bn) frozen += 2 * inp;
    }
  }
  const label = (l: LayerSummary): string => `${l.name} (${l.rate !== undefined ? `rate ${l.rate}` : l.activation})`;
  const rows = layers.map((l) => [label(l), `(None, ${l.outputShape[1]})`, thousands(l.params)]);
  const head = ['Layer (activation)', 'Output shape', 'Params'];
  const w = [0, 1, 2].map((c) => Math.max(head[c].length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]): string => `${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2].padStart(w[2])}`;
  const rule = '─'.repeat(w[0] + w[1] + w[2] + 4);
  const text = [
    `Input: (None, ${spec.inputs})`, rule, line(head), rule, ...rows.map(line), rule,
    `Total params: ${thousands(total)}`, `Trainable params: ${thousands(total - frozen)}`,
    ...(frozen > 0 ? [`Non-trainable params: ${thousands(frozen)}`] : []),
  ].join('\n');
  return { inputs: spec.inputs, layers, totalParams: total, trainableParams: total - frozen, text };
}

/**
 * summarize(spec), printed with console.log unless `print` is false, or through `print` when it is
 * a function (one call with the whole table): Model.summary's and WorkerModel.summary's rule.
 */
export function printSummary(spec: ModelSpec, print: boolean | ((text: string) => void) = true): ModelSummary {
  const s = summarize(spec);
  if (typeof print === 'function') print(s.text);
  else if (print) console.log(s.text);
  return s;
}

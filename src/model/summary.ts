// model.summary(): the layers as a table (name, output shape, parameters, total), as Keras prints
// it, and the same numbers as data.
import type { ModelSpec } from '../spec.js';

export interface LayerSummary {
  /** `dense_1`, `dense_2`, … in order. */
  name: string;
  type: 'dense';
  activation: string;
  /** [null, units]: null stands for the batch dimension (Keras prints it as None). */
  outputShape: [null, number];
  /** Weights (inputs × units) plus biases (units). */
  params: number;
}

export interface ModelSummary {
  inputs: number;
  layers: LayerSummary[];
  totalParams: number;
  /** Every parameter is trained (there are no frozen layers). */
  trainableParams: number;
  /** The table, one line per layer, without a trailing newline. */
  text: string;
}

const thousands = (n: number): string => n.toLocaleString('en-US');

export function summarize(spec: ModelSpec): ModelSummary {
  const layers: LayerSummary[] = [];
  let inp = spec.inputs, total = 0;
  spec.layers.forEach((l, i) => {
    const params = inp * l.units + l.units;
    layers.push({ name: `dense_${i + 1}`, type: 'dense', activation: l.activation, outputShape: [null, l.units], params });
    total += params;
    inp = l.units;
  });
  const rows = layers.map((l) => [`${l.name} (${l.activation})`, `(None, ${l.outputShape[1]})`, thousands(l.params)]);
  const head = ['Layer (activation)', 'Output shape', 'Params'];
  const w = [0, 1, 2].map((c) => Math.max(head[c].length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]): string => `${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2].padStart(w[2])}`;
  const rule = '─'.repeat(w[0] + w[1] + w[2] + 4);
  const text = [
    `Input: (None, ${spec.inputs})`, rule, line(head), rule, ...rows.map(line), rule,
    `Total params: ${thousands(total)}`, `Trainable params: ${thousands(total)}`,
  ].join('\n');
  return { inputs: spec.inputs, layers, totalParams: total, trainableParams: total, text };
}

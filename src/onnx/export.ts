// A model as a standard ONNX graph (opset 13) that any ONNX runtime runs:
//
//   input [batch, inputs] ─ Sub(mean) ─ Div(std) ─ Gemm(W1, b1) ─ Relu ─ … ─ Gemm(Wn, bn) ─ Softmax ─ output [batch, outputs]
//
// The normalization nodes are there only when the model has one. Batch normalization is the
// BatchNormalization op in inference mode (the running statistics); layer normalization, which
// opset 13 lacks (LayerNormalization is opset 17), is written out as ReduceMean, Sub, Mul,
// ReduceMean, Add, Sqrt, Div, Mul, Add; dropout, off in inference, is left out. Weights are stored as deltaprop
// keeps them, (in, out), so Gemm runs with transB = 0. The class names and what fine-tuning needs
// (loss, optimizer) travel as metadata_props, which runtimes ignore and `fromOnnx` reads back.
import type { Model } from '../model.js';
import { isDense } from '../spec.js';
import { EXPORT_IR_VERSION, EXPORT_OPSET, ONNX_NAMES, onnx } from './schema.js';

const FLOAT = onnx.TensorProto.DataType.FLOAT;

function floatTensor(name: string, dims: number[], values: ArrayLike<number>): onnx.TensorProto.$Properties {
  // raw_data is little-endian float32, whatever the host's byte order
  const raw = new Uint8Array(4 * values.length);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i], true);
  return { name, dims, dataType: FLOAT, rawData: raw };
}

function valueInfo(name: string, dims: (number | string)[]): onnx.ValueInfoProto.$Properties {
  return {
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

const ACTIVATION_OPS: Record<string, string> = { relu: 'Relu', leakyRelu: 'LeakyRelu', sigmoid: 'Sigmoid', tanh: 'Tanh', softmax: 'Softmax' };

/** The model (architecture, current weights, normalization, class names) as the bytes of an ONNX file. */
export function toOnnx(model: Model, options: { producerVersion?: string } = {}): Uint8Array {
  const spec = model.spec;
  const weights = model.getWeights();
  const nodes: onnx.NodeProto.$Properties[] = [];
  const initializer: onnx.TensorProto.$Properties[] = [];
  let current: string = ONNX_NAMES.input;

  if (spec.normalization) {
    initializer.push(floatTensor('normalization.mean', [spec.inputs], spec.normalization.mean));
    initializer.push(floatTensor('normalization.std', [spec.inputs], spec.normalization.std));
    nodes.push({ name: 'normalize_sub', opType: 'Sub', input: [current, 'normalization.mean'], output: ['normalization.centered'] });
    nodes.push({ name: 'normalize_div', opType: 'Div', input: ['normalization.centered', 'normalization.std'], output: ['normalization.out'] });
    current = 'normalization.out';
  }

  let width = spec.inputs, dense = 0, statAt = 0;
  const stats = model.getRunningStats(), params = model.getParams();
  // γ and β of the normalization layers follow the dense weights and biases in the params arena
  let normAt = weights.reduce((n, w) => n + w.w.length + w.b.length, 0);
  const activation = (l: number, name: string, alpha: number | undefined, last: boolean): void => {
    const op = ACTIVATION_OPS[name];
    if (!op) return;
    const out = last ? ONNX_NAMES.output : `layer${l}.out`;
    const attribute: onnx.AttributeProto.$Properties[] = [];
    if (name === 'leakyRelu') attribute.push({ name: 'alpha', type: onnx.AttributeProto.AttributeType.FLOAT, f: alpha ?? 0.01 });
    if (name === 'softmax') attribute.push({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 });
    nodes.push({ name: `layer${l}_${name}`, opType: op, input: [current], output: [out], attribute });
    current = out;
  };
  const node = (name: string, opType: string, input: string[], attribute: onnx.AttributeProto.$Properties[] = []): string => {
    nodes.push({ name, opType, input, output: [`${name}.out`], attribute });
    return `${name}.out`;
  };
  spec.layers.forEach((layer, l) => {
    const last = l === spec.layers.length - 1;
    if (isDense(layer)) {
      const op = ACTIVATION_OPS[layer.activation];
      const out = last && !op ? ONNX_NAMES.output : `layer${l}.linear`;
      initializer.push(floatTensor(`layer${l}.weight`, [width, layer.units], weights[dense].w));
      initializer.push(floatTensor(`layer${l}.bias`, [layer.units], weights[dense].b));
      nodes.push({ name: `layer${l}_gemm`, opType: 'Gemm', input: [current, `layer${l}.weight`, `layer${l}.bias`], output: [out] });
      current = out;
      activation(l, layer.activation, layer.alpha, last);
      width = layer.units;
      dense++;
      return;
    }
    if (layer.type === 'dropout') return; // the identity in inference
    const gamma = params.subarray(normAt, normAt + width), beta = params.subarray(normAt + width, normAt + 2 * width);
    normAt += 2 * width;
    initializer.push(floatTensor(`layer${l}.scale`, [width], gamma), floatTensor(`layer${l}.shift`, [width], beta));
    const eps = { name: 'epsilon', type: onnx.AttributeProto.AttributeType.FLOAT, f: layer.epsilon ?? 1e-3 };
    if (layer.type === 'batchNormalization') {
      initializer.push(floatTensor(`layer${l}.running_mean`, [width], stats.subarray(statAt, statAt + width)),
        floatTensor(`layer${l}.running_var`, [width], stats.subarray(statAt + width, statAt + 2 * width)));
      statAt += 2 * width;
      current = node(`layer${l}_batchnorm`, 'BatchNormalization',
        [current, `layer${l}.scale`, `layer${l}.shift`, `layer${l}.running_mean`, `layer${l}.running_var`], [eps]);
    } else {
      const axes = { name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [-1] };
      initializer.push(floatTensor(`layer${l}.epsilon`, [], [layer.epsilon ?? 1e-3]));
      const mean = node(`layer${l}_ln_mean`, 'ReduceMean', [current], [axes]);
      const centered = node(`layer${l}_ln_center`, 'Sub', [current, mean]);
      const squared = node(`layer${l}_ln_square`, 'Mul', [centered, centered]);
      const variance = node(`layer${l}_ln_variance`, 'ReduceMean', [squared], [axes]);
      const std = node(`layer${l}_ln_std`, 'Sqrt', [node(`layer${l}_ln_add_epsilon`, 'Add', [variance, `layer${l}.epsilon`])]);
      const normalized = node(`layer${l}_ln_normalize`, 'Div', [centered, std]);
      current = node(`layer${l}_ln_shift`, 'Add', [node(`layer${l}_ln_scale`, 'Mul', [normalized, `layer${l}.scale`]), `layer${l}.shift`]);
    }
    activation(l, layer.activation ?? 'linear', layer.alpha, false);
  });

  const metadataProps: onnx.StringStringEntryProto.$Properties[] = [
    { key: ONNX_NAMES.trainingKey, value: JSON.stringify({ loss: spec.loss, ...(spec.huberDelta !== undefined ? { huberDelta: spec.huberDelta } : {}), optimizer: spec.optimizer, seed: spec.seed }) },
  ];
  if (spec.classes) metadataProps.unshift({ key: ONNX_NAMES.classesKey, value: JSON.stringify(spec.classes) });

  const message: onnx.ModelProto.$Properties = {
    irVersion: EXPORT_IR_VERSION,
    opsetImport: [{ domain: '', version: EXPORT_OPSET }],
    producerName: 'deltaprop',
    producerVersion: options.producerVersion ?? '',
    docString: 'A multilayer perceptron exported by deltaprop. Input "input": float32 [batch, features], '
      + 'raw features (the normalization is in the graph). Output "output": float32 [batch, outputs].',
    graph: {
      name: 'deltaprop_mlp',
      node: nodes,
      initializer,
      input: [valueInfo(ONNX_NAMES.input, ['batch', spec.inputs])],
      output: [valueInfo(ONNX_NAMES.output, ['batch', width])],
    },
    metadataProps,
  };
  return onnx.ModelProto.encode(message).finish();
}

// A model as a standard ONNX graph (opset 13) that any ONNX runtime runs:
//
//   input [batch, inputs] ─ Sub(mean) ─ Div(std) ─ Gemm(W1, b1) ─ Relu ─ … ─ Gemm(Wn, bn) ─ Softmax ─ output [batch, outputs]
//
// The normalization nodes are there only when the model has one. Weights are stored as deltaprop
// keeps them, (in, out), so Gemm runs with transB = 0. The class names and what fine-tuning needs
// (loss, optimizer) travel as metadata_props, which runtimes ignore and `fromOnnx` reads back.
import type { Model } from '../model.js';
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

  let width = spec.inputs;
  spec.layers.forEach((layer, l) => {
    const last = l === spec.layers.length - 1;
    const op = ACTIVATION_OPS[layer.activation];
    const dense = last && !op ? ONNX_NAMES.output : `layer${l}.linear`;
    initializer.push(floatTensor(`layer${l}.weight`, [width, layer.units], weights[l].w));
    initializer.push(floatTensor(`layer${l}.bias`, [layer.units], weights[l].b));
    nodes.push({ name: `layer${l}_gemm`, opType: 'Gemm', input: [current, `layer${l}.weight`, `layer${l}.bias`], output: [dense] });
    current = dense;
    if (op) {
      const out = last ? ONNX_NAMES.output : `layer${l}.out`;
      const attribute: onnx.AttributeProto.$Properties[] = [];
      if (layer.activation === 'leakyRelu') attribute.push({ name: 'alpha', type: onnx.AttributeProto.AttributeType.FLOAT, f: layer.alpha ?? 0.01 });
      if (layer.activation === 'softmax') attribute.push({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 });
      nodes.push({ name: `layer${l}_${layer.activation}`, opType: op, input: [current], output: [out], attribute });
      current = out;
    }
    width = layer.units;
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

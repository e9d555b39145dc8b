// Compiled (fused) programs give the same bits as the TypeScript interpreter running the same ops
// kernel by kernel on the same backend (Model.fusedSteps = false), for every optimizer, with
// clipping and weight decay, across layer counts and batch sizes (including a last partial batch):
// the training step through fit, and the forward pass through predict and evaluate.
import { describe, expect, it } from 'vitest';
import type { Backend, CompiledProgram, StepHyper } from '../src/backends/backend.js';
import { interpret } from '../src/backends/interpreter.js';
import type { Program } from '../src/backends/program.js';
import { Model } from '../src/model/model.js';
import { Random } from '../src/random.js';
import type { ModelSpec, OptimizerSpec } from '../src/spec.js';
import { BACKENDS } from './backends.js';

/** The backend with its own compiled programs, or the js backend with the interpreter as its "compiler". */
function compiling(b: Backend): Backend {
  if (b.compileProgram) return b;
  return new Proxy(b, {
    get(target, key) {
      if (key === 'compileProgram') {
        return (program: Program): CompiledProgram => {
          const loss = new Float64Array(1);
          return { loss, run: (h: StepHyper | null) => interpret(target, program, h, loss) };
        };
      }
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

const OPTIMIZERS: OptimizerSpec[] = [
  { type: 'sgd', learningRate: 0.1, weightDecay: 0.01 },
  { type: 'momentum', learningRate: 0.05, momentum: 0.9, nesterov: true, clipNorm: 0.5 },
  { type: 'adam', learningRate: 1e-2, weightDecay: 1e-3 },
  { type: 'adamw', learningRate: 1e-2, weightDecay: 0.05, clipNorm: 1 },
];

const SPECS: Omit<ModelSpec, 'optimizer'>[] = [
  { inputs: 2, layers: [{ units: 8, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }], loss: 'binaryCrossEntropy' },
  { inputs: 12, layers: [{ units: 16, activation: 'relu' }, { units: 9, activation: 'leakyRelu', alpha: 0.1 }, { units: 5, activation: 'softmax' }], loss: 'categoricalCrossEntropy' },
  { inputs: 3, layers: [{ units: 2, activation: 'linear' }], loss: 'mse' },
];

describe.each(BACKENDS.map((b) => [b.name, b] as const))('fused steps on %s', (_name, backend) => {
  for (const spec of SPECS) {
    it.each(OPTIMIZERS.map((o) => [o.type, o] as const))(`${spec.layers.length}-layer ${spec.loss}, %s: same bits as kernel by kernel`, async (_t, optimizer) => {
      const r = new Random(5), rows = 37, outs = spec.layers[spec.layers.length - 1].units;
      const x = { data: Float32Array.from({ length: rows * spec.inputs }, () => 4 * r.uniform() - 2), shape: [rows, spec.inputs] as [number, number] };
      const y = spec.loss === 'categoricalCrossEntropy' ? Array.from({ length: rows }, () => r.int(outs))
        : { data: Float32Array.from({ length: rows * outs }, () => (spec.loss === 'mse' ? 4 * r.uniform() - 2 : r.int(2))), shape: [rows, outs] as [number, number] };
      const run = async (fused: boolean) => {
        const model = new Model({ ...spec, optimizer, seed: 3 }, compiling(backend));
        model.fusedSteps = fused;
        const losses: number[] = [];
        await model.fit(x, y, { epochs: 4, batchSize: 8, onBatchEnd: (b) => { losses.push(b.loss); } });
        // the forward program, at two batch sizes (the last batch partial)
        const predicted = model.predict(x, 16).data, evaluated = model.evaluate(x, y, 5).loss;
        return { params: model.params.data.slice(), losses, predicted, evaluated };
      };
      const fused = await run(true), plain = await run(false);
      expect(fused.losses).toEqual(plain.losses);
      expect(Buffer.from(fused.params.buffer).equals(Buffer.from(plain.params.buffer))).toBe(true);
      expect(Buffer.from(fused.predicted.buffer).equals(Buffer.from(plain.predicted.buffer))).toBe(true);
      expect(fused.evaluated).toBe(plain.evaluated);
    });
  }
});

// The checks a compiled native program makes on every run (native/boundary/interpreter.cc
// check_run): its buffers compared one by one only after some buffer was released since they last
// passed, and the hyper-parameters every run. Here the cases that shortcut could get wrong: a
// buffer freed after runs that passed, an unrelated buffer freed, and bad hyper-parameters after
// good runs, each refused (or run) as on a first run, with nothing written when refused.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { loadNativeAddon, loadNativeBackend } from '../src/backends/native.js';
import { ACT, LOSS, OPT, type StepDesc, type StepHyper } from '../src/backends/backend.js';
import { OPS, opSlots } from '../src/backends/abi.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

describe('native compiled programs: the per-run checks after runs that passed', () => {
  const be = loadNativeBackend({ threads: 1 });
  const H: StepHyper = { lr: 0.1, clipNorm: 1, weightDecay: 0.01, mu: 0.9, nesterov: true, beta1: 0.9, beta2: 0.999, eps: 1e-8, bc1: 0.1, bc2: 0.001 };
  const hyperSlots = [H.lr, H.clipNorm, H.weightDecay, H.mu, 1, H.beta1, H.beta2, H.eps, H.bc1, H.bc2, 0];

  /** A valid 3-5-2 (relu, softmax) Adam step at m = 4. */
  function desc(): StepDesc {
    const m = 4, n = 3 * 5 + 5 * 2 + 5 + 2;
    const a = (len: number) => { const b = be.alloc(len); b.data.fill(0.25); return b; };
    return {
      m, dims: [3, 5, 2], acts: [ACT.relu, ACT.softmax], alphas: [0, 0], loss: LOSS.categoricalCrossEntropy,
      x: a(m * 3), y: a(m * 2), outs: [a(m * 5), a(m * 2)], deltas: [a(m * 5), a(m * 2)],
      params: a(n), grads: a(n), backup: a(n), n, wOffsets: [0, 15], bOffsets: [25, 30], optimizer: OPT.adam,
      state1: a(n), state2: a(n), decayCount: 25,
    };
  }
  /** The step's op records, as compileStep hands them to the addon. */
  function records(d: StepDesc): Float64Array {
    let raw: Float64Array | null = null;
    const spy = Object.create(be, {
      kernels: { value: { compileProgram: (r: Float64Array) => { raw = r.slice(); return be.kernels.compileProgram(r); } } },
    }) as typeof be;
    spy.compileStep(d);
    return raw!;
  }

  it('a buffer garbage-collected after runs that passed: the next run throws and writes nothing', async () => {
    const d = desc();
    const recs = records(d);
    // layer 0's input: a buffer only the records name (by id), so that it can be collected
    const addon = loadNativeAddon();
    (() => {
      const [x, id] = addon.allocBuf(12);
      x.fill(0.5);
      expect(recs[0]).toBe(OPS.denseForward.code);
      recs.set([id, 0, 12], opSlots('denseForward').x);
    })();
    const step = be.kernels.compileProgram(recs);
    be.kernels.args.set(hyperSlots);
    for (let i = 0; i < 3; i++) step.run();
    await collect();
    be.kernels.args.set(hyperSlots);
    const before = Float32Array.from(d.params.data);
    expect(() => step.run()).toThrow(/compiled program: one of its buffers was freed/);
    expect(() => step.run()).toThrow(/compiled program: one of its buffers was freed/);
    expect(d.params.data).toEqual(before);
  });

  it('a buffer the program does not hold, collected between runs: the program still runs', async () => {
    const d = desc();
    const step = be.compileStep(d);
    step.run(H);
    (() => { be.alloc(64); })();
    await collect();
    const before = Float32Array.from(d.params.data);
    step.run(H);
    expect(Number.isFinite(step.loss[0])).toBe(true);
    expect(d.params.data).not.toEqual(before);
  });

  it('bad hyper-parameters after good runs: refused with the same words, nothing written, and good runs go on', () => {
    const d = desc();
    const step = be.compileStep(d);
    step.run(H);
    const cases: [Partial<StepHyper>, RegExp][] = [
      [{ lr: NaN }, /compiled step: lr must be a finite float32, got NaN/],
      [{ mu: 1e39 }, /compiled step: mu must be a finite float32, got 1e\+39/],
      [{ eps: Infinity }, /compiled step: eps must be a finite float32, got Infinity/],
      [{ bc2: 0 }, /compiled step: bc2 must be a nonzero finite float32, got 0/],
      [{ bc1: 1e-46 }, /compiled step: bc1 must be a nonzero finite float32, got 1e-46/],
    ];
    for (const [patch, message] of cases) {
      const before = Float32Array.from(d.params.data);
      expect(() => step.run({ ...H, ...patch }), JSON.stringify(patch)).toThrow(message);
      expect(d.params.data).toEqual(before);
      step.run(H);
      expect(d.params.data).not.toEqual(before);
    }
    // the argument block written by hand: nesterov must be 0 or 1, the step count finite
    const raw = be.kernels.compileProgram(records(d));
    for (const [at, v, message] of [[4, 0.5, /nesterov must be a boolean \(0 or 1 in the argument block\), got 0\.5/],
      [10, NaN, /step must be a finite float32, got NaN/]] as const) {
      be.kernels.args.set(hyperSlots);
      raw.run();
      be.kernels.args[at] = v;
      const before = Float32Array.from(d.params.data);
      expect(() => raw.run()).toThrow(message);
      expect(d.params.data).toEqual(before);
    }
  });
});

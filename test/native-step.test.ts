// Compiled training steps on the native backend: one call (native/boundary/interpreter.cc) must
// give exactly the bits of the same kernels called one by one (forward, loss, backward, clip,
// backup, update), written out here and run by the TypeScript interpreter, for every optimizer;
// and a bad description must be refused when compiling.
import { describe, expect, it } from 'vitest';
import { ACT, LOSS, OPT, type ActCode, type Buf, type LossCode, type OptCode, type StepDesc, type StepHyper } from '../src/backends/backend.js';
import { loadNativeBackend, type NativeBackend } from '../src/backends/native.js';
import { JsBackend } from '../src/backends/js.js';
import { OP_SLOTS } from '../src/backends/abi.js';
import { interpretedStep } from '../src/backends/interpreter.js';
import { trainProgram } from '../src/backends/program.js';
import { ISAS, rng } from './native-helpers.js';


interface Net { desc: StepDesc; }

function makeNet(be: NativeBackend, m: number, dims: number[], acts: ActCode[], loss: LossCode, optimizer: OptCode, seed: number): Net {
  const r = rng(seed);
  const L = dims.length - 1;
  const wOffsets: number[] = [], bOffsets: number[] = [];
  let w = 0;
  for (let l = 0; l < L; l++) { wOffsets.push(w); w += dims[l] * dims[l + 1]; }
  let b = w;
  for (let l = 0; l < L; l++) { bOffsets.push(b); b += dims[l + 1]; }
  const n = b;
  const params = be.alloc(n + 5).view(2, n); // a view with an offset, as arenas may be
  for (let i = 0; i < n; i++) params.data[i] = (r() - 0.5) * 0.8;
  const x = be.alloc(m * dims[0]), y = be.alloc(m * dims[L]);
  for (let i = 0; i < x.length; i++) x.data[i] = r() * 2 - 1;
  for (let i = 0; i < m; i++) {
    if (loss === LOSS.categoricalCrossEntropy) y.data[i * dims[L] + Math.floor(r() * dims[L])] = 1;
    else for (let j = 0; j < dims[L]; j++) y.data[i * dims[L] + j] = loss === LOSS.binaryCrossEntropy ? Math.round(r()) : r();
  }
  return {
    desc: {
      m, dims, acts, alphas: acts.map(() => 0.05), loss, x, y,
      outs: dims.slice(1).map((d) => be.alloc(m * d)), deltas: dims.slice(1).map((d) => be.alloc(m * d)),
      params, grads: be.alloc(n), backup: be.alloc(n), n, wOffsets, bOffsets, optimizer,
      state1: optimizer === OPT.sgd ? null : be.alloc(n), state2: optimizer >= OPT.adam ? be.alloc(n) : null,
      decayCount: w,
    },
  };
}

function clone(be: NativeBackend, d: StepDesc): StepDesc {
  const c = (b: Buf) => { const o = be.alloc(b.length); o.data.set(b.data); return o; };
  return { ...d, x: c(d.x), y: c(d.y), outs: d.outs.map(c), deltas: d.deltas.map(c), params: c(d.params), grads: c(d.grads),
    backup: c(d.backup), state1: d.state1 && c(d.state1), state2: d.state2 && c(d.state2) };
}

// The kernel-by-kernel step (what program.ts trainProgram lists), written out by hand.
function stepByKernels(be: NativeBackend, d: StepDesc, h: StepHyper): number {
  const L = d.dims.length - 1, P = d.params, G = d.grads;
  const W = (l: number) => P.view(d.wOffsets[l], d.dims[l] * d.dims[l + 1]), B = (l: number) => P.view(d.bOffsets[l], d.dims[l + 1]);
  const dW = (l: number) => G.view(d.wOffsets[l], d.dims[l] * d.dims[l + 1]), dB = (l: number) => G.view(d.bOffsets[l], d.dims[l + 1]);
  let input = d.x;
  for (let l = 0; l < L; l++) {
    be.denseForward(d.outs[l], input, W(l), B(l), d.m, d.dims[l], d.dims[l + 1], d.acts[l] as ActCode, d.alphas[l]);
    input = d.outs[l];
  }
  const loss = be.lossDelta(d.deltas[L - 1], d.outs[L - 1], d.y, d.m, d.dims[L], d.loss as LossCode, d.acts[L - 1] as ActCode, d.alphas[L - 1],
    d.delta ?? 1, d.weights ?? null);
  if (!Number.isFinite(loss)) return loss;
  for (let l = L - 1; l >= 0; l--) {
    be.denseBackward(dW(l), dB(l), l ? d.deltas[l - 1] : null, d.deltas[l], l ? d.outs[l - 1] : d.x, W(l), d.m, d.dims[l], d.dims[l + 1],
      1 / d.m, (l ? d.acts[l - 1] : ACT.linear) as ActCode, l ? d.alphas[l - 1] : 0);
  }
  let gs = 1;
  if (h.clipNorm > 0) {
    const norm = Math.sqrt(be.sumSquares(G, d.n));
    if (norm > h.clipNorm) gs = h.clipNorm / norm;
  }
  d.backup.data.set(P.data.subarray(0, d.n));
  if (d.optimizer === OPT.sgd) be.sgdStep(P, G, d.n, h.lr, gs, h.weightDecay, d.decayCount);
  else if (d.optimizer === OPT.momentum) be.momentumStep(P, G, d.state1!, d.n, h.lr, gs, h.mu, h.nesterov, h.weightDecay, d.decayCount);
  else be.adamStep(P, G, d.state1!, d.state2!, d.n, h.lr, gs, h.beta1, h.beta2, h.eps, h.bc1, h.bc2, h.weightDecay, d.optimizer === OPT.adamw, d.decayCount);
  return loss;
}

const same = (a: Buf, b: Buf, what: string) =>
  expect(Buffer.from(a.data.buffer, a.data.byteOffset, a.length * 4).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.length * 4)), what).toBe(true);

describe('native compiled steps', () => {
  const be = loadNativeBackend({ threads: 2 });
  const nets: [string, number, number[], ActCode[], LossCode][] = [
    ['tiny-xor', 4, [2, 8, 1], [ACT.tanh, ACT.sigmoid], LOSS.binaryCrossEntropy],
    ['3-layer softmax', 33, [20, 40, 17, 5], [ACT.relu, ACT.leakyRelu, ACT.softmax], LOSS.categoricalCrossEntropy],
    ['mse regression', 9, [6, 12, 3], [ACT.sigmoid, ACT.linear], LOSS.mse],
    ['one layer', 7, [5, 4], [ACT.softmax], LOSS.categoricalCrossEntropy],
    ['wide (threads)', 64, [300, 200, 10], [ACT.relu, ACT.softmax], LOSS.categoricalCrossEntropy],
    // 82k parameters: the update itself is split over threads (native/boundary/interpreter.cc, n ≥ 65536)
    ['wider (threaded update)', 32, [400, 200, 10], [ACT.relu, ACT.softmax], LOSS.categoricalCrossEntropy],
  ];
  for (const [name, m, dims, acts, loss] of nets) {
    for (const [optName, opt] of Object.entries(OPT)) {
      it(`${name}, ${optName}: 5 compiled steps = 5 kernel-by-kernel steps = 5 interpreted steps, bit for bit`, () => {
        const a = makeNet(be, m, dims, acts, loss, opt, 11).desc, b = clone(be, a), c = clone(be, a);
        const step = be.compileStep(b), interpreted = interpretedStep(be, c);
        for (let t = 1; t <= 5; t++) {
          const h: StepHyper = { lr: 0.05, clipNorm: t % 2 ? 0.5 : 0, weightDecay: 0.01, mu: 0.9, nesterov: t > 2,
            beta1: 0.9, beta2: 0.999, eps: 1e-8, bc1: 1 - 0.9 ** t, bc2: 1 - 0.999 ** t };
          const la = stepByKernels(be, a, h);
          step.run(h);
          interpreted.run(h);
          expect(step.loss[0]).toBe(la);
          expect(interpreted.loss[0]).toBe(la);
        }
        for (const other of [b, c]) {
          for (const k of ['params', 'grads', 'backup', 'x', 'y'] as const) same(a[k], other[k], k);
          a.outs.forEach((o, l) => same(o, other.outs[l], `outs[${l}]`));
          a.deltas.forEach((o, l) => same(o, other.deltas[l], `deltas[${l}]`));
          if (a.state1) same(a.state1, other.state1!, 'state1');
          if (a.state2) same(a.state2, other.state2!, 'state2');
        }
      });
    }
  }

  describe('runAsync: the same step on a libuv thread', () => {
    const hyper = (t: number): StepHyper => ({ lr: 0.05, clipNorm: t % 2 ? 0.5 : 0, weightDecay: 0.01, mu: 0.9, nesterov: false,
      beta1: 0.9, beta2: 0.999, eps: 1e-8, bc1: 1 - 0.9 ** t, bc2: 1 - 0.999 ** t });

    for (const [optName, opt] of Object.entries(OPT)) {
      it(`${optName}: 5 async steps = 5 synchronous steps, bit for bit, with the loss resolved`, async () => {
        const a = makeNet(be, 64, [300, 200, 10], [ACT.relu, ACT.softmax], LOSS.categoricalCrossEntropy, opt, 21).desc, b = clone(be, a);
        const sync = be.compileStep(a), async = be.compileStep(b);
        for (let t = 1; t <= 5; t++) {
          sync.run(hyper(t));
          const loss = await async.runAsync!(hyper(t));
          expect(loss).toBe(sync.loss[0]);
          expect(async.loss[0]).toBe(sync.loss[0]);
        }
        for (const k of ['params', 'grads', 'backup'] as const) same(a[k], b[k], k);
        if (a.state1) same(a.state1, b.state1!, 'state1');
        if (a.state2) same(a.state2, b.state2!, 'state2');
      });
    }

    it('the argument block is free once runAsync returns: other kernels may run meanwhile', async () => {
      const a = makeNet(be, 64, [300, 200, 10], [ACT.relu, ACT.softmax], LOSS.categoricalCrossEntropy, OPT.adam, 22).desc, b = clone(be, a);
      const sync = be.compileStep(a), async = be.compileStep(b);
      sync.run(hyper(1));
      const pending = async.runAsync!(hyper(1));
      // a kernel call on the same backend overwrites the argument block while the step is away
      const g = be.alloc(1000);
      g.data.fill(2);
      expect(be.sumSquares(g, 1000)).toBe(4000);
      await pending;
      same(a.params, b.params, 'params');
    });

    it('refuses run() and a second runAsync() while one is in flight, and wait() ends the flight', async () => {
      // the flight is defined on the JavaScript side (from runAsync until wait or the promise), so
      // the refusals hold however fast the thread is: this step is tiny on purpose
      const d = makeNet(be, 4, [3, 5, 2], [ACT.relu, ACT.softmax], LOSS.categoricalCrossEntropy, OPT.sgd, 23).desc;
      const step = be.compileStep(d);
      const before = Float32Array.from(d.params.data);
      const pending = step.runAsync!(hyper(1));
      const t0 = Date.now();
      while (Date.now() - t0 < 20); // the thread has long finished; the flight has not
      expect(() => step.run(hyper(2))).toThrow(/run\(\) while a runAsync\(\) of it is in flight/);
      // (the refused promises are checked at the end: no await may let the first promise settle before then)
      const refusedInFlight = step.runAsync!(hyper(2));
      step.wait!();
      // the arithmetic is done: the buffers may be read now, before the promise settles
      const after = Float32Array.from(d.params.data);
      expect(Array.from(after)).not.toEqual(Array.from(before));
      // the promise, with its work, is still the step's: a new runAsync must await it
      const refusedUnsettled = step.runAsync!(hyper(2));
      await expect(refusedInFlight).rejects.toThrow(/runAsync\(\) while a runAsync\(\) of it is in flight/);
      await expect(refusedUnsettled).rejects.toThrow(/before the promise of the previous runAsync\(\) has settled/);
      await pending;
      expect(Array.from(d.params.data)).toEqual(Array.from(after));
      step.wait!(); // nothing in flight: returns at once
      await step.runAsync!(hyper(2));
    });

    it('a non-finite loss resolves as that loss, with the weights untouched', async () => {
      const d = makeNet(be, 4, [2, 3, 1], [ACT.tanh, ACT.linear], LOSS.mse, OPT.sgd, 3).desc;
      d.y.data[0] = Infinity;
      const before = Float32Array.from(d.params.data);
      const loss = await be.compileStep(d).runAsync!(hyper(1));
      expect(Number.isFinite(loss)).toBe(false);
      expect(Array.from(d.params.data)).toEqual(Array.from(before));
    });

    it('keeps the step alive while it is in flight, even when nothing else refers to it', async () => {
      const d = makeNet(be, 64, [300, 200, 10], [ACT.relu, ACT.softmax], LOSS.categoricalCrossEntropy, OPT.adam, 24).desc;
      const pending = be.compileStep(d).runAsync!(hyper(1));
      (globalThis as { gc?: () => void }).gc?.();
      expect(Number.isFinite(await pending)).toBe(true);
    });
  });

  describe('runStepsAsync: several steps of a program of step copies in one hand-off', () => {
    const hyper = (t: number): StepHyper => ({ lr: 0.05, clipNorm: t % 2 ? 0.5 : 0, weightDecay: 0.01, mu: 0.9, nesterov: false,
      beta1: 0.9, beta2: 0.999, eps: 1e-8, bc1: 1 - 0.9 ** t, bc2: 1 - 0.999 ** t });
    /** Adam's bias corrections of steps t0 + 1 … t0 + k, as runStepsAsync takes them. */
    const corrections = (t0: number, k: number): Float64Array => Float64Array.from({ length: 2 * k }, (_, i) => i % 2 ? 1 - 0.999 ** (t0 + 1 + (i >> 1)) : 1 - 0.9 ** (t0 + 1 + (i >> 1)));
    const copies = (d: StepDesc, k: number) => {
      const one = trainProgram(d);
      return { step: be.compileProgram(Array.from({ length: k }, () => one).flat()) as ReturnType<NativeBackend['compileStep']>, per: one.length };
    };

    it('k steps = k synchronous steps, bit for bit, each with its own bias corrections and loss; a first part of them on request', async () => {
      const a = makeNet(be, 64, [300, 200, 10], [ACT.relu, ACT.softmax], LOSS.categoricalCrossEntropy, OPT.adam, 25).desc, b = clone(be, a);
      const sync = be.compileStep(a), { step, per } = copies(b, 5);
      const want: number[] = [];
      for (let t = 1; t <= 8; t++) {
        sync.run({ ...hyper(t), clipNorm: 0.5 });
        want.push(sync.loss[0]);
      }
      const losses = new Float64Array(5);
      expect(await step.runStepsAsync!({ ...hyper(1), clipNorm: 0.5 }, corrections(0, 5), 5, per, losses)).toBe(5);
      const first = Array.from(losses);
      // 3 of the 5 copies: the last part of a fit's epoch
      expect(await step.runStepsAsync!({ ...hyper(6), clipNorm: 0.5 }, corrections(5, 3), 3, per, losses)).toBe(3);
      expect([...first, ...Array.from(losses.subarray(0, 3))]).toEqual(want);
      for (const k of ['params', 'grads', 'backup', 'state1', 'state2'] as const) same(a[k]!, b[k]!, k);
    });

    it('ends after the first step whose loss is not finite: the steps after it never run', async () => {
      const d = makeNet(be, 4, [2, 3, 1], [ACT.tanh, ACT.linear], LOSS.mse, OPT.sgd, 3).desc;
      d.y.data[0] = Infinity;
      const before = Float32Array.from(d.params.data), { step, per } = copies(d, 4), losses = new Float64Array(4).fill(7);
      expect(await step.runStepsAsync!(hyper(1), corrections(0, 4), 4, per, losses)).toBe(1);
      expect(Number.isFinite(losses[0])).toBe(false);
      expect(Array.from(losses.subarray(1))).toEqual([7, 7, 7]);
      expect(Array.from(d.params.data)).toEqual(Array.from(before));
    });

    it('stop() ends the run after the step in progress; the next run starts afresh', async () => {
      // steps of milliseconds (wide-mlp's), next to the microseconds between the call and stop()
      const d = makeNet(be, 256, [784, 512, 512, 10], [ACT.relu, ACT.relu, ACT.softmax], LOSS.categoricalCrossEntropy, OPT.sgd, 26).desc;
      const { step, per } = copies(d, 6), losses = new Float64Array(6);
      const pending = step.runStepsAsync!(hyper(1), corrections(0, 6), 6, per, losses);
      step.stop!(); // before the thread reaches the end of its first step: it is the last
      expect(await pending).toBe(1);
      expect(await step.runStepsAsync!(hyper(1), corrections(0, 6), 6, per, losses)).toBe(6);
    });

    it('refuses steps that are not whole copies, more steps than copies, and too few hyper-parameter blocks', async () => {
      const d = makeNet(be, 4, [3, 5, 2], [ACT.relu, ACT.softmax], LOSS.categoricalCrossEntropy, OPT.sgd, 27).desc;
      const { step, per } = copies(d, 2), losses = new Float64Array(4);
      await expect(step.runStepsAsync!(hyper(1), corrections(0, 1), 1, per + 1, losses)).rejects.toThrow(
        new RegExp(`runStepsAsync: opsPerStep must be a whole divisor of the program's ${2 * per} ops, got ${per + 1}`));
      await expect(step.runStepsAsync!(hyper(1), corrections(0, 3), 3, per, losses)).rejects.toThrow(/runStepsAsync: steps must be an integer in \[1, 2\], got 3/);
      const raw = (step as unknown as { compiled: { runStepsAsync(b: Float64Array, s: number, p: number): Promise<number> } }).compiled;
      expect(() => raw.runStepsAsync(new Float64Array(12), 2, per)).toThrow(/runStepsAsync: blocks must hold 2 steps of 12 doubles, got 12/);
      // a step may not start inside a run of elementwise ops (two copies joined across steps)
      const update = be.compileProgram([{ op: 'copy', dst: d.backup, src: d.params, n: d.n }, { op: 'sgdUpdate', p: d.params, g: d.grads, n: d.n, decayCount: 0 }]);
      expect(() => (update as unknown as { compiled: typeof raw }).compiled.runStepsAsync(new Float64Array(24), 2, 1))
        .toThrow(/op 1 would start a step inside a run of elementwise ops/);
    });
  });

  it('a non-finite loss stops the step after lossDelta, as the kernel sequence does', () => {
    const d = makeNet(be, 4, [2, 3, 1], [ACT.tanh, ACT.linear], LOSS.mse, OPT.sgd, 3).desc;
    d.y.data[0] = Infinity;
    const before = Float32Array.from(d.params.data);
    const step = be.compileStep(d);
    step.run({ lr: 0.1, clipNorm: 0, weightDecay: 0, mu: 0, nesterov: false, beta1: 0, beta2: 0, eps: 0, bc1: 1, bc2: 1 });
    expect(Number.isFinite(step.loss[0])).toBe(false);
    expect(Array.from(d.params.data)).toEqual(Array.from(before));
  });

  it('agrees with the js reference over 20 steps (tolerance, not bits)', () => {
    const d = makeNet(be, 16, [10, 12, 3], [ACT.tanh, ACT.softmax], LOSS.categoricalCrossEntropy, OPT.adam, 5).desc;
    const js = new JsBackend();
    const P = Float32Array.from(d.params.data);
    const step = be.compileStep(d);
    const jsState = { m: js.alloc(d.n), v: js.alloc(d.n), g: js.alloc(d.n), p: js.alloc(d.n) };
    jsState.p.data.set(P);
    for (let t = 1; t <= 20; t++) {
      const h = { lr: 0.01, clipNorm: 0, weightDecay: 0, mu: 0, nesterov: false, beta1: 0.9, beta2: 0.999, eps: 1e-8, bc1: 1 - 0.9 ** t, bc2: 1 - 0.999 ** t };
      step.run(h);
      // js: the same sequence on the reference backend
      const W = (l: number) => jsState.p.view(d.wOffsets[l], d.dims[l] * d.dims[l + 1]), B = (l: number) => jsState.p.view(d.bOffsets[l], d.dims[l + 1]);
      const o0 = js.alloc(16 * 12), o1 = js.alloc(16 * 3), d0 = js.alloc(16 * 12), d1 = js.alloc(16 * 3);
      const x = js.alloc(d.x.length), y = js.alloc(d.y.length);
      x.data.set(d.x.data); y.data.set(d.y.data);
      js.denseForward(o0, x, W(0), B(0), 16, 10, 12, ACT.tanh, 0.05);
      js.denseForward(o1, o0, W(1), B(1), 16, 12, 3, ACT.softmax, 0.05);
      js.lossDelta(d1, o1, y, 16, 3, LOSS.categoricalCrossEntropy, ACT.softmax, 0.05, 1, null);
      js.denseBackward(jsState.g.view(d.wOffsets[1], 36), jsState.g.view(d.bOffsets[1], 3), d0, d1, o0, W(1), 16, 12, 3, 1 / 16, ACT.tanh, 0.05);
      js.denseBackward(jsState.g.view(d.wOffsets[0], 120), jsState.g.view(d.bOffsets[0], 12), null, d0, x, W(0), 16, 10, 12, 1 / 16, ACT.linear, 0);
      js.adamStep(jsState.p, jsState.g, jsState.m, jsState.v, d.n, h.lr, 1, h.beta1, h.beta2, h.eps, h.bc1, h.bc2, 0, false, d.decayCount);
    }
    for (let i = 0; i < d.n; i++) expect(Math.abs(d.params.data[i] - jsState.p.data[i])).toBeLessThan(1e-4);
  });

  it('refuses bad descriptions when compiling', () => {
    const good = () => makeNet(be, 4, [3, 5, 2], [ACT.relu, ACT.softmax], LOSS.categoricalCrossEntropy, OPT.adam, 1).desc;
    expect(() => be.compileStep(good())).not.toThrow();
    const js = new JsBackend();
    expect(() => be.compileStep({ ...good(), x: js.alloc(12) })).toThrow(/x must be a buffer of this backend, got a buffer of another backend/);
    expect(() => be.compileStep({ ...good(), acts: [ACT.relu] })).toThrow(/acts needs 2 entries \(one per layer\), got 1/);
    expect(() => be.compileStep({ ...good(), outs: [be.alloc(19), be.alloc(8)] })).toThrow(/outs\[0\] has 19 floats, fewer than m\*dims\[1\] = 20/);
    expect(() => be.compileStep({ ...good(), acts: [ACT.softmax, ACT.softmax] })).toThrow(/softmax is only allowed on the output layer/);
    expect(() => be.compileStep({ ...good(), dims: [3, 6, 2] })).toThrow(/is outside the \d+ params|fewer than/);
    expect(() => be.compileStep({ ...good(), state2: null })).toThrow(/state2 must be a buffer of this backend/);
    expect(() => be.compileStep({ ...good(), m: 0 })).toThrow(/m must be an integer/);
    expect(() => be.compileStep({ ...good(), decayCount: 1e9 })).toThrow(/decayCount/);
    expect(() => be.compileStep({ ...good(), y: be.alloc(7) })).toThrow(/y has 7 floats, fewer than m\*dims\[2\] = 8/);
    const detached = be.kernels.compileProgram;
    expect(() => detached(new Float64Array(OP_SLOTS))).toThrow(/method of its kernel object/);
    expect(() => be.kernels.compileProgram([1, 2] as unknown as Float64Array)).toThrow(/Float64Array/);
    const s = be.compileStep(good());
    expect(() => s.run({ lr: NaN, clipNorm: 0, weightDecay: 0, mu: 0, nesterov: false, beta1: 0.9, beta2: 0.99, eps: 1e-8, bc1: 0.1, bc2: 0.01 }))
      .toThrow(/compiled step: lr must be a finite float32, got NaN/);
    expect(() => s.run({ lr: 0.1, clipNorm: 0, weightDecay: 0, mu: 0, nesterov: false, beta1: 0.9, beta2: 0.99, eps: 1e-8, bc1: 0, bc2: 0.01 }))
      .toThrow(/compiled step: bc1 must be a nonzero finite float32, got 0/);
  });
});

// The update of a compiled step runs chunk by chunk (8,192 floats) through the backup copy and the
// optimizer, each thread over its own ranges (native/boundary/interpreter.cc run_elementwise).
// Here n = 77,007: several chunks and a short last one, with the weight-decay boundary (decayCount
// = 76,750) inside a chunk and off any 1,024 boundary: every thread count must give the bits of
// the kernel-by-kernel step, whose update is one call over all n.
describe('native compiled steps: the chunked, threaded update', () => {
  const dims = [300, 250, 7], acts = [ACT.relu, ACT.softmax] as ActCode[];
  for (const isa of ISAS) {
    for (const [optName, opt] of Object.entries(OPT)) {
      it(`${isa}, ${optName}: 1, 2 and 3 threads = the kernel-by-kernel step, bit for bit`, () => {
        const byKernels = loadNativeBackend({ isa, threads: 1 });
        const ref = makeNet(byKernels, 16, dims, acts, LOSS.categoricalCrossEntropy, opt, 5).desc;
        expect(ref.n).toBe(77007);
        expect(ref.decayCount % 1024).not.toBe(0);
        const nets = [1, 2, 3].map((threads) => {
          const be = loadNativeBackend({ isa, threads });
          expect(be.threads).toBe(threads);
          const desc = makeNet(be, 16, dims, acts, LOSS.categoricalCrossEntropy, opt, 5).desc;
          return { desc, step: be.compileStep(desc) };
        });
        for (let t = 1; t <= 3; t++) {
          const h: StepHyper = { lr: 0.05, clipNorm: t === 2 ? 0.5 : 0, weightDecay: 0.01, mu: 0.9, nesterov: t > 1,
            beta1: 0.9, beta2: 0.999, eps: 1e-8, bc1: 1 - 0.9 ** t, bc2: 1 - 0.999 ** t };
          const loss = stepByKernels(byKernels, ref, h);
          for (const { step } of nets) {
            step.run(h);
            expect(step.loss[0]).toBe(loss);
          }
        }
        for (const { desc } of nets) {
          for (const k of ['params', 'grads', 'backup'] as const) same(ref[k], desc[k], `${desc.n} ${k}`);
          if (ref.state1) same(ref.state1, desc.state1!, 'state1');
          if (ref.state2) same(ref.state2, desc.state2!, 'state2');
        }
      });
    }
  }
});

describe('deep networks on native', () => {
  it('a valid 5,000-layer spec trains on native (no fixed layer limit) and agrees with js', async () => {
    // Before: compileStep refused more than 4096 layers ("layers must be an integer in range").
    const { Model } = await import('../src/model/model.js');
    const spec = {
      inputs: 3,
      layers: [...Array.from({ length: 4999 }, () => ({ units: 2, activation: 'tanh' as const })), { units: 1, activation: 'sigmoid' as const }],
      loss: 'binaryCrossEntropy' as const, optimizer: { type: 'sgd' as const, learningRate: 0.1 }, seed: 4,
    };
    expect(spec.layers.length).toBe(5000);
    const x = { data: Float32Array.from({ length: 8 * 3 }, (_, i) => ((i * 7) % 5) / 5 - 0.4), shape: [8, 3] as [number, number] };
    const y = Float32Array.from({ length: 8 }, (_, i) => i % 2);
    const native = new Model(spec, loadNativeBackend({ threads: 1 }));
    const js = new Model(spec, new JsBackend());
    const hn = await native.fit(x, y, { epochs: 2, batchSize: 4, shuffle: false });
    const hj = await js.fit(x, y, { epochs: 2, batchSize: 4, shuffle: false });
    expect(hn.epochs.length).toBe(2);
    expect(Number.isFinite(hn.epochs[1].loss)).toBe(true);
    expect(Math.abs(hn.epochs[1].loss - hj.epochs[1].loss)).toBeLessThan(1e-4);
    const wn = native.getWeights(), wj = js.getWeights();
    let worst = 0;
    wn.forEach((l, i) => l.w.forEach((v, k) => { worst = Math.max(worst, Math.abs(v - wj[i].w[k])); }));
    expect(worst).toBeLessThan(1e-4);
  }, 60_000);
});

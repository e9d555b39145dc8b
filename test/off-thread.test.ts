// Training off the event loop's thread: on native, each batch of a large enough network runs on
// the addon's threads while the event loop stays free for the rest of the process (an HTTP server
// here); callbacks, stopTraining, early stopping and the divergence check keep their meaning, and
// the weights come out bit for bit as on-thread training gives them.
import { createServer, get, Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsBackend } from '../src/backends/js.js';
import { loadNativeBackend } from '../src/backends/native.js';
import { fitNormalization } from '../src/data.js';
import { Model } from '../src/model/model.js';
import { Network } from '../src/model/network.js';
import { OFF_THREAD_FROM, type FitOptions } from '../src/model/fit.js';
import { Random } from '../src/random.js';
import type { ModelSpec } from '../src/spec.js';

const backend = loadNativeBackend();
// wide-mlp's shape (bench/workloads.ts): a step of ~1 GFLOP, milliseconds on two cores
const wide: ModelSpec = {
  inputs: 784, layers: [{ units: 512, activation: 'relu' }, { units: 512, activation: 'relu' }, { units: 10, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 1e-3 }, seed: 3,
};
const ROWS = 256 * 24;
const rng = new Random(11);
const X = { data: Float32Array.from({ length: ROWS * 784 }, () => rng.uniform()), shape: [ROWS, 784] as [number, number] };
const Y = Int32Array.from({ length: ROWS }, () => rng.int(10));
const FIT: FitOptions = { epochs: 1, batchSize: 256, offThread: true };
const bytes = (m: Model): Buffer => Buffer.from(m.params.data.slice().buffer);

describe('fit off the event loop on native', () => {
  it('runs the batches off the thread by default from 2^26 multiply-adds a step, and as asked; says so in the history', async () => {
    const m = new Model(wide, backend);
    expect((await m.fit(X, Y, FIT)).offThread).toBe(true);
    expect((await m.fit(X, Y, { ...FIT, offThread: false })).offThread).toBe(false);
    // 784·512·2 + (512·512 + 512·10)·3 = 1,604,608 multiply-adds a row
    const rows = (b: number): { data: Float32Array; shape: [number, number] } => ({ data: X.data.subarray(0, b * 784), shape: [b, 784] });
    expect(new Network(wide, backend).stepMultiplyAdds(1)).toBe(1_604_608);
    expect(OFF_THREAD_FROM).toBe(2 ** 26);
    expect((await m.fit(X, Y, { epochs: 1, batchSize: 256 })).offThread).toBe(true); // 4.1e8
    expect((await m.fit(rows(42), Y.subarray(0, 42), { epochs: 1, batchSize: 42 })).offThread).toBe(true); // 6.74e7
    expect((await m.fit(rows(41), Y.subarray(0, 41), { epochs: 1, batchSize: 41 })).offThread).toBe(false); // 6.58e7
    expect((await m.fit(rows(41), Y.subarray(0, 41), { epochs: 1, batchSize: 41, offThread: true })).offThread).toBe(true);
    // mnist-mlp's step (784-128-10, batch 64: 1.3e7) stays on the thread
    const small = new Model({ ...wide, layers: [{ units: 128, activation: 'relu' }, { units: 10, activation: 'softmax' }] }, backend);
    expect((await small.fit(rows(256), Y.subarray(0, 256), { epochs: 1, batchSize: 64 })).offThread).toBe(false);
  });

  it('stays on the thread, as asked, where the backend cannot leave it', async () => {
    const m = new Model(wide, new JsBackend());
    const h = await m.fit({ data: X.data.subarray(0, 8 * 784), shape: [8, 784] }, Y.subarray(0, 8), { ...FIT, batchSize: 8 });
    expect(h.offThread).toBe(false);
    await expect(m.fit(X, Y, { ...FIT, offThread: 'yes' as unknown as boolean })).rejects.toThrow(/offThread: must be true or false, got "yes"/);
  });

  it('gives the same weights, bit for bit, as on-thread training', async () => {
    const a = new Model(wide, backend), b = new Model(wide, backend);
    const ha = await a.fit(X, Y, { ...FIT, epochs: 2 });
    const hb = await b.fit(X, Y, { ...FIT, epochs: 2, offThread: false });
    expect(ha.offThread).toBe(true);
    expect(hb.offThread).toBe(false);
    expect(bytes(a).equals(bytes(b))).toBe(true);
    // the same step losses; on the thread, fit sums them per time slice first (a different rounding)
    ha.epochs.forEach((e, i) => expect(e.loss).toBeCloseTo(hb.epochs[i].loss, 12));
  });

  it('gathers each batch on the addon\'s threads from one copy of the rows, made once per fit of two epochs or more and let go after it', async () => {
    const m = new Model(wide, backend);
    const made: unknown[] = [];
    const resident = Network.prototype.residentRows;
    Network.prototype.residentRows = function (this: Network, ...a: Parameters<Network['residentRows']>) {
      const r = resident.apply(this, a);
      made.push(r);
      return r;
    };
    try {
      await m.fit(X, Y, { ...FIT, epochs: 2 });
      await m.fit(X, Y, { ...FIT, epochs: 2, offThread: false });
    } finally {
      Network.prototype.residentRows = resident;
    }
    await m.fit(X, Y, { ...FIT, epochs: 1 }); // one epoch: staged on the loop, which copies no more
    expect(made.length).toBe(1); // only off the thread, from two epochs on
    const rows = made[0] as { x: { data: Float32Array }; rows: number };
    expect(rows.rows).toBe(ROWS);
    expect(Buffer.from(rows.x.data.buffer, rows.x.data.byteOffset, rows.x.data.byteLength).equals(Buffer.from(X.data.buffer))).toBe(true);
    // no plan keeps the copy's program after the fit
    const plan = (m as unknown as { net: Network }).net.plan(256);
    expect(plan.gatherFrom).toBeUndefined();
    expect(plan.compiledTrainGather).toBeUndefined();
  });

  it('stages on the loop where a gatherRows op cannot address the rows: more than 2^24 (the row numbers are floats)', () => {
    const net = new Network({ ...wide, inputs: 1 }, backend);
    const huge = { data: new Float32Array(0), shape: [2 ** 24 + 1, 1] as [number, number] };
    expect(net.residentRows(huge, { data: new Float32Array(0), shape: [2 ** 24 + 1, 10] }, null)).toBeNull();
    const rows = net.residentRows({ data: new Float32Array(3).fill(2), shape: [3, 1] }, { data: new Float32Array(30).fill(1), shape: [3, 10] },
      Float32Array.of(1, 2, 3));
    expect(rows && [rows.rows, Array.from(rows.x.data), rows.y.data.length, Array.from(rows.w!.data)]).toEqual([3, [2, 2, 2], 30, [1, 2, 3]]);
  });

  it('the same bits with normalization, sample weights, no shuffle and a short last batch, gathered or staged on the loop', async () => {
    const spec: ModelSpec = { ...wide, normalization: fitNormalization(X) };
    const rows = ROWS - 100, x = { data: X.data.subarray(0, rows * 784), shape: [rows, 784] as [number, number] };
    const y = Y.subarray(0, rows), sampleWeight = Float32Array.from({ length: rows }, (_, i) => (i % 7) / 3);
    const fits: [string, FitOptions][] = [['shuffled', { ...FIT, epochs: 2, sampleWeight }], ['in order', { ...FIT, epochs: 2, shuffle: false }], ['one epoch', FIT]];
    for (const [what, options] of fits) {
      const onThread = new Model(spec, backend), gathered = new Model(spec, backend), staged = new Model(spec, backend);
      const h0 = await onThread.fit(x, y, { ...options, offThread: false });
      const h1 = await gathered.fit(x, y, options);
      const resident = Network.prototype.residentRows;
      Network.prototype.residentRows = () => null; // no room for a copy: staged on the event loop
      let h2;
      try {
        h2 = await staged.fit(x, y, options);
      } finally {
        Network.prototype.residentRows = resident;
      }
      expect(h1.offThread && h2.offThread && !h0.offThread).toBe(true);
      expect(bytes(gathered).equals(bytes(onThread)), `${what}: gathered`).toBe(true);
      expect(bytes(staged).equals(bytes(onThread)), `${what}: staged`).toBe(true);
      h1.epochs.forEach((e, i) => {
        expect(e.loss, what).toBeCloseTo(h0.epochs[i].loss, 12);
        expect(e.accuracy, what).toBeCloseTo(h0.epochs[i].accuracy!, 12);
      });
    }
  });

  it('a predict during the fit, of the fit\'s batch size (its staging buffers), leaves the training unchanged', async () => {
    const a = new Model(wide, backend), b = new Model(wide, backend);
    const probe = { data: X.data.subarray(0, 256 * 784), shape: [256, 784] as [number, number] };
    let predictions = 0, done = false;
    const fitting = a.fit(X, Y, { ...FIT, epochs: 2 }).finally(() => { done = true; });
    while (!done) {
      // the same batch size as the fit's: its staging buffers
      a.predict(probe);
      predictions++;
      await new Promise((r) => setTimeout(r, 1));
    }
    await fitting;
    await b.fit(X, Y, { ...FIT, epochs: 2, offThread: false });
    expect(predictions).toBeGreaterThan(3);
    expect(bytes(a).equals(bytes(b))).toBe(true);
  });

  // Staging on the loop, measured alone on this 2-core machine: 12.5-13.7% busy. The steps now
  // gather their batches on the addon's threads (the loop writes 256 row numbers a step), which
  // cut the loop thread's own CPU time per step by about a third (0.79 -> 0.54 ms over 8-epoch
  // fits, medians, measured under load); but this 2-epoch fit also pays its one-time work on the
  // loop (the scan of the inputs for NaN, the copy of the rows into backend memory), about as much
  // as the staging saved, and it measured 12-33% busy under load (load average 6-30, builds
  // running), as with staging on the loop (13-32%). The goal of 10% is not shown: the bound stays.
  // On the thread the fit keeps the loop ~100% busy.
  it('keeps the event loop at most 30% busy during the fit (on the thread: ~100%)', { retry: 2 }, async () => {
    const m = new Model(wide, backend);
    await m.fit(X, Y, { ...FIT, epochs: 1 }); // plans and compiled programs made
    const start = performance.eventLoopUtilization();
    await m.fit(X, Y, { ...FIT, epochs: 2 });
    const elu = performance.eventLoopUtilization(start);
    expect(elu.utilization, `event loop busy ${(100 * elu.utilization).toFixed(1)}% of ${elu.active.toFixed(0)} + ${elu.idle.toFixed(0)} ms`)
      .toBeLessThanOrEqual(0.3);
  });

  // The target, for a fit without a batch callback: its batches go up to 64 per hand-off
  // (one an epoch here), so the loop wakes once an epoch, not once a batch. Measured in
  // bench/off-thread.ts (8-epoch fits, machine shared, load average 19-28): 2.7-3.9% busy, against
  // 7.1-11.4% with a batch callback (one batch a hand-off). The fit's one-time work on the loop
  // (the scan of the inputs, the copy of the rows, compiling the chunk) is ~60 ms of it: a longer
  // fit than the test above, so that the per-batch cost is what is measured.
  it('keeps the event loop at most 10% busy during an 8-epoch fit without a batch callback', { retry: 2 }, async () => {
    const m = new Model(wide, backend);
    await m.fit(X, Y, { ...FIT, epochs: 1 });
    const start = performance.eventLoopUtilization();
    await m.fit(X, Y, { ...FIT, epochs: 8 });
    const elu = performance.eventLoopUtilization(start);
    expect(elu.utilization, `event loop busy ${(100 * elu.utilization).toFixed(1)}% of ${elu.active.toFixed(0)} + ${elu.idle.toFixed(0)} ms`)
      .toBeLessThanOrEqual(0.1);
  });

  describe('an HTTP server in the same process', () => {
    let server: Server;
    let port = 0;
    beforeAll(async () => {
      server = createServer((_req, res) => res.end('ok'));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    it('answers with p99 latency under 5 ms while a fit runs', { retry: 2 }, async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const request = (): Promise<void> => new Promise((resolve, reject) => {
        get({ host: '127.0.0.1', port, path: '/', agent }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject);
      });
      await request(); // the connection, before timing
      const m = new Model(wide, backend);
      let done = false;
      const fitting = m.fit(X, Y, { ...FIT, epochs: 3 }).finally(() => { done = true; });
      const latencies: number[] = [];
      // a bounded request loop: one request at a time until the fit ends
      while (!done && latencies.length < 5000) {
        const t = performance.now();
        await request();
        latencies.push(performance.now() - t);
      }
      await fitting;
      agent.destroy();
      latencies.sort((p, q) => p - q);
      const p99 = latencies[Math.floor(0.99 * (latencies.length - 1))];
      expect(latencies.length, 'requests answered during the fit').toBeGreaterThanOrEqual(100);
      expect(p99, `p99 of ${latencies.length} requests (p50 ${latencies[latencies.length >> 1].toFixed(2)} ms)`).toBeLessThan(5);
    });
  });

  it('reads between batches see whole weights: predict during the fit equals a model holding a snapshot', async () => {
    const m = new Model(wide, backend);
    const probe = { data: X.data.subarray(0, 4 * 784), shape: [4, 784] as [number, number] };
    const fitting = m.fit(X, Y, FIT);
    let checks = 0;
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 2));
      // predict waits for a batch in flight; the weights it reads are those getWeights returns
      const got = m.predict(probe).data;
      const snap = new Model(wide, backend);
      snap.setWeights(m.getWeights());
      expect(Buffer.from(got.buffer).equals(Buffer.from(snap.predict(probe).data.buffer))).toBe(true);
      checks++;
    }
    await fitting;
    expect(checks).toBe(5);
  });

  it('stopTraining from a timer ends the fit after the current batch', async () => {
    const m = new Model(wide, backend);
    let batches = 0;
    const fitting = m.fit(X, Y, { ...FIT, epochs: 50, onBatchEnd: () => { batches++; } });
    await new Promise((r) => setTimeout(r, 30));
    m.stopTraining = true;
    const h = await fitting;
    expect(h.epochs.length).toBeLessThan(50);
    expect(batches).toBeGreaterThan(0);
  });

  describe('several batches per hand-off (without a batch callback)', () => {
    const small: ModelSpec = { ...wide, layers: [{ units: 64, activation: 'relu' }, { units: 10, activation: 'softmax' }] };
    /** The steps of each trainStepsAsync hand-off (asked, ran) and the single steps, during fn. */
    async function handOffs<T>(fn: () => Promise<T>): Promise<{ result: T; chunks: [number, number][]; singles: number }> {
      const many = Network.prototype.trainStepsAsync, one = Network.prototype.trainStepAsync;
      const chunks: [number, number][] = [];
      let singles = 0;
      Network.prototype.trainStepsAsync = async function (this: Network, ...a: Parameters<Network['trainStepsAsync']>) {
        const ran = await many.apply(this, a);
        chunks.push([a[2], ran]);
        return ran;
      };
      Network.prototype.trainStepAsync = function (this: Network, ...a: Parameters<Network['trainStepAsync']>) {
        singles++;
        return one.apply(this, a);
      };
      try {
        return { result: await fn(), chunks, singles };
      } finally {
        Network.prototype.trainStepsAsync = many;
        Network.prototype.trainStepAsync = one;
      }
    }

    it('an epoch of 24 batches is one hand-off; with onBatchEnd, one batch a hand-off', async () => {
      const got = await handOffs(() => new Model(wide, backend).fit(X, Y, { ...FIT, epochs: 2 }));
      expect([got.chunks, got.singles]).toEqual([[[24, 24], [24, 24]], 0]);
      let calls = 0;
      const each = await handOffs(() => new Model(wide, backend).fit(X, Y, { ...FIT, epochs: 2, onBatchEnd: () => { calls++; } }));
      expect([each.chunks, each.singles, calls]).toEqual([[], 48, 48]);
    });

    it('chunks of the most steps, a last partial chunk and a short last batch, weighted and normalized: the bits of on-thread training', async () => {
      const spec: ModelSpec = { ...small, normalization: fitNormalization(X) };
      const rows = ROWS - 100, x = { data: X.data.subarray(0, rows * 784), shape: [rows, 784] as [number, number] };
      const y = Y.subarray(0, rows), sampleWeight = Float32Array.from({ length: rows }, (_, i) => (i % 5) / 2);
      for (const options of [{ ...FIT, epochs: 2, batchSize: 32, sampleWeight }, { ...FIT, epochs: 2, batchSize: 32, shuffle: false }]) {
        const on = new Model(spec, backend), off = new Model(spec, backend);
        const h0 = await on.fit(x, y, { ...options, offThread: false });
        const got = await handOffs(() => off.fit(x, y, options));
        // 6044 rows: 188 batches of 32 in chunks of 64, 64 and 60, then one of 28 rows
        expect([got.chunks, got.singles]).toEqual([[[64, 64], [64, 64], [60, 60], [64, 64], [64, 64], [60, 60]], 2]);
        expect(bytes(off).equals(bytes(on))).toBe(true);
        got.result.epochs.forEach((e, i) => {
          expect(e.loss).toBeCloseTo(h0.epochs[i].loss, 12);
          expect(e.accuracy).toBeCloseTo(h0.epochs[i].accuracy!, 12);
        });
      }
    });

    it('stopTraining from a timer ends the chunk after the batch in progress: the bits of an on-thread fit stopped after that batch', async () => {
      const m = new Model(wide, backend);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const many = Network.prototype.trainStepsAsync;
      const got = await handOffs(async () => {
        const inner = Network.prototype.trainStepsAsync;
        Network.prototype.trainStepsAsync = function (this: Network, ...a: Parameters<Network['trainStepsAsync']>) {
          const p = inner.apply(this, a);
          timer ??= setTimeout(() => { m.stopTraining = true; }, 25); // a few steps into the first chunk
          return p;
        };
        return m.fit(X, Y, { ...FIT, epochs: 3 });
      });
      expect(Network.prototype.trainStepsAsync).toBe(many);
      const ran = got.chunks.reduce((t, [, r]) => t + r, 0);
      expect(got.chunks.length).toBe(1);
      expect(ran, 'the chunk was cut').toBeLessThan(24);
      expect(got.result.epochs.length).toBe(1);
      const ref = new Model(wide, backend);
      let batches = 0;
      await ref.fit(X, Y, { ...FIT, epochs: 3, offThread: false, onBatchEnd: () => { if (++batches === ran) ref.stopTraining = true; } });
      expect(bytes(m).equals(bytes(ref))).toBe(true);
    });

    it('a divergent batch inside a chunk ends it there: the error and the weights of on-thread training', async () => {
      // sgd at rate 1 on a tanh regression diverges at batch 22 of 64 (one chunk an epoch)
      const spec: ModelSpec = { inputs: 784, layers: [{ units: 64, activation: 'tanh' }, { units: 10, activation: 'linear' }], loss: 'mse',
        optimizer: { type: 'sgd', learningRate: 1 }, seed: 3 };
      const rows = 2048, x = { data: X.data.subarray(0, rows * 784), shape: [rows, 784] as [number, number] };
      const r = new Random(5), y = { data: Float32Array.from({ length: rows * 10 }, () => 10 * r.uniform()), shape: [rows, 10] as [number, number] };
      const on = new Model(spec, backend), off = new Model(spec, backend);
      const e0 = await on.fit(x, y, { epochs: 3, batchSize: 32 }).catch((e: Error) => e);
      const got = await handOffs(() => off.fit(x, y, { epochs: 3, batchSize: 32, offThread: true }).catch((e: Error) => e));
      expect(String(e0)).toMatch(/training diverged: the loss became NaN at epoch 1, batch 22;/);
      expect(String(got.result)).toBe(String(e0));
      // the steps after the divergent one never ran: the backup the weights came back from is the one before batch 21's update
      expect(got.chunks).toEqual([[64, 22]]);
      expect(bytes(off).equals(bytes(on))).toBe(true);
    });
  });

  it('stops with the weights from before the last update when training diverges, as on the thread', async () => {
    // the first update (lr 1e30) leaves finite but huge weights; the second batch's loss is NaN
    const m = new Model({ ...wide, optimizer: { type: 'sgd', learningRate: 1e30 } }, backend);
    const before = bytes(m);
    let batches = 0;
    const err = await m.fit(X, Y, { ...FIT, epochs: 3, onBatchEnd: () => { batches++; } }).catch((e: Error) => e);
    expect(String(err)).toMatch(/training diverged: the loss became NaN at epoch 1, batch 2; the weights from before the last update were restored/);
    expect(batches).toBe(1);
    expect(bytes(m).equals(before)).toBe(true);
  });
});

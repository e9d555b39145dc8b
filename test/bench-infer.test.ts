// The inference workload of the benchmark, quickly: a --quick run on wasm with onnxruntime-node and
// onnxruntime-web (its own process) as peers, on 1 thread and, where the machine has more cores,
// on all of them (deltaprop's wasm threads build against onnxruntime-web at the same numThreads):
// every system checked against the js reference before it is timed, batch-1 p50 ≤ p99, batch-256
// rows/s from every round, the ratios and targets in the markdown, and the cold start in workerd (miniflare) of deltaprop/infer with its bundle's size,
// and onnxruntime-web's reason for not running there. Needs the built package (`npm run compile`),
// as the worker bundles dist/infer-workerd.js. The interleaving and the percentiles on their own.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { INFER_BATCH, measureInterleaved, percentile, type InferSystem } from '../bench/infer.js';
import { markdown, runBench, targets } from '../bench/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('bench --workload infer', () => {
  it('--quick on wasm against onnxruntime-node and onnxruntime-web: checked, timed, compared, cold-started', async () => {
    expect(existsSync(join(ROOT, 'dist/infer-workerd.js')), 'run `npm run compile` first').toBe(true);
    const logs: string[] = [];
    const res = await runBench({ workloads: ['infer'], backends: ['wasm'], peers: ['onnxruntime-node', 'onnxruntime-web'], quick: true, log: (m) => logs.push(m) });
    const rows = res.rows.filter((r) => r.workload === 'infer');
    const all = availableParallelism();
    for (const shape of ['mnist-mlp 784-128-10', 'wide-mlp 784-512-512-10']) {
      const mine = rows.filter((r) => r.shape === shape);
      const names = mine.map((r) => `${r.system}/${r.threads}`);
      for (const t of all > 1 ? [1, all] : [1]) {
        expect(names).toContain(`deltaprop-wasm/${t}`);
        expect(names).toContain(`deltaprop/infer-wasm/${t}`);
        expect(names).toContain(`onnxruntime-node/${t}`);
        expect(names).toContain(`onnxruntime-web/${t}`);
      }
      if (all > 1) {
        // the threads build, in rows of the same schema as the others
        for (const system of ['deltaprop-wasm', 'deltaprop/infer-wasm']) {
          const threaded = mine.find((r) => r.system === system && r.threads === all)!;
          expect(threaded.kernel).toMatch(/^wasm-/);
          expect(threaded.isa).toBe(threaded.kernel);
          expect(threaded.note).toMatch(new RegExp(`wasm threads build, ${all} threads`));
        }
      }
      for (const r of mine) {
        expect(r.error, `${r.system} ${shape}: ${r.error}`).toBeUndefined();
        expect(r.check?.ok).toBe(true);
        expect(r.check?.vs_js_max_output_diff as number).toBeLessThanOrEqual(1e-5);
        expect(r.latency_p50_us!).toBeGreaterThan(0);
        expect(r.latency_p99_us!).toBeGreaterThanOrEqual(r.latency_p50_us!);
        expect(r.throughput_rounds).toHaveLength(3);
        expect(r.rows_per_s!).toBeGreaterThan(0);
      }
      const cold = res.coldStarts!.find((c) => c.system === `deltaprop-wasm ${shape}`)!;
      expect(cold.error).toBeUndefined();
      expect(cold.first_ms).toHaveLength(2);
      expect(cold.maxDiff).toBeLessThanOrEqual(1e-5);
      expect(cold.bundle.script).toBeGreaterThan(10_000);
      expect(cold.bundle.script).toBeLessThan(80_000); // the inference entry (61 kB), not the full one
      expect(cold.bundle.wasm).toBeGreaterThan(0);
      const ort = res.coldStarts!.find((c) => c.system === `onnxruntime-web ${shape}`)!;
      // where it cannot run, the table says why; if a later release runs there, it is timed instead
      if (ort.error) expect(ort.error).toMatch(/workerd/);
      else expect(ort.first_ms.length).toBeGreaterThan(0);
    }
    const md = markdown(res);
    expect(md).toContain('### Inference');
    expect(md).toMatch(/\| mnist-mlp 784-128-10 \| deltaprop-wasm \(1 thread\) \| onnxruntime-web \(1 thread\) \| [\d.]+× \| [\d.]+× \| [\d.]+× \|/);
    if (all > 1) {
      for (const shape of ['mnist-mlp 784-128-10', 'wide-mlp 784-512-512-10']) {
        expect(md).toMatch(new RegExp(`\\| ${shape} \\| deltaprop-wasm \\(${all} threads\\) \\| onnxruntime-web \\(${all} threads\\) \\| [\\d.]+× \\| [\\d.]+× \\| [\\d.]+× \\|`));
      }
    }
    expect(md).toContain('### Cold start in workerd');
    const t = targets(res).filter((x) => x.what.startsWith('infer '));
    expect(t.find((x) => x.what.includes('wasm batch-1 p50 vs onnxruntime-web'))?.pass).not.toBeNull();
    if (all > 1) {
      for (const what of [`wasm batch-1 p50 vs onnxruntime-web (${all} threads)`, `wasm batch-256 throughput vs onnxruntime-web (${all} threads)`,
        `wasm threads build batch-256 throughput vs onnxruntime-web (${all} threads, issue 16)`, `wasm batch-256 throughput, ${all} threads vs 1`]) {
        const mineT = t.filter((x) => x.what.includes(what));
        expect(mineT, what).toHaveLength(2); // both shapes
        for (const x of mineT) expect(x.pass, `${x.what}: ${x.measured}`).not.toBeNull();
      }
    }
    expect(res.systems['onnxruntime-web']?.ok).toBe(true);
  }, 600_000);

  it('interleaves rounds in a rotating order and pools the latency samples', async () => {
    const order: string[] = [];
    const fake = (name: string, us: number): InferSystem => ({
      system: name, threads: 1,
      check: async () => new Float32Array(0),
      latency: async (calls) => {
        order.push(`${name}:lat`);
        return Array.from({ length: calls }, (_, i) => us + i);
      },
      time: async (units) => {
        order.push(`${name}:time`);
        return (units * us) / 1e6;
      },
      close: () => {},
    });
    const a = fake('a', 10), b = fake('b', 20), broken = fake('c', 5);
    broken.time = async () => {
      throw new Error('peer died');
    };
    const m = await measureInterleaved([a, b, broken], 3, 11, 0.001);
    expect(m.get(broken)).toBeInstanceOf(Error);
    const ma = m.get(a) as Exclude<ReturnType<typeof m.get>, Error | undefined>;
    expect(ma.latency_samples).toBe(33);
    expect(ma.p50_us).toBe(15);
    expect(ma.p99_us).toBe(20);
    expect(ma.rows_per_s).toBeCloseTo((INFER_BATCH / 10) * 1e6, 0);
    // the rounds: a then b, then b then a, then a then b (latency), each round's throughput reversed
    const rounds = order.filter((o) => !o.startsWith('c')).slice(4); // after the warm-ups
    expect(rounds.slice(0, 4)).toEqual(['a:lat', 'b:lat', 'b:time', 'a:time']);
    expect(rounds.slice(4, 8)).toEqual(['b:lat', 'a:lat', 'a:time', 'b:time']);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 99)).toBe(4);
  });
});

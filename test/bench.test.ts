// The benchmark harness, quickly: a --quick run of one workload on the wasm and js backends (no
// peers), its outputs (table, JSON, JSON lines, SVG), the Fashion-MNIST reader and its "where I
// looked" error, and the GEMM check that guards the sgemm timings; the FMA peak and the % of peak
// arithmetic, the targets against the best peer, the oneDNN peer program, a missing peer, the
// peers' environment (OPENBLAS_CORETYPE removed in the peer's process only), and the layering (the
// CLI bundle does not carry the suite). The full benchmark is not run here: it takes many minutes
// (`npm run bench`).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'tsup';
import { afterAll, describe, expect, it } from 'vitest';
import {
  jsonLine, kernelFailed, markdown, peakFields, peakFor, runBench, targets, trainFlopsPerSample, vsBestGemmPeer, writeResults,
  type BenchResults, type Peak, type ResultRow,
} from '../bench/index.js';
import { DatasetMissingError, findFashion, loadFashion, readIdx } from '../bench/fashion.js';
import { compileProgram } from '../bench/systems/compiled.js';
import { GemmBuffers, gemmRunner } from '../bench/systems/deltaprop.js';
import { childEnv, OPENBLAS_HANDICAPS, removedSettings, runPython, startPeerTimer } from '../bench/systems/python.js';
import { gemmFlops, gemmShapes, modelSpec, shapeLabel, TRAIN_WORKLOADS, type GemmShape } from '../bench/workloads.js';
import { benchBuild, cliBuild } from '../tsup.config.js';
import { JsBackend } from '../src/backends/js.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const hasCompiler = spawnSync(process.env.CXX || 'g++', ['--version']).status === 0;
const hasOnednn = hasCompiler && existsSync('/usr/include/oneapi/dnnl/dnnl.h');

const tmp = mkdtempSync(join(tmpdir(), 'deltaprop-bench-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('bench harness', () => {
  it('runs tiny-xor --quick on wasm and js: checked, timed, tabled, written', async () => {
    const logs: string[] = [];
    const res = await runBench({ workloads: ['tiny-xor'], backends: ['wasm', 'js'], peers: [], quick: true, reps: 2, log: (m) => logs.push(m) });
    const rows = res.rows.filter((r) => r.workload === 'tiny-xor');
    expect(rows.map((r) => r.system).sort()).toEqual(['deltaprop-js', 'deltaprop-wasm']);
    for (const r of rows) {
      expect(r.error).toBeUndefined();
      expect(r.samples_per_s).toBeGreaterThan(1000);
      expect(r.min!).toBeLessThanOrEqual(r.samples_per_s!);
      expect(r.max!).toBeGreaterThanOrEqual(r.samples_per_s!);
      expect(r.check?.ok).toBe(true);
      expect(r.check!.loss_after as number).toBeLessThan(r.check!.loss_before as number);
    }
    // wasm is compared with the js reference before it is timed
    const wasm = rows.find((r) => r.system === 'deltaprop-wasm')!;
    expect(wasm.check!.vs_js_max_output_diff as number).toBeLessThan(1e-4);

    const md = markdown(res);
    expect(md).toMatch(/\| tiny-xor \| deltaprop-wasm \| [\d.]+ [kM]? ?\|/);
    expect(md).toContain('| deltaprop-js | ok');

    const line = JSON.parse(jsonLine(wasm));
    expect(line).toMatchObject({ workload: 'tiny-xor', system: 'deltaprop-wasm' });
    expect(typeof line.samples_per_s).toBe('number');

    // every row as a share of the machine's FMA peak, measured in the same run
    if (hasCompiler) {
      expect(res.peak).not.toBeNull();
      expect(res.peak!.one).toBeGreaterThan(1);
      expect(res.peak!.all).toBeGreaterThanOrEqual(res.peak!.one);
      expect(res.systems['fma-peak']).toMatchObject({ ok: true, kernel: expect.stringMatching(/^(avx512f|avx2-fma)$/) });
      for (const r of rows) {
        // js runs on one thread, wasm on every core (its default): each row against the peak of its threads
        const peak = (r.threads ?? 1) > 1 ? res.peak!.all : res.peak!.one;
        expect(r.peak_gflops).toBe(peak);
        expect(r.pct_of_peak!).toBeCloseTo((100 * r.samples_per_s! * trainFlopsPerSample([2, 8, 1])) / 1e9 / peak, 9);
        expect(r.kernel).toBe(r.isa);
      }
      expect(md).toMatch(/fp32 FMA peak .*GFLOP\/s on 1 thread/);
      expect(md).toMatch(/\| tiny-xor \| deltaprop-wasm \| [^|]+\| [^|]+\| [\d.]+% \|/);
    }

    const files = writeResults(res, join(tmp, 'results'));
    expect(files.map((f) => f.split('/').pop()).sort()).toEqual(['results.json', 'results.md', ...(hasCompiler ? ['peak.svg'] : []), 'throughput.svg'].sort());
    const json = JSON.parse(readFileSync(join(tmp, 'results', 'results.json'), 'utf8'));
    expect(json.rows).toHaveLength(2);
    expect(json.meta.quick).toBe(true);
    if (hasCompiler) {
      // % of peak per workload and system, on a linear axis with the peak marked
      const peakSvg = readFileSync(join(tmp, 'results', 'peak.svg'), 'utf8');
      expect(peakSvg.startsWith('<svg')).toBe(true);
      expect(peakSvg).toContain('% of the fp32 FMA peak');
      expect(peakSvg).toContain('>FMA peak</text>');
      expect(peakSvg).toMatch(/>deltaprop-wasm<\/text>.*>[\d.]+%<\/text>/s);
      expect(json.peak).toEqual(res.peak);
      expect(json.rows[0]).toHaveProperty('pct_of_peak');
    }
    const svg = readFileSync(join(tmp, 'results', 'throughput.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('deltaprop-wasm');
  }, 60_000);

  it('says where it looked when Fashion-MNIST is absent', async () => {
    // (unless Debian's dataset-fashion-mnist is installed: then the default search finds it)
    const where = join(tmp, 'nowhere', 'repo');
    let found: string | null = null;
    try {
      found = findFashion(undefined, where);
    } catch (e) {
      expect(e).toBeInstanceOf(DatasetMissingError);
      expect((e as Error).message).toContain('/usr/share/datasets/fashion-mnist');
      expect((e as Error).message).toContain(join(tmp, 'nowhere', 'shared', 'datasets', 'fashion-mnist'));
    }
    if (found !== null) expect(found).toBe('/usr/share/datasets/fashion-mnist');
    const res = await runBench({ workloads: ['fashion'], backends: ['js'], peers: [], quick: true, fashion: join(tmp, 'missing') });
    expect(res.rows).toHaveLength(1);
    expect(res.rows[0].error).toMatch(/--fashion .*missing.*train-images-idx3-ubyte\.gz/);
  });

  it('reads gzip IDX files and scales pixels to [0, 1]', () => {
    const dir = join(tmp, 'idx');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const idx = (dims: number[], data: number[]): Buffer => {
      const head = Buffer.alloc(4 + 4 * dims.length);
      head.writeUInt8(0x08, 2);
      head.writeUInt8(dims.length, 3);
      dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
      return gzipSync(Buffer.concat([head, Buffer.from(data)]));
    };
    const img = (n: number) => Array.from({ length: n * 784 }, (_, i) => (i * 7) % 256);
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), idx([3, 28, 28], img(3)));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), idx([3], [9, 0, 4]));
    writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), idx([2, 28, 28], img(2)));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), idx([2], [1, 2]));
    expect(readIdx(join(dir, 'train-labels-idx1-ubyte.gz')).dims).toEqual([3]);
    expect(findFashion(dir, tmp)).toBe(dir);
    const d = loadFashion(dir);
    expect([d.trainRows, d.testRows]).toEqual([3, 2]);
    expect(Array.from(d.trainY)).toEqual([9, 0, 4]);
    expect(d.trainX[1]).toBeCloseTo(7 / 255, 6);
    expect(Math.max(...d.testX)).toBeLessThanOrEqual(1);
    // a truncated file is an error, not a short data set
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), idx([5], [1, 2]));
    expect(() => loadFashion(dir)).toThrow(/data bytes/);
  });

  it('checks every GEMM shape against float64 before timing it, and catches a wrong one', () => {
    const shapes: GemmShape[] = gemmShapes(true).filter((s) => s.m * s.n * s.k <= 128 ** 3 || s.origin !== 'square');
    expect(new Set(shapes.map((s) => `${s.transA}${s.transB}`))).toEqual(new Set(['falsefalse', 'truefalse', 'falsetrue']));
    const js = new JsBackend();
    const bufs = new GemmBuffers(js, shapes);
    for (const s of shapes) expect(gemmRunner(bufs, s).check(), shapeLabel(s)).toBeLessThan(1e-6);
    // off by 0.1 %: the 1e-4 threshold the bench applies rejects it
    const wrong = new JsBackend();
    const gemm = wrong.gemm.bind(wrong);
    wrong.gemm = (ta, tb, m, n, k, alpha, a, b, beta, c) => gemm(ta, tb, m, n, k, alpha * 1.001, a, b, beta, c);
    expect(gemmRunner(new GemmBuffers(wrong, shapes), shapes[0]).check()).toBeGreaterThan(1e-4);
  });
});

describe('% of the FMA peak', () => {
  it('counts a training step\'s GEMM flops: forward, dW, and dx for every layer but the first', () => {
    // 784-128-10: layer 1 forward + dW, layer 2 forward + dW + dx, 2·m·k·n each per row
    expect(trainFlopsPerSample([784, 128, 10])).toBe(2 * 784 * 128 * 2 + 2 * 128 * 10 * 3);
    expect(trainFlopsPerSample([784, 512, 512, 10])).toBe(4 * 784 * 512 + 6 * 512 * 512 + 6 * 512 * 10);
    expect(trainFlopsPerSample([2, 8, 1])).toBe(4 * 16 + 6 * 8);
    // the same count as the GEMMs the sgemm workload lists for a step of mnist-mlp (batch 64)
    const step = gemmShapes(true).filter((g) => g.origin.startsWith('mnist-mlp')).reduce((a, g) => a + gemmFlops(g), 0);
    expect(step / TRAIN_WORKLOADS['mnist-mlp'].batch).toBe(trainFlopsPerSample(TRAIN_WORKLOADS['mnist-mlp'].sizes));
  });

  it('divides by the peak at the row\'s thread count', () => {
    const peak: Peak = { isa: 'avx512f', one: 250, all: 480, threads: 2 };
    expect(peakFor(peak, undefined)).toBe(250);
    expect(peakFor(peak, 1)).toBe(250);
    expect(peakFor(peak, 2)).toBe(480);
    expect(peakFor(peak, 8)).toBe(480);
    expect(peakFor({ ...peak, all: 900, threads: 4 }, 2)).toBe(500);
    expect(peakFields({ gflops: 200, threads: 1 }, undefined, peak)).toEqual({ peak_gflops: 250, pct_of_peak: 80 });
    expect(peakFields({ gflops: 240, threads: 2 }, undefined, peak)).toEqual({ peak_gflops: 480, pct_of_peak: 50 });
    // 100k samples/s of 784-128-10 = 40.9 GFLOP/s
    const f = peakFields({ samples_per_s: 1e5, threads: 1 }, [784, 128, 10], peak);
    expect(f.pct_of_peak).toBeCloseTo((100 * 1e5 * 409088) / 1e9 / 250, 10);
    expect(peakFields({ error: 'check failed', threads: 1 }, [784, 128, 10], peak)).toEqual({ peak_gflops: 250 });
    expect(peakFields({ gflops: 200 }, undefined, null)).toEqual({});
  });
});

/** A run's results as the suite makes them, for the report's arithmetic. */
function results(rows: ResultRow[], extra: Partial<BenchResults> = {}): BenchResults {
  return {
    meta: { date: '2026-12-01T00:00:00Z', node: 'v20', platform: 'linux', cpu: 'test', cores: 2, quick: false, reps: 5, epochs: 10, threads: 2 },
    systems: {}, peak: { isa: 'avx512f', one: 250, all: 500, threads: 2 }, rows, ...extra,
  };
}
const gemmRow = (system: string, shape: string, threads: number, gflops: number, kernel?: string): ResultRow =>
  ({ workload: 'sgemm', system, shape, threads, gflops, ...(kernel ? { kernel } : {}), ...peakFields({ gflops, threads }, undefined, { isa: 'avx512f', one: 250, all: 500, threads: 2 }) });

describe('targets against the best peer', () => {
  it('native sgemm: the worst size against the better of OpenBLAS and oneDNN, paired rounds first', () => {
    const rows = [
      gemmRow('deltaprop-native', 'NN 256x256x256', 1, 200), gemmRow('openblas', 'NN 256x256x256', 1, 180, 'SkylakeX'), gemmRow('onednn', 'NN 256x256x256', 1, 210, 'jit'),
      gemmRow('deltaprop-native', 'NN 512x512x512', 1, 240), gemmRow('openblas', 'NN 512x512x512', 1, 200), gemmRow('onednn', 'NN 512x512x512', 1, 220),
      gemmRow('deltaprop-native', 'NN 128x128x128', 1, 50), gemmRow('onednn', 'NN 128x128x128', 1, 150), // n < 256: not a target
      gemmRow('deltaprop-native', 'NN 256x256x256', 2, 400), gemmRow('openblas', 'NN 256x256x256', 2, 300),
    ];
    const sweeps = targets(results(rows));
    const t1 = sweeps.find((t) => t.what.includes('best of OpenBLAS and oneDNN') && t.what.includes('1 thread'))!;
    expect(t1.measured).toBe(`${(200 / 210).toFixed(2)}× (n = 256 vs onednn, sweeps)`);
    expect(t1.pass).toBe(false);
    const t2 = sweeps.find((t) => t.what.includes('best of OpenBLAS and oneDNN') && t.what.includes('2 threads'))!;
    expect(t2.pass).toBe(true);
    expect(t2.measured).toMatch(/1\.33× \(n = 256 vs openblas, sweeps\)/);
    // paired rounds replace the sweeps' ratio for the peer they were run against
    const paired = results(rows, { pairedSgemm: [{ shape: 'NN 256x256x256', threads: 1, peer: 'onednn', ratio: 1.02, rounds: [1.02] }] });
    expect(vsBestGemmPeer(paired, 'NN 256x256x256', 1)).toEqual({ ratio: 1.02, peer: 'onednn', paired: true });
    expect(vsBestGemmPeer(paired, 'NN 512x512x512', 1)).toEqual({ ratio: 240 / 220, peer: 'onednn', paired: false });
    const t1p = targets(paired).find((t) => t.what.includes('best of OpenBLAS and oneDNN') && t.what.includes('1 thread'))!;
    expect(t1p.pass).toBe(true);
    expect(t1p.measured).toBe('1.02× (n = 256 vs onednn, paired rounds)');
    const md = markdown(results(rows));
    expect(md).toContain('| NN 256x256x256 | ');
    expect(md).toContain('200.0 (80%)'); // GFLOP/s and % of the 1-thread peak
    expect(md).toMatch(/\| native sgemm vs the best of OpenBLAS and oneDNN, n ≥ 256, 1 thread \(worst size\) \| ≥ 1\.0× \| 0\.95× .*\| NOT met \|/);
    expect(md).not.toContain('above 100% of the FMA peak');
    // a figure above the physical limit means the peak was taken on a busy machine: said so
    expect(markdown(results([...rows, gemmRow('onednn', 'NN 512x512x512', 2, 600)]))).toContain('1 row is above 100% of the FMA peak');
  });

  it('training: ≥ 2× PyTorch at its best, and native as % of peak; not measured says so', () => {
    const train = (system: string, workload: 'mnist-mlp' | 'wide-mlp', sps: number, threads: number): ResultRow =>
      ({ workload, system, samples_per_s: sps, threads, ...peakFields({ samples_per_s: sps, threads }, TRAIN_WORKLOADS[workload].sizes, { isa: 'avx512f', one: 250, all: 500, threads: 2 }) });
    const wide = trainFlopsPerSample(TRAIN_WORKLOADS['wide-mlp'].sizes);
    const rows = [
      train('deltaprop-native', 'wide-mlp', (0.82 * 500e9) / wide, 2), train('deltaprop-native', 'wide-mlp', (0.86 * 250e9) / wide, 1),
      train('pytorch', 'wide-mlp', (0.82 * 500e9) / wide / 2.5, 2),
      train('deltaprop-native', 'mnist-mlp', 300e3, 2), train('pytorch', 'mnist-mlp', 200e3, 2),
    ];
    const t = targets(results(rows));
    const get = (what: string) => t.find((x) => x.what === what)!;
    expect(get('native vs PyTorch at its best, wide-mlp')).toMatchObject({ measured: '2.50×', pass: true });
    expect(get('native vs PyTorch at its best, mnist-mlp')).toMatchObject({ measured: '1.50×', pass: false });
    expect(get('native wide-mlp, % of FMA peak, 1 thread')).toMatchObject({ measured: '86%', pass: true });
    expect(get('native wide-mlp, % of FMA peak, 2 threads')).toMatchObject({ measured: '82%', pass: true });
    const mnist = (100 * 300e3 * trainFlopsPerSample(TRAIN_WORKLOADS['mnist-mlp'].sizes)) / 500e9;
    expect(get('native mnist-mlp, % of FMA peak, 2 threads')).toMatchObject({ measured: `${mnist.toFixed(0)}%`, pass: mnist >= 60 });
    expect(get('native fashion end to end, % of FMA peak, 2 threads')).toMatchObject({ measured: 'not measured', pass: null });
    expect(markdown(results(rows))).toMatch(/\| native fashion end to end, % of FMA peak, 2 threads \| ≥ 60% \| not measured \| — \|/);
  });

  it('fashion-regularized: BN and dropout 0.2 after each hidden layer; its targets are ≤ 0.5× PyTorch\'s time and ≥ 0.895 within 20 epochs', () => {
    const w = TRAIN_WORKLOADS['fashion-regularized'];
    expect(modelSpec(w).layers.map((l) => l.type ?? `dense ${(l as { units: number }).units} ${(l as { activation: string }).activation}`)).toEqual([
      'dense 512 linear', 'batchNormalization', 'dropout', 'dense 512 linear', 'batchNormalization', 'dropout', 'dense 10 softmax']);
    expect(w.epochs).toBe(20);
    const fashionRow = (system: string, secs: number[], acc: number[]): ResultRow =>
      ({ workload: 'fashion-regularized', system, epoch_seconds: secs, test_accuracy: acc, total_seconds: secs.reduce((a, b) => a + b, 0), samples_per_s: 60000 / secs[0] });
    const rows = [fashionRow('deltaprop-native', [2, 2], [0.88, 0.9]), fashionRow('pytorch', [5, 5], [0.87, 0.89])];
    const t = targets(results(rows));
    expect(t.find((x) => x.what === 'native vs PyTorch, fashion-regularized time for the epochs')).toMatchObject({ measured: '0.40×', pass: true });
    expect(t.find((x) => x.what === 'native fashion-regularized test accuracy within 20 epochs')).toMatchObject({ measured: '0.9000', pass: true });
    expect(markdown(results(rows))).toContain('### Fashion-MNIST regularized (784-512-512-10, batch normalization and dropout 0.2 after each hidden layer, Adam 1e-3, batch 128, 2 epochs)');
  });

  it('JSON lines carry the kernel, the peak and the row\'s share of it; oneDNN rows are "onednn"', () => {
    const line = JSON.parse(jsonLine(gemmRow('onednn', 'NN 512x512x512', 2, 400, 'jit, max ISA avx512_core')));
    expect(line).toMatchObject({ workload: 'sgemm', system: 'onednn', kernel: 'jit, max ISA avx512_core', threads: 2, gflops: 400, peak_gflops: 500, pct_of_peak: 80 });
  });
});

describe('peers at their best', () => {
  it('removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE in the peer\'s process only', async () => {
    const base = { PATH: '/usr/bin', OPENBLAS_CORETYPE: 'Haswell', OPENBLAS_L2_SIZE: '1048576', OTHER: 'kept' };
    const env = childEnv(base, { set: { OPENBLAS_NUM_THREADS: '2' }, remove: OPENBLAS_HANDICAPS });
    expect(env).toEqual({ PATH: '/usr/bin', OTHER: 'kept', OPENBLAS_NUM_THREADS: '2' });
    expect(base.OPENBLAS_CORETYPE).toBe('Haswell'); // the caller's environment is untouched
    expect(removedSettings(base, OPENBLAS_HANDICAPS)).toEqual(['OPENBLAS_CORETYPE=Haswell', 'OPENBLAS_L2_SIZE=1048576']);
    expect(removedSettings({}, OPENBLAS_HANDICAPS)).toEqual([]);

    // a real child process: it does not see them, while this process keeps its own
    const saved = { c: process.env.OPENBLAS_CORETYPE, l: process.env.OPENBLAS_L2_SIZE };
    process.env.OPENBLAS_CORETYPE = 'Haswell';
    process.env.OPENBLAS_L2_SIZE = '1048576';
    try {
      const show = "console.log(JSON.stringify({ c: process.env.OPENBLAS_CORETYPE ?? null, l: process.env.OPENBLAS_L2_SIZE ?? null, t: process.env.OPENBLAS_NUM_THREADS }))";
      const [atBest] = await runPython(process.execPath, ['-e', show], { set: { OPENBLAS_NUM_THREADS: '1' }, remove: OPENBLAS_HANDICAPS }, () => {}, 30_000);
      expect(atBest).toEqual({ c: null, l: null, t: '1' });
      const [forced] = await runPython(process.execPath, ['-e', show], { set: { OPENBLAS_NUM_THREADS: '1' } }, () => {}, 30_000);
      expect(forced).toEqual({ c: 'Haswell', l: '1048576', t: '1' });
      expect(process.env.OPENBLAS_CORETYPE).toBe('Haswell');
    } finally {
      if (saved.c === undefined) delete process.env.OPENBLAS_CORETYPE;
      else process.env.OPENBLAS_CORETYPE = saved.c;
      if (saved.l === undefined) delete process.env.OPENBLAS_L2_SIZE;
      else process.env.OPENBLAS_L2_SIZE = saved.l;
    }
  });

  it('reruns a BLAS peer with the machine\'s settings only when its kernel computed wrong results', () => {
    expect(kernelFailed([{ info: true, kernel: 'SkylakeX', kernel_check: { ok: true } }, { workload: 'mnist-mlp', check: { ok: false } }])).toBe(false);
    expect(kernelFailed([{ info: true, kernel: 'SkylakeX', kernel_check: { ok: false, max_rel_err: 0.3 } }])).toBe(true);
    expect(kernelFailed([{ info: true, kernel: 'SkylakeX' }, { workload: 'sgemm', shape: 'NN 64x64x64', check: { ok: true } },
      { workload: 'sgemm', shape: 'NN 128x128x128', check: { ok: false } }])).toBe(true);
  });

  it('a peer that cannot be built is "not installed" with the command that installs it, and the run goes on', async () => {
    const saved = process.env.CXX;
    process.env.CXX = join(tmp, 'no-such-compiler');
    try {
      const res = await runBench({ workloads: ['sgemm'], backends: [], peers: ['onednn'], quick: true, reps: 1 });
      expect(res.systems.onednn.ok).toBe(false);
      expect(res.systems.onednn.reason).toMatch(/^not installed: no C\+\+ compiler .*sudo apt-get install -y --no-install-recommends libdnnl-dev g\+\+/);
      expect(res.systems['fma-peak'].ok).toBe(false);
      expect(res.peak).toBeNull();
      expect(markdown(res)).toContain('| onednn | not run |');
      expect(markdown(res)).toContain('FMA peak was not measured');
    } finally {
      if (saved === undefined) delete process.env.CXX;
      else process.env.CXX = saved;
    }
    if (hasCompiler) {
      // a missing header (libdnnl-dev not installed) reads the same
      const src = join(tmp, 'needs-header.cc');
      writeFileSync(src, '#include <no_such_dnnl_header.h>\nint main() { return 0; }\n');
      expect(() => compileProgram(src, ['-O0'], [], 'install with: sudo apt-get install -y libdnnl-dev g++'))
        .toThrow(/^not installed: no_such_dnnl_header\.h: No such file or directory; install with: sudo apt-get install -y libdnnl-dev g\+\+$/);
    }
  }, 60_000);

  it.runIf(hasOnednn)('oneDNN\'s dnnl_sgemm: checked against float64 on every transpose case, then timed on request', async () => {
    const bin = compileProgram(join(ROOT, 'bench', 'peers', 'onednn-sgemm.cc'), ['-O2', '-std=c++17', '-fopenmp'], ['-ldnnl'], 'install').path;
    const peer = await startPeerTimer(bin, ['NN:64:96:80', 'TN:80:32:64', 'NT:64:80:32'], { set: { OMP_NUM_THREADS: '1' } });
    try {
      expect(peer.before.map((l) => l.shape)).toEqual(['NN 64x96x80', 'TN 80x32x64', 'NT 64x80x32']);
      for (const l of peer.before) expect(l.check).toMatchObject({ ok: true, max_rel_err: expect.any(Number) });
      expect(peer.ready).toMatchObject({ ready: true, threads: 1, version: expect.stringMatching(/^\d+\.\d+\.\d+$/), kernel: expect.stringMatching(/^jit, max ISA /) });
      expect(await peer.time(2, 10)).toBeGreaterThan(0);
      await expect(peer.time(7, 1)).rejects.toThrow(/bad request 7 1/);
    } finally {
      peer.close();
    }
    const bad = spawnSync(bin, ['NX:1:2:3'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("bad shape 'NX:1:2:3'");
  }, 120_000);
});

describe('layering', () => {
  const OUT = join(ROOT, '.tmp', `bench-layering-${process.pid}`);
  afterAll(() => rmSync(OUT, { recursive: true, force: true }));

  it('the benchmark uses the public API only (src/index.ts, and src/infer/node.ts: deltaprop/infer)', () => {
    const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : /\.(ts|mjs)$/.test(e.name) ? [join(dir, e.name)] : []));
    for (const f of files(join(ROOT, 'bench'))) {
      const imports = [...readFileSync(f, 'utf8').matchAll(/from '((?:\.\.\/)+src\/[^']*)'/g)].map((m) => m[1]);
      for (const i of imports) expect(i, f).toMatch(/^(\.\.\/)+src\/(index|infer\/node)\.js$/);
    }
  });

  it('dist/cli.js does not carry the suite; `deltaprop bench` loads dist/bench.js beside it, and says so when it is absent', async () => {
    await build({ ...cliBuild, config: false, silent: true, outDir: OUT, entry: { cli: join(ROOT, 'src', 'cli.ts') } });
    const cli = readFileSync(join(OUT, 'cli.js'), 'utf8');
    for (const s of ['fma-peak', 'onednn-sgemm', 'pairedRatio', 'tinybench', 'Fashion-MNIST IDX', 'BENCH.md']) expect(cli, s).not.toContain(s);
    const absent = spawnSync(process.execPath, [join(OUT, 'cli.js'), 'bench', '--quick'], { encoding: 'utf8' });
    expect(absent.status).toBe(1);
    expect(absent.stderr.trim().split('\n')).toHaveLength(1);
    expect(absent.stderr).toMatch(/^deltaprop: error: the benchmark suite is not part of this build \(.*bench\.js is missing\)/);

    await build({ ...benchBuild, config: false, silent: true, outDir: OUT, entry: { bench: join(ROOT, 'bench', 'run.ts') } });
    const help = execFileSync(process.execPath, [join(OUT, 'cli.js'), 'bench', '--help'], { encoding: 'utf8' });
    for (const o of ['--workload', '--peers', 'onednn', '$ deltaprop bench --quick']) expect(help).toContain(o);
    const top = execFileSync(process.execPath, [join(OUT, 'cli.js'), '--help'], { encoding: 'utf8' });
    for (const text of [help, top]) expect(text).not.toContain('BENCH.md');
    const usage = spawnSync(process.execPath, [join(OUT, 'cli.js'), 'bench', '--peers', 'numpy'], { encoding: 'utf8' });
    expect(usage.status).toBe(1);
    expect(usage.stderr).toMatch(/^deltaprop: error: .*unknown peer 'numpy' .*\(see 'deltaprop bench --help'\)\n$/);
    // the bundle run as a program (npm run bench) and imported by the CLI: the same command
    const own = spawnSync(process.execPath, [join(OUT, 'bench.js'), '--help'], { encoding: 'utf8' });
    expect(own.status).toBe(0);
    expect(own.stdout).toContain('$ npm run bench -- --quick');
  }, 120_000);
});

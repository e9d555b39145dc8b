// The benchmark harness, quickly: a --quick run of one workload on the wasm and js backends (no
// peers), its outputs (table, JSON, JSON lines, SVG), the Fashion-MNIST reader and its "where I
// looked" error, and the GEMM check that guards the sgemm timings. The full benchmark is not run
// here: it takes many minutes (`npm run bench`).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { jsonLine, markdown, runBench, writeResults } from '../bench/index.js';
import { DatasetMissingError, findFashion, loadFashion, readIdx } from '../bench/fashion.js';
import { GemmBuffers, gemmRunner } from '../bench/systems/deltaprop.js';
import { gemmShapes, shapeLabel, type GemmShape } from '../bench/workloads.js';
import { JsBackend } from '../src/backends/js.js';

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

    const files = writeResults(res, join(tmp, 'results'));
    expect(files.map((f) => f.split('/').pop()).sort()).toEqual(['results.json', 'results.md', 'throughput.svg']);
    const json = JSON.parse(readFileSync(join(tmp, 'results', 'results.json'), 'utf8'));
    expect(json.rows).toHaveLength(2);
    expect(json.meta.quick).toBe(true);
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

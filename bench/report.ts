// Results as people and scripts read them: markdown tables with ratios to each peer and the
// BENCH.md targets, a JSON file, JSON lines, and SVG charts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { barChart, lineChart, type BarGroup } from './svg.js';
import { fmt, median, type BenchResults, type ResultRow } from './suite.js';

const TRAIN = ['mnist-mlp', 'wide-mlp', 'tiny-xor'] as const;
const DELTAPROP = ['deltaprop-native', 'deltaprop-wasm', 'deltaprop-js'];
const TRAIN_PEERS = ['pytorch', 'tfjs-wasm', 'tfjs-cpu', 'brain.js'];

/** A row's system name with its thread count when it is not the default run (native at 1 thread). */
const label = (r: ResultRow, all: number): string =>
  r.system === 'deltaprop-native' && r.threads === 1 && all > 1 && r.workload !== 'sgemm' ? 'deltaprop-native (1 thread)' : r.system;

const ok = (r: ResultRow): boolean => !r.error && (r.samples_per_s !== undefined || r.gflops !== undefined);

function spread(r: ResultRow): string {
  const v = r.samples_per_s ?? r.gflops;
  if (v === undefined || r.min === undefined || r.max === undefined) return '';
  return `−${((1 - r.min / v) * 100).toFixed(0)}% / +${((r.max / v - 1) * 100).toFixed(0)}%`;
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** The row of `system` (main run) on a training workload. */
function find(res: BenchResults, workload: string, system: string, threads?: number): ResultRow | undefined {
  return res.rows.find((r) => r.workload === workload && r.system === system && ok(r)
    && (threads === undefined ? !(r.system === 'deltaprop-native' && r.threads === 1 && res.meta.threads > 1) : r.threads === threads));
}

export interface Target {
  what: string;
  goal: string;
  measured: string;
  pass: boolean | null;
}

/** The BENCH.md ratio targets, from this run's rows (null: not measured in this run). */
export function targets(res: BenchResults): Target[] {
  const out: Target[] = [];
  const ratio = (w: string, a: string, b: string): number | null => {
    const x = find(res, w, a), y = find(res, w, b);
    return x && y ? x.samples_per_s! / y.samples_per_s! : null;
  };
  const push = (what: string, goal: string, v: number | null, pass: (v: number) => boolean, unit = '×'): void => {
    out.push({ what, goal, measured: v === null ? 'not measured' : `${v.toFixed(unit === '' ? 4 : 2)}${unit}`, pass: v === null ? null : pass(v) });
  };
  for (const w of ['mnist-mlp', 'wide-mlp']) push(`native vs PyTorch, ${w}`, '≥ 1.2×', ratio(w, 'deltaprop-native', 'pytorch'), (v) => v >= 1.2);
  push('native vs PyTorch, tiny-xor', '≥ 20×', ratio('tiny-xor', 'deltaprop-native', 'pytorch'), (v) => v >= 20);
  const fn = find(res, 'fashion', 'deltaprop-native'), fp = find(res, 'fashion', 'pytorch');
  push('native vs PyTorch, fashion time for the epochs', '≤ 0.6×', fn && fp ? fn.total_seconds! / fp.total_seconds! : null, (v) => v <= 0.6);
  const acc = fn?.test_accuracy?.[fn.test_accuracy.length - 1];
  push('native fashion test accuracy', '≥ 0.88', acc ?? null, (v) => v >= 0.88, '');
  const bigSquare = (shape: string | undefined): boolean => /^NN (\d+)x\1x\1$/.test(shape ?? '') && Number(shape!.split(' ')[1].split('x')[0]) >= 256;
  for (const t of [1, res.meta.threads]) {
    const mine = res.rows.filter((r) => r.workload === 'sgemm' && r.system === 'deltaprop-native' && r.threads === t && ok(r) && bigSquare(r.shape));
    const ratios = mine.map((r) => {
      const o = res.rows.find((q) => q.workload === 'sgemm' && q.system === 'openblas' && q.threads === t && q.shape === r.shape && ok(q));
      return o ? r.gflops! / o.gflops! : null;
    }).filter((v): v is number => v !== null);
    // paired rounds when the run has them (both under the same machine state), else the sweeps
    const paired = (res.pairedSgemm ?? []).filter((p) => p.threads === t && bigSquare(p.shape)).map((p) => p.ratio);
    push(`native sgemm vs OpenBLAS, n ≥ 256, ${t} thread${t > 1 ? 's' : ''} (worst size${paired.length ? ', median of paired rounds' : ''})`, '≥ 0.9×',
      paired.length ? Math.min(...paired) : ratios.length ? Math.min(...ratios) : null, (v) => v >= 0.9);
    if (res.meta.threads === 1) break;
  }
  for (const w of ['mnist-mlp', 'wide-mlp']) push(`wasm vs tfjs-wasm, ${w}`, '≥ 5×', ratio(w, 'deltaprop-wasm', 'tfjs-wasm'), (v) => v >= 5);
  for (const b of ['wasm', 'native']) push(`${b} vs brain.js, tiny-xor`, '≥ 3×', ratio('tiny-xor', `deltaprop-${b}`, 'brain.js'), (v) => v >= 3);
  for (const [s, st] of Object.entries(res.steady ?? {})) {
    out.push({
      what: `${s}: memory over ${st.steps} training steps`, goal: 'flat (heap < 256 KB, RSS < 8 MB, < 8 KB garbage a step)',
      measured: `heap ${(st.heapRetained / 1024).toFixed(0)} KB, RSS ${(st.rssGrowth / 1024).toFixed(0)} KB, ${st.garbagePerStep.toFixed(0)} B/step`, pass: st.ok,
    });
  }
  for (const s of DELTAPROP) {
    const r = find(res, 'wide-mlp', s);
    const ms = r?.check?.event_loop_max_ms;
    if (typeof ms === 'number') push(`${s}: longest event-loop block during fit of wide-mlp`, '< 50 ms', ms, (v) => v < 50, ' ms');
  }
  const many = find(res, 'wide-mlp', 'deltaprop-native'), one = find(res, 'wide-mlp', 'deltaprop-native', 1);
  // paired rounds when the run has them (both setups under the same machine state), else the rows
  const paired = one?.check?.threads_ratio_paired;
  push(`native ${res.meta.threads} threads vs 1, wide-mlp${typeof paired === 'number' ? ' (median of paired rounds)' : ''}`, '≥ 1.7×',
    typeof paired === 'number' ? paired : many && one && res.meta.threads > 1 ? many.samples_per_s! / one.samples_per_s! : null, (v) => v >= 1.7);
  if (one?.check && 'same_bits_1_vs_all_threads' in one.check) {
    out.push({ what: 'native: same bits for 1 and all threads', goal: 'identical', measured: String(one.check.same_bits_1_vs_all_threads), pass: one.check.same_bits_1_vs_all_threads === true });
  }
  return out;
}

export function markdown(res: BenchResults): string {
  const m = res.meta, all = m.threads;
  const parts: string[] = [];
  parts.push(`## deltaprop benchmark${m.quick ? ' (--quick)' : ''}\n\n${m.date} · ${m.cpu} · ${m.cores} cores · ${m.platform} · Node ${m.node} · medians of ${m.reps} repetitions after warm-up; spread = slowest / fastest repetition`);
  parts.push(table(['system', 'status'], Object.entries(res.systems).map(([s, v]) => [s, v.ok ? `ok${v.detail ? ` (${v.detail})` : ''}` : `not run: ${v.reason}`])));

  const train = res.rows.filter((r) => (TRAIN as readonly string[]).includes(r.workload));
  if (train.length) {
    parts.push('### Training throughput (samples/s: one forward + backward + update of one row)');
    parts.push(table(['workload', 'system', 'samples/s', 'spread', 'checked before timing', 'note'], train.map((r) => [
      r.workload, label(r, all), ok(r) ? fmt(r.samples_per_s!) : '—', spread(r), checkText(r), r.error ?? r.note ?? '',
    ])));
    const peers = TRAIN_PEERS.filter((p) => train.some((r) => r.system === p && ok(r)));
    const mine = DELTAPROP.filter((s) => train.some((r) => r.system === s && ok(r)));
    if (peers.length && mine.length) {
      parts.push('### Ratios (deltaprop ÷ peer, same run; > 1 means deltaprop is faster)');
      const rows: string[][] = [];
      for (const w of TRAIN) {
        for (const s of mine) {
          const a = find(res, w, s);
          if (!a) continue;
          rows.push([w, s, ...peers.map((p) => {
            const b = find(res, w, p);
            return b ? `${(a.samples_per_s! / b.samples_per_s!).toFixed(2)}×` : '—';
          })]);
        }
      }
      parts.push(table(['workload', 'system', ...peers.map((p) => `÷ ${p}`)], rows));
    }
  }

  const fashion = res.rows.filter((r) => r.workload === 'fashion' && (r.error || (r.epoch_seconds?.length && r.test_accuracy?.length)));
  if (fashion.length) {
    parts.push(`### Fashion-MNIST (784-256-128-10, Adam 1e-3, batch 128, ${m.epochs} epoch${m.epochs > 1 ? 's' : ''})`);
    parts.push(table(['system', 's/epoch (median)', 'total s', 'test accuracy per epoch', 'final test accuracy', 'note'], fashion.map((r) => ok(r)
      ? [label(r, all), median(r.epoch_seconds!).toFixed(2), r.total_seconds?.toFixed(1) ?? '—', r.test_accuracy!.map((a) => a.toFixed(3)).join(' '),
        r.test_accuracy![r.test_accuracy!.length - 1].toFixed(4), r.note ?? '']
      : [r.system, '—', '—', '—', '—', r.error ?? ''])));
  }

  const gemm = res.rows.filter((r) => r.workload === 'sgemm');
  if (gemm.length) {
    parts.push('### sgemm (GFLOP/s, median; shape = transposes m×n×k)');
    const cols = [...new Set(gemm.map((r) => r.system))];
    const keys = [...new Set(gemm.map((r) => `${r.threads}|${r.shape}`))];
    const rows = keys.map((k) => {
      const [t, shape] = k.split('|');
      const cell = (s: string): ResultRow | undefined => gemm.find((r) => r.system === s && String(r.threads) === t && r.shape === shape);
      const n = cell('deltaprop-native'), o = cell('openblas');
      const origin = gemm.find((r) => r.shape === shape)?.origin ?? '';
      const pair = res.pairedSgemm?.find((p) => p.shape === shape && String(p.threads) === t);
      return [shape, origin, t, ...cols.map((s) => {
        const c = cell(s);
        return !c ? '' : ok(c) ? c.gflops!.toFixed(1) : (c.error?.startsWith('skipped') ? 'skipped' : 'failed');
      }), n && o && ok(n) && ok(o) ? `${(n.gflops! / o.gflops!).toFixed(2)}×` : '—', pair ? `${pair.ratio.toFixed(2)}×` : '—'];
    });
    // the sweep's ratio divides medians taken minutes apart; the paired one, rounds taken together
    parts.push(table(['shape', 'from', 'threads', ...cols, 'native ÷ openblas (sweeps)', 'native ÷ openblas (paired rounds)'], rows));
    const failed = gemm.filter((r) => r.error && !r.error.startsWith('skipped'));
    if (failed.length) parts.push(failed.map((r) => `- ${r.system} ${r.shape} (${r.threads} threads): ${r.error}`).join('\n'));
  }
  if (res.pairedSgemm?.length) {
    parts.push('### sgemm against OpenBLAS in paired rounds (native ÷ openblas per round, one repetition of each, alternating)');
    parts.push(table(['shape', 'threads', 'median', 'rounds'], res.pairedSgemm.map((p) =>
      [p.shape, String(p.threads), `${p.ratio.toFixed(2)}×`, p.rounds.map((v) => v.toFixed(2)).join(' ')])));
  }

  const tg = targets(res).filter((t) => t.pass !== null);
  if (tg.length) {
    parts.push('### BENCH.md targets (ratios in this run)');
    parts.push(table(['target', 'goal', 'measured', ''], tg.map((t) => [t.what, t.goal, t.measured, t.pass ? 'met' : 'NOT met'])));
  }
  return parts.join('\n\n') + '\n';
}

function checkText(r: ResultRow): string {
  const c = r.check;
  if (!c) return '';
  const bits: string[] = [];
  if (typeof c.loss_before === 'number' && typeof c.loss_after === 'number') bits.push(`loss ${c.loss_before.toPrecision(3)}→${c.loss_after.toPrecision(3)}`);
  if (typeof c.vs_js_max_output_diff === 'number') bits.push(`vs js ${c.vs_js_max_output_diff.toExponential(1)}`);
  if ('same_bits_1_vs_all_threads' in c) bits.push(c.same_bits_1_vs_all_threads ? 'same bits as all threads' : 'bits differ from all threads');
  return `${c.ok ? '✓' : '✗'} ${bits.join(', ')}`;
}

/** results.json, results.md, throughput.svg, sgemm.svg and fashion.svg in `dir`. */
export function writeResults(res: BenchResults, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files: [string, string][] = [
    ['results.json', JSON.stringify({ ...res, targets: targets(res) }, null, 2) + '\n'],
    ['results.md', markdown(res)],
  ];
  const all = res.meta.threads;
  const groups: BarGroup[] = [];
  for (const w of [...TRAIN, 'fashion']) {
    const bars = res.rows.filter((r) => r.workload === w && ok(r)).map((r) => ({ system: label(r, all), value: r.samples_per_s!, min: r.min, max: r.max }));
    if (bars.length) groups.push({ label: w === 'fashion' ? 'fashion (training rows / median epoch time)' : w, bars });
  }
  if (groups.length) files.push(['throughput.svg', barChart('Training throughput per system', 'samples/s', groups)]);
  const squares = res.rows.filter((r) => r.workload === 'sgemm' && ok(r) && /^NN (\d+)x\1x\1$/.test(r.shape ?? ''));
  if (squares.length) {
    const sizes = [...new Set(squares.map((r) => r.shape!))];
    files.push(['sgemm.svg', barChart('sgemm, square sizes', 'GFLOP/s', sizes.map((s) => ({
      label: s.replace(/^NN (\d+)x.*/, 'n = $1'),
      bars: squares.filter((r) => r.shape === s).map((r) => ({ system: `${r.system} (${r.threads} thread${r.threads === 1 ? '' : 's'})`, value: r.gflops!, min: r.min, max: r.max })),
    })))]);
  }
  const fashion = res.rows.filter((r) => r.workload === 'fashion' && ok(r) && r.epoch_seconds?.length && r.test_accuracy?.length);
  if (fashion.length) {
    files.push(['fashion.svg', lineChart('Fashion-MNIST: test accuracy against training time', 'cumulative training seconds', 'test accuracy',
      fashion.map((r) => {
        let t = 0;
        return { system: label(r, all), points: r.epoch_seconds!.map((s, i) => [(t += s), r.test_accuracy![i]] as [number, number]) };
      }))]);
  }
  for (const [f, text] of files) writeFileSync(join(dir, f), text);
  return files.map(([f]) => join(dir, f));
}

/** The JSON-lines record of a row: always workload, system, and samples_per_s or gflops. */
export function jsonLine(r: ResultRow): string {
  return JSON.stringify(r);
}

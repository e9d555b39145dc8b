// Results as people and scripts read them: markdown tables with ratios to each peer and the
// targets (bench/README.md), a JSON file, JSON lines, and SVG charts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { barChart, lineChart, type BarGroup } from './svg.js';
import { fmt, GEMM_PEERS, median, type BenchResults, type ResultRow } from './suite.js';

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

const pct = (v: number | undefined): string => (v === undefined ? '—' : `${v < 10 ? v.toFixed(1) : v.toFixed(0)}%`);
const threadsText = (t: number): string => `${t} thread${t > 1 ? 's' : ''}`;
const bigSquare = (shape: string | undefined): boolean => /^NN (\d+)x\1x\1$/.test(shape ?? '') && Number(shape!.split(' ')[1].split('x')[0]) >= 256;

/**
 * Native sgemm against the best GEMM peer on one shape at `threads`: the paired rounds' median
 * when the run has them (both under the same machine state), else the sweeps' ratio; the worst of
 * the peers (the best peer is the one native is slowest against). Null when no peer was measured.
 */
export function vsBestGemmPeer(res: BenchResults, shape: string, threads: number): { ratio: number; peer: string; paired: boolean } | null {
  let worst: { ratio: number; peer: string; paired: boolean } | null = null;
  for (const peer of GEMM_PEERS) {
    const p = res.pairedSgemm?.find((q) => q.peer === peer && q.shape === shape && q.threads === threads);
    let r: { ratio: number; peer: string; paired: boolean } | null = p ? { ratio: p.ratio, peer, paired: true } : null;
    if (!r) {
      const mine = res.rows.find((q) => q.workload === 'sgemm' && q.system === 'deltaprop-native' && q.threads === threads && q.shape === shape && ok(q));
      const theirs = res.rows.find((q) => q.workload === 'sgemm' && q.system === peer && q.threads === threads && q.shape === shape && ok(q));
      if (mine && theirs) r = { ratio: mine.gflops! / theirs.gflops!, peer, paired: false };
    }
    if (r && (!worst || r.ratio < worst.ratio)) worst = r;
  }
  return worst;
}

/** The targets (docs: bench/README.md), from this run's rows (pass null: not measured in this run). */
export function targets(res: BenchResults): Target[] {
  const out: Target[] = [];
  const all = res.meta.threads;
  const ratio = (w: string, a: string, b: string): number | null => {
    const x = find(res, w, a), y = find(res, w, b);
    return x && y ? x.samples_per_s! / y.samples_per_s! : null;
  };
  const push = (what: string, goal: string, v: number | null, pass: (v: number) => boolean, unit = '×', detail = ''): void => {
    const text = unit === '%' ? pct(v ?? undefined) : `${v?.toFixed(unit === '' ? 4 : 2)}${unit}`;
    out.push({ what, goal, measured: v === null ? 'not measured' : `${text}${detail}`, pass: v === null ? null : pass(v) });
  };
  for (const w of ['mnist-mlp', 'wide-mlp']) push(`native vs PyTorch at its best, ${w}`, '≥ 2×', ratio(w, 'deltaprop-native', 'pytorch'), (v) => v >= 2);
  push('native vs PyTorch, tiny-xor', '≥ 100×', ratio('tiny-xor', 'deltaprop-native', 'pytorch'), (v) => v >= 100);
  const fn = find(res, 'fashion', 'deltaprop-native'), fp = find(res, 'fashion', 'pytorch');
  push('native vs PyTorch, fashion time for the epochs', '≤ 0.5×', fn && fp ? fn.total_seconds! / fp.total_seconds! : null, (v) => v <= 0.5);
  const acc = fn?.test_accuracy?.[fn.test_accuracy.length - 1];
  push('native fashion test accuracy', '≥ 0.88', acc ?? null, (v) => v >= 0.88, '');
  // with batch normalization and dropout: accuracy within 20 epochs, and time against PyTorch on the same model
  const rn = find(res, 'fashion-regularized', 'deltaprop-native'), rp = find(res, 'fashion-regularized', 'pytorch');
  push('native vs PyTorch, fashion-regularized time for the epochs', '≤ 0.5×', rn && rp ? rn.total_seconds! / rp.total_seconds! : null, (v) => v <= 0.5);
  const racc = rn?.test_accuracy?.length ? Math.max(...rn.test_accuracy.slice(0, 20)) : undefined;
  push('native fashion-regularized test accuracy within 20 epochs', '≥ 0.895', racc ?? null, (v) => v >= 0.895, '');
  for (const t of all > 1 ? [1, all] : [1]) {
    const shapes = [...new Set(res.rows.filter((r) => r.workload === 'sgemm' && r.system === 'deltaprop-native' && r.threads === t && ok(r) && bigSquare(r.shape))
      .map((r) => r.shape!))];
    let worst: { ratio: number; peer: string; paired: boolean; shape: string } | null = null;
    for (const shape of shapes) {
      const r = vsBestGemmPeer(res, shape, t);
      if (r && (!worst || r.ratio < worst.ratio)) worst = { ...r, shape };
    }
    push(`native sgemm vs the best of OpenBLAS and oneDNN, n ≥ 256, ${threadsText(t)} (worst size)`, '≥ 1.0×', worst?.ratio ?? null, (v) => v >= 1.0, '×',
      worst ? ` (${worst.shape.replace(/^NN (\d+)x.*/, 'n = $1')} vs ${worst.peer}, ${worst.paired ? 'paired rounds' : 'sweeps'})` : '');
  }
  const peakOf = (w: string, threads?: number): number | null => find(res, w, 'deltaprop-native', threads)?.pct_of_peak ?? null;
  push('native wide-mlp, % of FMA peak, 1 thread', '≥ 85%', peakOf('wide-mlp', all > 1 ? 1 : undefined), (v) => v >= 85, '%');
  if (all > 1) push(`native wide-mlp, % of FMA peak, ${threadsText(all)}`, '≥ 80%', peakOf('wide-mlp'), (v) => v >= 80, '%');
  push(`native mnist-mlp, % of FMA peak, ${threadsText(all)}`, '≥ 60%', peakOf('mnist-mlp'), (v) => v >= 60, '%');
  push(`native fashion end to end, % of FMA peak, ${threadsText(all)}`, '≥ 60%', peakOf('fashion'), (v) => v >= 60, '%');
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
  out.push(...inferTargets(res));
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
  parts.push(res.peak
    ? `The machine's fp32 FMA peak (register-only FMA loop, ${res.peak.isa}): **${res.peak.one.toFixed(1)} GFLOP/s on 1 thread, ${res.peak.all.toFixed(1)} on ${res.peak.threads}**. `
      + '% of peak = GEMM flops per second (sgemm: 2·m·n·k per call; training: forward, dW and dx but the first layer\'s, 2·m·k·n each) ÷ the peak at the row\'s thread count.'
    : `The machine's FMA peak was not measured (${res.systems['fma-peak']?.reason ?? 'unknown reason'}): no % of peak in this run.`);
  const over = res.rows.filter((r) => ok(r) && (r.pct_of_peak ?? 0) > 100);
  if (over.length) {
    parts.push(`**Warning:** ${over.length} row${over.length > 1 ? 's are' : ' is'} above 100% of the FMA peak, which no program can be: `
      + 'the peak was measured while other work had the cores, so every % of peak in this run is too high. Rerun on a quiet machine.');
  }
  parts.push(table(['system', 'status', 'kernel', 'detail'], Object.entries(res.systems).map(([s, v]) =>
    [s, v.ok ? 'ok' : 'not run', v.kernel ?? '', v.ok ? v.detail ?? '' : v.reason ?? ''])));

  const train = res.rows.filter((r) => (TRAIN as readonly string[]).includes(r.workload));
  if (train.length) {
    parts.push('### Training throughput (samples/s: one forward + backward + update of one row)');
    parts.push(table(['workload', 'system', 'samples/s', 'spread', '% of peak', 'checked before timing', 'note'], train.map((r) => [
      r.workload, label(r, all), ok(r) ? fmt(r.samples_per_s!) : '—', spread(r), ok(r) ? pct(r.pct_of_peak) : '—', checkText(r), r.error ?? rowNote(r),
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

  const FASHION_TITLES: Record<string, string> = {
    fashion: 'Fashion-MNIST (784-256-128-10, Adam 1e-3, batch 128',
    'fashion-regularized': 'Fashion-MNIST regularized (784-512-512-10, batch normalization and dropout 0.2 after each hidden layer, Adam 1e-3, batch 128',
  };
  for (const [workload, title] of Object.entries(FASHION_TITLES)) {
    const fashion = res.rows.filter((r) => r.workload === workload && (r.error || (r.epoch_seconds?.length && r.test_accuracy?.length)));
    if (!fashion.length) continue;
    const epochs = Math.max(...fashion.map((r) => r.epoch_seconds?.length ?? 0));
    parts.push(`### ${title}, ${epochs || m.epochs} epoch${(epochs || m.epochs) > 1 ? 's' : ''})`);
    parts.push(table(['system', 's/epoch (median)', 'total s', '% of peak', 'test accuracy per epoch', 'final test accuracy', 'note'], fashion.map((r) => ok(r)
      ? [label(r, all), median(r.epoch_seconds!).toFixed(2), r.total_seconds?.toFixed(1) ?? '—', pct(r.pct_of_peak), r.test_accuracy!.map((a) => a.toFixed(3)).join(' '),
        r.test_accuracy![r.test_accuracy!.length - 1].toFixed(4), rowNote(r)]
      : [r.system, '—', '—', '—', '—', '—', r.error ?? ''])));
  }

  const gemm = res.rows.filter((r) => r.workload === 'sgemm');
  if (gemm.length) {
    parts.push('### sgemm (GFLOP/s, median, and % of the FMA peak at that thread count; shape = transposes m×n×k)');
    const cols = [...new Set(gemm.map((r) => r.system))];
    const peers = GEMM_PEERS.filter((p) => cols.includes(p));
    const keys = [...new Set(gemm.filter((r) => r.shape).map((r) => `${r.threads}|${r.shape}`))];
    const rows = keys.map((k) => {
      const [t, shape] = k.split('|');
      const cell = (s: string): ResultRow | undefined => gemm.find((r) => r.system === s && String(r.threads) === t && r.shape === shape);
      const n = cell('deltaprop-native');
      const origin = gemm.find((r) => r.shape === shape)?.origin ?? '';
      return [shape, origin, t, ...cols.map((s) => {
        const c = cell(s);
        return !c ? '' : ok(c) ? `${c.gflops!.toFixed(1)} (${pct(c.pct_of_peak)})` : (c.error?.startsWith('skipped') ? 'skipped' : 'failed');
      }), ...peers.flatMap((p) => {
        const o = cell(p), pair = res.pairedSgemm?.find((q) => q.peer === p && q.shape === shape && String(q.threads) === t);
        return [n && o && ok(n) && ok(o) ? `${(n.gflops! / o.gflops!).toFixed(2)}×` : '—', pair ? `${pair.ratio.toFixed(2)}×` : '—'];
      })];
    });
    // the sweep's ratio divides medians taken minutes apart; the paired one, rounds taken together
    parts.push(table(['shape', 'from', 'threads', ...cols, ...peers.flatMap((p) => [`native ÷ ${p} (sweeps)`, `native ÷ ${p} (paired rounds)`])], rows));
    const failed = gemm.filter((r) => r.error && !r.error.startsWith('skipped'));
    if (failed.length) parts.push(failed.map((r) => `- ${r.system}${r.shape ? ` ${r.shape}` : ''} (${r.threads} threads): ${r.error}`).join('\n'));
  }
  if (res.pairedSgemm?.length) {
    parts.push('### sgemm against each GEMM peer in paired rounds (native ÷ peer per round, one repetition of each, alternating)');
    parts.push(table(['shape', 'threads', 'peer', 'median', 'rounds'], res.pairedSgemm.map((p) =>
      [p.shape, String(p.threads), p.peer, `${p.ratio.toFixed(2)}×`, p.rounds.map((v) => v.toFixed(2)).join(' ')])));
  }

  parts.push(...inferMarkdown(res));

  const tg = targets(res);
  if (tg.length) {
    parts.push('### Targets (against the peers at their best, in this run)');
    parts.push(table(['target', 'goal', 'measured', ''], tg.map((t) => [t.what, t.goal, t.measured, t.pass === null ? '—' : t.pass ? 'met' : 'NOT met'])));
  }
  return parts.join('\n\n') + '\n';
}

/** A row's note and, for a peer, the kernel and thread split it ran with. */
function rowNote(r: ResultRow): string {
  const bits: string[] = [];
  if (r.kernel && !r.system.startsWith('deltaprop-')) bits.push(`kernel ${r.kernel}`);
  if (r.torch_threads !== undefined) bits.push(`torch ${r.torch_threads} / OpenBLAS ${r.blas_threads} threads`);
  if (r.torch_cpu_capability !== undefined) bits.push(`torch kernels ${r.torch_cpu_capability}`);
  if (r.note) bits.push(r.note);
  return bits.join('; ');
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

/** results.json, results.md, throughput.svg, peak.svg, sgemm.svg and fashion.svg in `dir` (those with data). */
export function writeResults(res: BenchResults, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files: [string, string][] = [
    ['results.json', JSON.stringify({ ...res, targets: targets(res) }, null, 2) + '\n'],
    ['results.md', markdown(res)],
  ];
  const all = res.meta.threads;
  const groups: BarGroup[] = [];
  for (const w of [...TRAIN, 'fashion', 'fashion-regularized']) {
    const bars = res.rows.filter((r) => r.workload === w && ok(r)).map((r) => ({ system: label(r, all), value: r.samples_per_s!, min: r.min, max: r.max }));
    if (bars.length) groups.push({ label: w.startsWith('fashion') ? `${w} (training rows / median epoch time)` : w, bars });
  }
  if (groups.length) files.push(['throughput.svg', barChart('Training throughput per system', 'samples/s', groups)]);
  // % of the FMA peak per workload and system: training workloads, then the square sgemm sizes
  const peakGroups: BarGroup[] = [];
  for (const w of [...TRAIN, 'fashion', 'fashion-regularized']) {
    const bars = res.rows.filter((r) => r.workload === w && ok(r) && r.pct_of_peak !== undefined)
      .map((r) => ({ system: label(r, all), value: r.pct_of_peak! }));
    if (bars.length) peakGroups.push({ label: w, bars });
  }
  for (const shape of [...new Set(res.rows.filter((r) => r.workload === 'sgemm' && ok(r) && /^NN (\d+)x\1x\1$/.test(r.shape ?? '')).map((r) => r.shape!))]) {
    const bars = res.rows.filter((r) => r.workload === 'sgemm' && r.shape === shape && ok(r) && r.pct_of_peak !== undefined)
      .map((r) => ({ system: `${r.system} (${r.threads} thread${r.threads === 1 ? '' : 's'})`, value: r.pct_of_peak! }));
    if (bars.length) peakGroups.push({ label: `sgemm ${shape.replace(/^NN (\d+)x.*/, 'n = $1')}`, bars });
  }
  if (peakGroups.length && res.peak) {
    files.push(['peak.svg', barChart(`% of the fp32 FMA peak (${res.peak.one.toFixed(0)} GFLOP/s on 1 thread, ${res.peak.all.toFixed(0)} on ${res.peak.threads})`,
      'GEMM flops ÷ peak at the thread count', peakGroups, { scale: 'linear', atLeast: 100, suffix: '%', limit: { value: 100, label: 'FMA peak' } })]);
  }
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

// ---- inference (bench/infer.ts)

const INFER_PEERS = ['onnxruntime-node', 'onnxruntime-web', 'tfjs-wasm'];
const inferOk = (r: ResultRow): boolean => r.workload === 'infer' && !r.error && r.latency_p50_us !== undefined;
const us = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(2)} ms` : `${v < 100 ? v.toFixed(1) : v.toFixed(0)} µs`);
const withThreads = (r: ResultRow): string => `${r.system} (${threadsText(r.threads ?? 1)})`;

function inferRow(res: BenchResults, shape: string, system: string, threads: number): ResultRow | undefined {
  return res.rows.find((r) => inferOk(r) && r.shape === shape && r.system === system && (r.threads ?? 1) === threads);
}

/** deltaprop ÷ peer pairs worth comparing: the same thread count (wasm: the threads build above one thread). */
function inferPairs(res: BenchResults, shape: string): [ResultRow, ResultRow][] {
  const rows = res.rows.filter((r) => inferOk(r) && r.shape === shape);
  const pairs: [ResultRow, ResultRow][] = [];
  for (const a of rows.filter((r) => r.system.startsWith('deltaprop'))) {
    for (const b of rows.filter((r) => INFER_PEERS.includes(r.system))) {
      if ((a.threads ?? 1) === (b.threads ?? 1)) pairs.push([a, b]);
    }
  }
  return pairs;
}

function inferMarkdown(res: BenchResults): string[] {
  const rows = res.rows.filter((r) => r.workload === 'infer');
  const parts: string[] = [];
  if (!rows.length && !res.coldStarts?.length) return parts;
  parts.push('### Inference (the same model, exported with toOnnx; batch-1 latency over every call of the interleaved rounds, batch-256 rows/s the median of the rounds)');
  parts.push(table(['model', 'system', 'threads', 'batch 1 p50', 'batch 1 p99', 'batch 256 rows/s', 'checked before timing', 'note'], rows.map((r) => [
    r.shape ?? '', r.system, String(r.threads ?? 1), inferOk(r) ? us(r.latency_p50_us!) : '—', inferOk(r) ? us(r.latency_p99_us!) : '—',
    inferOk(r) ? fmt(r.rows_per_s!) : '—', checkText(r), r.error ?? r.note ?? '',
  ])));
  const shapes = [...new Set(rows.map((r) => r.shape!))];
  const ratioRows: string[][] = [];
  for (const shape of shapes) {
    for (const [a, b] of inferPairs(res, shape)) {
      ratioRows.push([shape, withThreads(a), withThreads(b), `${(a.latency_p50_us! / b.latency_p50_us!).toFixed(2)}×`,
        `${(a.latency_p99_us! / b.latency_p99_us!).toFixed(2)}×`, `${(a.rows_per_s! / b.rows_per_s!).toFixed(2)}×`]);
    }
  }
  if (ratioRows.length) {
    parts.push('Ratios, deltaprop ÷ peer in the same run: latency < 1 and throughput > 1 mean deltaprop is faster.');
    parts.push(table(['model', 'deltaprop', 'peer', 'batch 1 p50', 'batch 1 p99', 'batch 256 throughput'], ratioRows));
  }
  if (res.coldStarts?.length) {
    parts.push('### Cold start in workerd (miniflare; a fresh workerd per sample, medians)');
    parts.push('start = new Miniflare() until ready (workerd, the script and its .wasm modules compiled); first request = instantiate, model load and one prediction, with the request\'s round trip; warm = a later request of the same worker. Sizes: the worker script minified (gzipped), its .wasm modules, the model file.');
    const kb = (n: number): string => `${(n / 1024).toFixed(1)} kB`;
    parts.push(table(['worker', 'script', '.wasm', 'model', 'start', 'first request', 'start + first request', 'warm request', 'status'], res.coldStarts.map((c) => {
      const good = !c.error && c.first_ms.length > 0;
      return [c.system, `${kb(c.bundle.script)} (${kb(c.bundle.scriptGzip)})`, c.bundle.wasm ? kb(c.bundle.wasm) : '—', kb(c.bundle.model),
        good ? `${median(c.start_ms).toFixed(0)} ms` : '—', good ? `${median(c.first_ms).toFixed(1)} ms` : '—',
        good ? `${median(c.start_ms.map((v, i) => v + c.first_ms[i])).toFixed(0)} ms` : '—', good ? `${median(c.warm_ms).toFixed(1)} ms` : '—',
        good ? `✓ vs js ${c.maxDiff.toExponential(1)}` : `does not run: ${c.error}`];
    })));
  }
  return parts;
}

/** The median over the interleaved rounds of a's batch-256 throughput over b's in the same round. */
function roundRatio(a?: ResultRow, b?: ResultRow): number | null {
  const ra = a?.throughput_rounds, rb = b?.throughput_rounds;
  if (!ra?.length || ra.length !== rb?.length) return null;
  return median(ra.map((v, i) => v / rb[i]));
}

function inferTargets(res: BenchResults): Target[] {
  const out: Target[] = [];
  const all = res.meta.threads;
  const shapes = [...new Set(res.rows.filter((r) => r.workload === 'infer' && r.shape).map((r) => r.shape!))];
  const push = (what: string, goal: string, v: number | null, pass: (v: number) => boolean): void => {
    out.push({ what, goal, measured: v === null ? 'not measured' : `${v.toFixed(2)}×`, pass: v === null ? null : pass(v) });
  };
  for (const shape of shapes) {
    const native = inferRow(res, shape, 'deltaprop-native', all), wasm = inferRow(res, shape, 'deltaprop-wasm', 1);
    const ortNode = inferRow(res, shape, 'onnxruntime-node', all), ortWeb = inferRow(res, shape, 'onnxruntime-web', 1);
    const ratio = (a?: ResultRow, b?: ResultRow, f: (r: ResultRow) => number = (r) => r.latency_p50_us!): number | null => (a && b ? f(a) / f(b) : null);
    push(`infer ${shape}: native batch-1 p50 vs onnxruntime-node (${threadsText(all)})`, '≤ 0.7×', ratio(native, ortNode), (v) => v <= 0.7);
    push(`infer ${shape}: wasm batch-1 p50 vs onnxruntime-web (1 thread)`, '≤ 0.7×', ratio(wasm, ortWeb), (v) => v <= 0.7);
    push(`infer ${shape}: native batch-256 throughput vs onnxruntime-node (${threadsText(all)})`, '≥ 1.2×', ratio(native, ortNode, (r) => r.rows_per_s!), (v) => v >= 1.2);
    push(`infer ${shape}: wasm batch-256 throughput vs onnxruntime-web (1 thread)`, '≥ 1.2×', ratio(wasm, ortWeb, (r) => r.rows_per_s!), (v) => v >= 1.2);
    if (all > 1) {
      // the wasm threads build against onnxruntime-web at the same numThreads (issues 14 and 16)
      const wasmAll = inferRow(res, shape, 'deltaprop-wasm', all), ortWebAll = inferRow(res, shape, 'onnxruntime-web', all);
      push(`infer ${shape}: wasm batch-1 p50 vs onnxruntime-web (${threadsText(all)})`, '≤ 0.7×', ratio(wasmAll, ortWebAll), (v) => v <= 0.7);
      push(`infer ${shape}: wasm batch-256 throughput vs onnxruntime-web (${threadsText(all)})`, '≥ 1.2×', ratio(wasmAll, ortWebAll, (r) => r.rows_per_s!), (v) => v >= 1.2);
      push(`infer ${shape}: wasm threads build batch-256 throughput vs onnxruntime-web (${threadsText(all)}, issue 16)`, '≥ 1.3×',
        ratio(wasmAll, ortWebAll, (r) => r.rows_per_s!), (v) => v >= 1.3);
      // issue 16's scaling: the median of the rounds' ratios (both measured in every round, next to each other)
      push(`infer ${shape}: wasm batch-256 throughput, ${threadsText(all)} vs 1 (median of the rounds' ratios)`, '≥ 1.7×', roundRatio(wasmAll, wasm), (v) => v >= 1.7);
    }
    const mine = res.coldStarts?.find((c) => c.system === `deltaprop-wasm ${shape}`), theirs = res.coldStarts?.find((c) => c.system === `onnxruntime-web ${shape}`);
    const total = (c: typeof mine): number | null => (c && !c.error && c.first_ms.length ? median(c.start_ms.map((v, i) => v + c.first_ms[i])) : null);
    const a = total(mine), b = total(theirs);
    if (a !== null && b !== null) push(`infer ${shape}: wasm cold start in workerd vs onnxruntime-web (start + first request)`, '≤ 0.25×', a / b, (v) => v <= 0.25);
    else {
      out.push({ what: `infer ${shape}: wasm cold start in workerd vs onnxruntime-web`, goal: '≤ 0.25×',
        measured: a !== null && theirs?.error ? `deltaprop ${a.toFixed(0)} ms; onnxruntime-web does not run in workerd (${theirs.error.slice(0, 120)})` : 'not measured', pass: null });
    }
  }
  return out;
}

// Training curves as a standalone SVG: loss (and accuracy, for classifiers) per epoch, training and
// validation. Hand-written because the chart is two polylines per panel; a charting library would
// pull in a DOM or a canvas for no gain.
import type { EpochLogs } from '../model/fit.js';

const W = 420, H = 300, PAD = { left: 56, right: 16, top: 34, bottom: 42 };
const COLORS = { train: '#1f77b4', val: '#ff7f0e' };

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** Tick labels with as many decimals as the tick step needs (0, 0.5, 1.0 → '0.0', '0.5', '1.0'). */
const fmt = (v: number, step: number): string => v.toFixed(Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9))));

/** About `count` round tick values covering [lo, hi], and their step. */
function ticks(lo: number, hi: number, count: number): { values: number[]; step: number } {
  const span = hi - lo || 1;
  const raw = span / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return { values: out, step };
}

interface Series {
  label: string;
  color: string;
  dashed: boolean;
  values: number[];
}

// Loops, not Math.min(...values): a spread passes every epoch as an argument on the stack.
/** The smallest finite value of the series (Infinity when there is none). */
function least(series: Series[]): number {
  let v = Infinity;
  for (const s of series) for (const x of s.values) if (Number.isFinite(x) && x < v) v = x;
  return v;
}

/** The largest finite value of the series (-Infinity when there is none). */
function greatest(series: Series[]): number {
  let v = -Infinity;
  for (const s of series) for (const x of s.values) if (Number.isFinite(x) && x > v) v = x;
  return v;
}

function panel(x0: number, title: string, epochs: number[], series: Series[], range?: [number, number], legendLow = false): string {
  let [lo, hi] = range ?? [Math.min(0, least(series)), greatest(series)];
  if (!(hi > lo)) hi = lo + 1;
  const pw = W - PAD.left - PAD.right, ph = H - PAD.top - PAD.bottom;
  const e0 = epochs[0], e1 = epochs[epochs.length - 1];
  const sx = (e: number): number => x0 + PAD.left + (e1 === e0 ? pw / 2 : ((e - e0) / (e1 - e0)) * pw);
  const sy = (v: number): number => PAD.top + ph - ((v - lo) / (hi - lo)) * ph;
  const parts: string[] = [];
  parts.push(`<text x="${x0 + PAD.left + pw / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  const yt = ticks(lo, hi, 5);
  for (const t of yt.values) {
    const y = sy(t).toFixed(1);
    parts.push(`<line x1="${x0 + PAD.left}" x2="${x0 + PAD.left + pw}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${x0 + PAD.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="11">${fmt(t, yt.step)}</text>`);
  }
  for (const t of ticks(e0, e1, Math.min(8, Math.max(1, e1 - e0))).values.filter((t) => Number.isInteger(t))) {
    parts.push(`<text x="${sx(t).toFixed(1)}" y="${PAD.top + ph + 16}" text-anchor="middle" font-size="11">${t}</text>`);
  }
  parts.push(`<text x="${x0 + PAD.left + pw / 2}" y="${H - 8}" text-anchor="middle" font-size="12">epoch</text>`);
  parts.push(`<rect x="${x0 + PAD.left}" y="${PAD.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  series.forEach((s, i) => {
    const pts = s.values.map((v, k) => `${sx(epochs[k]).toFixed(1)},${sy(Math.min(hi, Math.max(lo, v))).toFixed(1)}`).join(' ');
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${pts}"/>`);
    if (s.values.length === 1) parts.push(`<circle cx="${pts.split(',')[0]}" cy="${pts.split(',')[1]}" r="3" fill="${s.color}"/>`);
    // the legend sits where the curves usually are not: top right for loss, bottom right for accuracy
    const ly = legendLow ? PAD.top + ph - 14 - (series.length - 1 - i) * 16 : PAD.top + 14 + i * 16, lx = x0 + PAD.left + pw - 110;
    parts.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    parts.push(`<text x="${lx + 28}" y="${ly}" dominant-baseline="middle" font-size="11">${esc(s.label)}</text>`);
  });
  return parts.join('\n');
}

/** The SVG document for a training history. */
export function trainingCurvesSvg(history: EpochLogs[], title: string): string {
  if (history.length === 0) throw new Error('trainingCurvesSvg: no epochs');
  const epochs = history.map((h) => h.epoch);
  const pick = (label: string, color: string, dashed: boolean, get: (h: EpochLogs) => number | undefined): Series[] =>
    history.every((h) => get(h) !== undefined) ? [{ label, color, dashed, values: history.map((h) => get(h)!) }] : [];
  const loss = [...pick('training', COLORS.train, false, (h) => h.loss), ...pick('validation', COLORS.val, true, (h) => h.valLoss)];
  const acc = [...pick('training', COLORS.train, false, (h) => h.accuracy), ...pick('validation', COLORS.val, true, (h) => h.valAccuracy)];
  const panels = [panel(0, 'loss', epochs, loss)];
  if (acc.length > 0) panels.push(panel(W, 'accuracy', epochs, acc, [Math.max(0, Math.floor(least(acc) * 10) / 10), 1], true));
  const width = W * panels.length, height = H + 24;
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">
<title>${esc(title)}</title>
<rect width="100%" height="100%" fill="white"/>
<g transform="translate(0,24)">
${panels.join('\n')}
</g>
<text x="${width / 2}" y="16" text-anchor="middle" font-size="13">${esc(title)}</text>
</svg>
`;
}

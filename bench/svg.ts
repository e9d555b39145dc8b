// Two small SVG charts, written by hand because the charting libraries that render SVG in Node
// (vega, vega-lite) need Node 22: grouped horizontal bars (on a log axis, or a linear one for
// shares such as % of peak), and lines of points.

export const COLORS: Record<string, string> = {
  'deltaprop-native': '#d62728',
  'deltaprop-wasm': '#ff7f0e',
  'deltaprop-js': '#e7a3a3',
  'deltaprop-native (1 thread)': '#8c2d2d',
  'tfjs-cpu': '#9ecae1',
  'tfjs-wasm': '#3182bd',
  'brain.js': '#31a354',
  pytorch: '#756bb1',
  'openblas': '#636363',
  'openblas (1 thread)': '#b0b0b0',
  onednn: '#17becf',
  'onednn (1 thread)': '#9edae5',
};
const colorOf = (s: string): string => COLORS[s] ?? COLORS[s.replace(/ \(.*\)$/, '')] ?? '#888888';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export interface Bar {
  system: string;
  value: number;
  min?: number;
  max?: number;
}

export interface BarGroup {
  label: string;
  bars: Bar[];
}

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

function short(x: number): string {
  if (x >= 1e6) return `${+(x / 1e6).toPrecision(3)}M`;
  if (x >= 1e3) return `${+(x / 1e3).toPrecision(3)}k`;
  return `${+x.toPrecision(3)}`;
}

export interface BarChartOptions {
  /** 'log' (default): a log10 axis over the decades of the values; 'linear': from 0. */
  scale?: 'log' | 'linear';
  /** Linear scale: the axis reaches at least this (100 for a percentage). */
  atLeast?: number;
  /** Appended to each bar's value label ('%'). */
  suffix?: string;
  /** A dashed line at this value, labelled (the physical limit: 100 % of peak). */
  limit?: { value: number; label: string };
}

/** Horizontal bars per group on a shared axis, whiskers from min to max when given. */
export function barChart(title: string, unit: string, groups: BarGroup[], opts: BarChartOptions = {}): string {
  const linear = opts.scale === 'linear', suffix = opts.suffix ?? '';
  const values = groups.flatMap((g) => g.bars.flatMap((b) => [b.value, b.min ?? b.value, b.max ?? b.value])).filter((v) => v > 0);
  if (values.length === 0) return emptyChart(title);
  const lo = linear ? 0 : Math.pow(10, Math.floor(Math.log10(Math.min(...values))));
  const hi = linear ? niceCeil(Math.max(opts.atLeast ?? 0, ...values)) : Math.pow(10, Math.ceil(Math.log10(Math.max(...values))));
  const left = 190, right = 90, width = 860, plotW = width - left - right, barH = 16, gap = 4, groupGap = 18, top = 52;
  const x = (v: number): number => left + (linear ? (Math.max(v, 0) / hi) : Math.log10(v / lo) / Math.log10(hi / lo)) * plotW;
  let y = top;
  const parts: string[] = [];
  for (const g of groups) {
    parts.push(`<text x="10" y="${y + 12}" font-size="13" font-weight="600" ${FONT}>${esc(g.label)}</text>`);
    y += 18;
    for (const b of g.bars) {
      const w = Math.max(1, x(b.value) - left);
      parts.push(`<text x="${left - 6}" y="${y + barH - 4}" font-size="12" text-anchor="end" ${FONT}>${esc(b.system)}</text>`);
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${colorOf(b.system)}"><title>${esc(`${b.system}: ${short(b.value)}${suffix} ${unit}`)}</title></rect>`);
      if (b.min !== undefined && b.max !== undefined && b.max > b.min) {
        const cy = y + barH / 2;
        parts.push(`<line x1="${x(b.min).toFixed(1)}" x2="${x(b.max).toFixed(1)}" y1="${cy}" y2="${cy}" stroke="#222" stroke-width="1"/>`);
      }
      const end = Math.max(left + w, b.max !== undefined ? x(b.max) : 0); // the label clears the whisker
      parts.push(`<text x="${(end + 6).toFixed(1)}" y="${y + barH - 4}" font-size="11" ${FONT}>${short(b.value)}${suffix}</text>`);
      y += barH + gap;
    }
    y += groupGap;
  }
  const axis: string[] = [];
  for (const d of linear ? ticks(0, hi) : decades(lo, hi)) {
    const xv = x(d).toFixed(1);
    axis.push(`<line x1="${xv}" x2="${xv}" y1="${top - 6}" y2="${y - groupGap}" stroke="#ddd"/>`);
    axis.push(`<text x="${xv}" y="${top - 10}" font-size="11" text-anchor="middle" fill="#555" ${FONT}>${short(d)}${suffix}</text>`);
  }
  if (opts.limit && opts.limit.value <= hi) {
    const xv = x(opts.limit.value).toFixed(1);
    axis.push(`<line x1="${xv}" x2="${xv}" y1="${top - 6}" y2="${y - groupGap}" stroke="#d62728" stroke-dasharray="4 3"/>`);
    axis.push(`<text x="${xv}" y="${y - groupGap + 12}" font-size="11" text-anchor="middle" fill="#d62728" ${FONT}>${esc(opts.limit.label)}</text>`);
  }
  const whiskers = groups.some((g) => g.bars.some((b) => b.min !== undefined && b.max !== undefined));
  const height = y + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="16" font-weight="700" ${FONT}>${esc(title)}</text>
<text x="${width - 10}" y="22" font-size="12" text-anchor="end" fill="#555" ${FONT}>${esc(unit)}${linear ? '' : ', log scale'}${whiskers ? '; whiskers: slowest–fastest repetition' : ''}</text>
${axis.join('\n')}
${parts.join('\n')}
</svg>
`;
}

export interface Series {
  system: string;
  points: [number, number][];
}

/** Lines with markers; x on a log axis when the data spans more than 20×. */
export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[]): string {
  const pts = series.flatMap((s) => s.points);
  if (pts.length === 0) return emptyChart(title);
  const width = 860, height = 460, left = 70, right = 170, top = 40, bottom = 50;
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const logX = Math.max(...xs) / Math.max(Math.min(...xs), 1e-9) > 20;
  let x0 = logX ? Math.pow(10, Math.floor(Math.log10(Math.min(...xs)))) : 0;
  let x1 = logX ? Math.pow(10, Math.ceil(Math.log10(Math.max(...xs)))) : niceCeil(Math.max(...xs));
  if (x1 <= x0) x1 = x0 + 1;
  let y0 = Math.floor(Math.min(...ys) * 50) / 50, y1 = Math.ceil(Math.max(...ys) * 50) / 50;
  if (y1 - y0 < 0.02) { y0 -= 0.01; y1 += 0.01; }
  const px = (v: number): number => left + (logX ? Math.log10(v / x0) / Math.log10(x1 / x0) : (v - x0) / (x1 - x0)) * (width - left - right);
  const py = (v: number): number => top + (1 - (v - y0) / (y1 - y0)) * (height - top - bottom);
  const grid: string[] = [];
  const xt = logX ? decades(x0, x1) : ticks(x0, x1);
  for (const t of xt) grid.push(`<line x1="${px(t)}" x2="${px(t)}" y1="${top}" y2="${height - bottom}" stroke="#eee"/><text x="${px(t)}" y="${height - bottom + 16}" font-size="11" text-anchor="middle" fill="#555" ${FONT}>${short(t)}</text>`);
  for (const t of ticks(y0, y1)) grid.push(`<line x1="${left}" x2="${width - right}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/><text x="${left - 6}" y="${py(t) + 4}" font-size="11" text-anchor="end" fill="#555" ${FONT}>${t.toFixed(3)}</text>`);
  x0 = Math.max(x0, 0);
  const lines = series.map((s, i) => {
    const c = colorOf(s.system);
    const path = s.points.map((p, j) => `${j ? 'L' : 'M'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ');
    const dots = s.points.map((p) => `<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3" fill="${c}"><title>${esc(`${s.system}: ${p[1].toFixed(4)} at ${p[0].toFixed(1)} s`)}</title></circle>`).join('');
    const ly = top + 10 + i * 20;
    return `<path d="${path}" fill="none" stroke="${c}" stroke-width="2"/>${dots}<rect x="${width - right + 14}" y="${ly - 9}" width="12" height="12" fill="${c}"/><text x="${width - right + 32}" y="${ly + 1}" font-size="12" ${FONT}>${esc(s.system)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="16" font-weight="700" ${FONT}>${esc(title)}</text>
${grid.join('\n')}
<rect x="${left}" y="${top}" width="${width - left - right}" height="${height - top - bottom}" fill="none" stroke="#999"/>
<text x="${(left + width - right) / 2}" y="${height - 12}" font-size="12" text-anchor="middle" ${FONT}>${esc(xLabel)}${logX ? ' (log scale)' : ''}</text>
<text transform="translate(16 ${(top + height - bottom) / 2}) rotate(-90)" font-size="12" text-anchor="middle" ${FONT}>${esc(yLabel)}</text>
${lines.join('\n')}
</svg>
`;
}

function emptyChart(title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="600" height="60" viewBox="0 0 600 60"><rect width="100%" height="100%" fill="white"/><text x="10" y="24" font-size="14" ${FONT}>${esc(title)}: no results</text></svg>\n`;
}

function niceCeil(v: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function ticks(a: number, b: number): number[] {
  const step = niceCeil((b - a) / 6);
  const out: number[] = [];
  for (let t = Math.ceil(a / step) * step; t <= b + step * 1e-6; t += step) out.push(+t.toPrecision(12));
  return out;
}

function decades(a: number, b: number): number[] {
  const out: number[] = [];
  for (let d = a; d <= b * 1.0001; d *= 10) out.push(d);
  return out;
}

// Optimizer state below the smallest normal float32 is stored as 0 on every backend and ISA, so
// a moment decaying towards 0 never sits in the subnormal range (where x86 multiplies take a
// microcode assist each) and every backend keeps the same state. NaN still propagates.
import { describe, expect, it } from 'vitest';
import { F32_MIN_NORMAL } from '../src/backends/abi.js';
import type { Backend } from '../src/backends/backend.js';
import { BACKENDS } from './backends.js';
import { ISAS, native } from './native-helpers.js';

const n = 37; // a SIMD body and a scalar tail on every ISA
const SUBNORMAL_AFTER_DECAY = 1.2e-38; // normal; ×0.9 (β1, μ) or ×0.999 (β2, from 1.17e-38) is subnormal

function bufs(be: Backend, fillM: number, fillV: number, g: (i: number) => number) {
  const p = be.alloc(n), gr = be.alloc(n), m = be.alloc(n), v = be.alloc(n);
  for (let i = 0; i < n; i++) { p.data[i] = 0.5; gr.data[i] = g(i); m.data[i] = fillM; v.data[i] = fillV; }
  return { p, g: gr, m, v };
}

const subjects: [string, Backend][] = [
  ...BACKENDS.map((b) => [b.name, b] as [string, Backend]),
  ...ISAS.map((isa) => [`native ${isa}`, native(isa)] as [string, Backend]),
];

describe.each(subjects)('optimizer state on %s', (_name, be) => {
  it('adam stores a first moment that decays below 2^-126 as 0, and leaves the parameter as it was', () => {
    const s = bufs(be, SUBNORMAL_AFTER_DECAY, 1e-4, () => 0);
    be.adamStep(s.p, s.g, s.m, s.v, n, 1e-3, 1, 0.9, 0.999, 1e-7, 0.5, 0.5, 0, false, 0);
    for (let i = 0; i < n; i++) {
      expect(Object.is(s.m.data[i], 0), `m[${i}] = ${s.m.data[i]}`).toBe(true);
      expect(s.p.data[i]).toBe(0.5);
    }
  });

  it('adam stores a second moment that decays below 2^-126 as 0', () => {
    const s = bufs(be, 0, 1.17e-38, () => 0);
    be.adamStep(s.p, s.g, s.m, s.v, n, 1e-3, 1, 0.9, 0.999, 1e-7, 0.5, 0.5, 0, false, 0);
    for (let i = 0; i < n; i++) expect(s.v.data[i], `v[${i}]`).toBe(0);
  });

  it('adam keeps moments at and above 2^-126, and a tiny gradient\'s normal square', () => {
    // m = 0.9·(2^-126/0.9 rounded up) stays ≥ 2^-126; g = 1e-18: (1−β2)·g² ≈ 1e-39 is subnormal,
    // but v's old value 1e-30 keeps it normal.
    const start = Math.fround(F32_MIN_NORMAL / 0.9) * (1 + 2 ** -20);
    const s = bufs(be, start, 1e-30, () => 1e-18);
    be.adamStep(s.p, s.g, s.m, s.v, n, 1e-3, 1, 0.9, 0.999, 1e-7, 0.5, 0.5, 0, false, 0);
    for (let i = 0; i < n; i++) {
      expect(Math.abs(s.m.data[i]), `m[${i}]`).toBeGreaterThanOrEqual(F32_MIN_NORMAL);
      expect(s.v.data[i], `v[${i}]`).toBeGreaterThan(9e-31);
    }
  });

  it('adam still propagates a NaN gradient into its state and the parameter', () => {
    const s = bufs(be, SUBNORMAL_AFTER_DECAY, 1e-4, (i) => (i % 5 === 0 ? Number.NaN : 0));
    be.adamStep(s.p, s.g, s.m, s.v, n, 1e-3, 1, 0.9, 0.999, 1e-7, 0.5, 0.5, 0, false, 0);
    for (let i = 0; i < n; i++) {
      const poisoned = i % 5 === 0;
      expect(Number.isNaN(s.m.data[i]), `m[${i}]`).toBe(poisoned);
      expect(Number.isNaN(s.p.data[i]), `p[${i}]`).toBe(poisoned);
    }
  });

  it('momentum stores a velocity that decays below 2^-126 as 0', () => {
    for (const nesterov of [false, true]) {
      const s = bufs(be, 0, SUBNORMAL_AFTER_DECAY, () => 0);
      be.momentumStep(s.p, s.g, s.v, n, 0.1, 1, 0.9, nesterov, 0, 0);
      for (let i = 0; i < n; i++) {
        expect(s.v.data[i], `nesterov ${nesterov} v[${i}]`).toBe(0);
        expect(s.p.data[i]).toBe(0.5);
      }
    }
  });
});

// Shared by the native tests: seeded inputs, the js reference, and comparison with stated tolerances.
import { expect } from 'vitest';
import type { Backend, Buf } from '../src/backends/backend.js';
import { JsBackend } from '../src/backends/js.js';
import { loadNativeAddon, loadNativeBackend, type NativeBackend, type NativeOptions } from '../src/backends/native.js';
import { rng } from './rng.js';

export { rng };

export const ref = new JsBackend();

/** A buffer of `n` floats uniform in [lo, hi) on backend `b`. */
export function randBuf(b: Backend, n: number, r: () => number, lo = -1, hi = 1): Buf {
  const buf = b.alloc(n);
  for (let i = 0; i < n; i++) buf.data[i] = lo + (hi - lo) * r();
  return buf;
}

/** The same contents on another backend. */
export function copyTo(b: Backend, src: Buf): Buf {
  const buf = b.alloc(src.length);
  buf.data.set(src.data);
  return buf;
}

export function fill(buf: Buf, v: number): Buf {
  buf.data.fill(v);
  return buf;
}

/**
 * Every element within max(abs, rel·|ref|)·growth, growth = sqrt(terms summed) for reductions.
 * The failure names the first bad index and the case.
 */
export function expectClose(got: Float32Array, want: Float32Array, n: number, what: string,
  opts: { abs?: number; rel?: number; growth?: number } = {}): void {
  const abs = opts.abs ?? 1e-5, rel = opts.rel ?? 1e-5, growth = opts.growth ?? 1;
  for (let i = 0; i < n; i++) {
    const tol = Math.max(abs, rel * Math.abs(want[i])) * growth;
    const ok = Math.abs(got[i] - want[i]) <= tol || (Number.isNaN(got[i]) && Number.isNaN(want[i]));
    if (!ok) {
      expect.fail(`${what}: element ${i} is ${got[i]}, reference ${want[i]} (tolerance ${tol.toExponential(2)})`);
    }
  }
}

/** The ISAs this machine runs (every one is tested), newest first. */
export const ISAS: string[] = loadNativeAddon().availableIsas.split(',');

export function native(isa: string, opts: NativeOptions = {}): NativeBackend {
  return loadNativeBackend({ isa, threads: 1, ...opts });
}

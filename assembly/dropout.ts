// Inverted dropout (src/backends/backend.ts dropoutForward / dropoutBackward): the mask is a keyed
// integer hash of the element index (murmur3's fmix32, chained), in u32 arithmetic that wraps,
// so it is the same bits as the native and js backends' for any key.
import { derivativeScalar } from './simd';

// @ts-ignore: decorator
@inline function fmix(h: u32): u32 {
  h ^= h >>> 16;
  h *= 0x85ebca6b;
  h ^= h >>> 13;
  h *= 0xc2b2ae35;
  h ^= h >>> 16;
  return h;
}

// @ts-ignore: decorator
@inline function keep(i: u32, k1: u32, k2: u32, threshold: u32): bool {
  return (fmix(fmix(i ^ k1) + k2) >>> 8) >= threshold;
}

// @ts-ignore: decorator
@inline function key1(seed: u32, step: u32, layer: u32): u32 {
  return fmix(fmix(fmix(seed + 0x9e3779b9) ^ step) ^ (layer + 0x7f4a7c15));
}

// y (n) = keep ? x·s : 0, s = 1/(1 − rate)
export function dropoutForward(y: usize, x: usize, n: i32, rate: f32, seed: u32, step: u32, layer: u32): void {
  const k1 = key1(seed, step, layer), k2 = fmix(k1 + 0x9e3779b9);
  const threshold = <u32>(rate * <f32>16777216.0); // exact: a power-of-two scale of a float below 1
  const s: f32 = <f32>1.0 / (<f32>1.0 - rate);
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, keep(<u32>i, k1, k2, threshold) ? load<f32>(x + o) * s : <f32>0.0);
  }
}

// dx (n) = keep ? (dy·s)·g'(x) : 0
export function dropoutBackward(dx: usize, dy: usize, x: usize, n: i32, rate: f32, seed: u32, step: u32, layer: u32,
  prevAct: i32, alpha: f32): void {
  const k1 = key1(seed, step, layer), k2 = fmix(k1 + 0x9e3779b9);
  const threshold = <u32>(rate * <f32>16777216.0);
  const s: f32 = <f32>1.0 / (<f32>1.0 - rate);
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(dx + o, keep(<u32>i, k1, k2, threshold)
      ? (load<f32>(dy + o) * s) * derivativeScalar(load<f32>(x + o), prevAct, alpha) : <f32>0.0);
  }
}

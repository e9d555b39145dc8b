// Inverted dropout (src/backends/backend.ts dropoutForward / dropoutBackward): the mask is a keyed
// integer hash of the element index (murmur3's fmix32, chained), in u32 arithmetic that wraps,
// so it is the same bits as the native and js backends' for any key. Four elements at a time
// (i32x4 lanes hold four indices), the tail through the same vector code on one lane.
import { vderivative } from './simd';

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
@inline function vfmix(h: v128): v128 {
  h = v128.xor(h, i32x4.shr_u(h, 16));
  h = i32x4.mul(h, i32x4.splat(0x85ebca6b));
  h = v128.xor(h, i32x4.shr_u(h, 13));
  h = i32x4.mul(h, i32x4.splat(0xc2b2ae35));
  return v128.xor(h, i32x4.shr_u(h, 16));
}

/** All ones in the lanes of indices i..i+3 that are kept. */
// @ts-ignore: decorator
@inline function keepMask(i: i32, k1: v128, k2: v128, threshold: v128): v128 {
  const idx = i32x4.add(i32x4.splat(i), i32x4(0, 1, 2, 3));
  const h = vfmix(i32x4.add(vfmix(v128.xor(idx, k1)), k2));
  return i32x4.ge_u(i32x4.shr_u(h, 8), threshold);
}

// @ts-ignore: decorator
@inline function key1(seed: u32, step: u32, layer: u32): u32 {
  return fmix(fmix(fmix(seed + 0x9e3779b9) ^ step) ^ (layer + 0x7f4a7c15));
}

// y (n) = keep ? x·s : 0, s = 1/(1 − rate)
export function dropoutForward(y: usize, x: usize, n: i32, rate: f32, seed: u32, step: u32, layer: u32): void {
  const k1 = key1(seed, step, layer), k2 = fmix(k1 + 0x9e3779b9);
  const vk1 = i32x4.splat(k1), vk2 = i32x4.splat(k2);
  const threshold = i32x4.splat(<u32>(rate * <f32>16777216.0)); // exact: a power-of-two scale of a float below 1
  const s = f32x4.splat(<f32>1.0 / (<f32>1.0 - rate));
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, v128.and(keepMask(i, vk1, vk2, threshold), f32x4.mul(v128.load(x + o), s)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = v128.and(keepMask(i, vk1, vk2, threshold), f32x4.mul(f32x4.splat(load<f32>(x + o)), s));
    store<f32>(y + o, f32x4.extract_lane(v, 0));
  }
}

// dx (n) = keep ? (dy·s)·g'(x) : 0
export function dropoutBackward(dx: usize, dy: usize, x: usize, n: i32, rate: f32, seed: u32, step: u32, layer: u32,
  prevAct: i32, alpha: f32): void {
  const k1 = key1(seed, step, layer), k2 = fmix(k1 + 0x9e3779b9);
  const vk1 = i32x4.splat(k1), vk2 = i32x4.splat(k2);
  const threshold = i32x4.splat(<u32>(rate * <f32>16777216.0));
  const s = f32x4.splat(<f32>1.0 / (<f32>1.0 - rate)), slope = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const d = f32x4.mul(f32x4.mul(v128.load(dy + o), s), vderivative(v128.load(x + o), prevAct, slope));
    v128.store(dx + o, v128.and(keepMask(i, vk1, vk2, threshold), d));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const d = f32x4.mul(f32x4.mul(f32x4.splat(load<f32>(dy + o)), s), vderivative(f32x4.splat(load<f32>(x + o)), prevAct, slope));
    store<f32>(dx + o, f32x4.extract_lane(v128.and(keepMask(i, vk1, vk2, threshold), d), 0));
  }
}

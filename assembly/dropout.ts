// Inverted dropout (src/backends/backend.ts dropoutForward / dropoutBackward): the mask is a keyed
// integer hash of the element index (murmur3's fmix32, chained), in u32 arithmetic that wraps,
// so it is the same bits as the native and js backends' for any key. Four elements at a time
// (i32x4 lanes hold four indices), the tail through the same vector code on one lane. An element
// depends on its index only: the threads build splits a large one into blocks (runDropoutBlocks).
import { vderivative } from './simd';
import { claim, control, joinTask, publishTask, TASK_DROPOUT, TASK_PARAMS, threadsFor } from './threads';

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
  if (ASC_FEATURE_THREADS && threadsFor(n) > 1) {
    publishDropout(false, y, x, 0, n, rate, seed, step, layer, 0, 0);
    return;
  }
  dropoutForwardRange(y, x, 0, n, rate, seed, step, layer);
}

function dropoutForwardRange(y: usize, x: usize, from: i32, to: i32, rate: f32, seed: u32, step: u32, layer: u32): void {
  const k1 = key1(seed, step, layer), k2 = fmix(k1 + 0x9e3779b9);
  const vk1 = i32x4.splat(k1), vk2 = i32x4.splat(k2);
  const threshold = i32x4.splat(<u32>(rate * <f32>16777216.0)); // exact: a power-of-two scale of a float below 1
  const s = f32x4.splat(<f32>1.0 / (<f32>1.0 - rate));
  let i = from;
  for (; i + 4 <= to; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, v128.and(keepMask(i, vk1, vk2, threshold), f32x4.mul(v128.load(x + o), s)));
  }
  for (; i < to; i++) {
    const o = <usize>i << 2;
    const v = v128.and(keepMask(i, vk1, vk2, threshold), f32x4.mul(f32x4.splat(load<f32>(x + o)), s));
    store<f32>(y + o, f32x4.extract_lane(v, 0));
  }
}

// dx (n) = keep ? (dy·s)·g'(x) : 0
export function dropoutBackward(dx: usize, dy: usize, x: usize, n: i32, rate: f32, seed: u32, step: u32, layer: u32,
  prevAct: i32, alpha: f32): void {
  if (ASC_FEATURE_THREADS && threadsFor(n) > 1) {
    publishDropout(true, dx, dy, x, n, rate, seed, step, layer, prevAct, alpha);
    return;
  }
  dropoutBackwardRange(dx, dy, x, 0, n, rate, seed, step, layer, prevAct, alpha);
}

function dropoutBackwardRange(dx: usize, dy: usize, x: usize, from: i32, to: i32, rate: f32, seed: u32, step: u32, layer: u32,
  prevAct: i32, alpha: f32): void {
  const k1 = key1(seed, step, layer), k2 = fmix(k1 + 0x9e3779b9);
  const vk1 = i32x4.splat(k1), vk2 = i32x4.splat(k2);
  const threshold = i32x4.splat(<u32>(rate * <f32>16777216.0));
  const s = f32x4.splat(<f32>1.0 / (<f32>1.0 - rate)), slope = f32x4.splat(alpha);
  let i = from;
  for (; i + 4 <= to; i += 4) {
    const o = <usize>i << 2;
    const d = f32x4.mul(f32x4.mul(v128.load(dy + o), s), vderivative(v128.load(x + o), prevAct, slope));
    v128.store(dx + o, v128.and(keepMask(i, vk1, vk2, threshold), d));
  }
  for (; i < to; i++) {
    const o = <usize>i << 2;
    const d = f32x4.mul(f32x4.mul(f32x4.splat(load<f32>(dy + o)), s), vderivative(f32x4.splat(load<f32>(x + o)), prevAct, slope));
    store<f32>(dx + o, f32x4.extract_lane(v128.and(keepMask(i, vk1, vk2, threshold), d), 0));
  }
}

// Threads build: blocks of DROPOUT_BLOCK elements (a multiple of 4).
const DROPOUT_BLOCK: i32 = 8192;

// The task parameters (threads.ts TASK_PARAMS), read by every thread.
const D_BACKWARD: usize = 0;
const D_OUT: usize = 4; // y or dx
const D_IN: usize = 8; // x or dy
const D_X: usize = 12; // backward: the layer input x
const D_N: usize = 16;
const D_RATE: usize = 20;
const D_SEED: usize = 24;
const D_STEP: usize = 28;
const D_LAYER: usize = 32;
const D_PREV_ACT: usize = 36;
const D_ALPHA: usize = 40;

function publishDropout(backward: bool, out: usize, inp: usize, x: usize, n: i32, rate: f32, seed: u32, step: u32,
  layer: u32, prevAct: i32, alpha: f32): void {
  const t = control + TASK_PARAMS;
  store<i32>(t + D_BACKWARD, backward ? 1 : 0);
  store<u32>(t + D_OUT, <u32>out);
  store<u32>(t + D_IN, <u32>inp);
  store<u32>(t + D_X, <u32>x);
  store<i32>(t + D_N, n);
  store<f32>(t + D_RATE, rate);
  store<u32>(t + D_SEED, seed);
  store<u32>(t + D_STEP, step);
  store<u32>(t + D_LAYER, layer);
  store<i32>(t + D_PREV_ACT, prevAct);
  store<f32>(t + D_ALPHA, alpha);
  publishTask(TASK_DROPOUT);
  runDropoutBlocks();
  joinTask();
}

/** Claims and computes blocks of the published dropout until none is left (every thread). */
export function runDropoutBlocks(): void {
  const t = control + TASK_PARAMS;
  const backward = load<i32>(t + D_BACKWARD) != 0;
  const out = <usize>load<u32>(t + D_OUT), inp = <usize>load<u32>(t + D_IN), x = <usize>load<u32>(t + D_X);
  const n = load<i32>(t + D_N), rate = load<f32>(t + D_RATE);
  const seed = load<u32>(t + D_SEED), step = load<u32>(t + D_STEP), layer = load<u32>(t + D_LAYER);
  const prevAct = load<i32>(t + D_PREV_ACT), alpha = load<f32>(t + D_ALPHA);
  const blocks = (n + DROPOUT_BLOCK - 1) / DROPOUT_BLOCK;
  for (let b = claim(); b < blocks; b = claim()) {
    const from = b * DROPOUT_BLOCK, to = min(n, from + DROPOUT_BLOCK);
    if (backward) dropoutBackwardRange(out, inp, x, from, to, rate, seed, step, layer, prevAct, alpha);
    else dropoutForwardRange(out, inp, from, to, rate, seed, step, layer);
  }
}

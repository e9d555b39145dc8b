// One whole training step in one call (Backend.compileStep, src/backends/step.ts is its
// specification): the same internal functions the single-kernel exports run, in the same order,
// with the same f64 → f32 conversions the JavaScript boundary applies to their arguments, so the
// bits are those of the kernel-by-kernel sequence. src/backends/wasm.ts writes the descriptor once
// (and checks it), and the hyper-parameter block before each call.
import { denseBackward, denseForward } from './dense';
import { lossDelta, sumSquares } from './loss';
import { adamStep, momentumStep, sgdStep } from './optim';
import { ACT_LINEAR } from './simd';

// Descriptor header: u32 / i32 words at these byte offsets (keep in step with src/backends/wasm.ts).
const D_M: usize = 0;
const D_LAYERS: usize = 4;
const D_LOSS: usize = 8;
const D_OPT: usize = 12;
const D_N: usize = 16;
const D_DECAY: usize = 20;
const D_X: usize = 24;
const D_Y: usize = 28;
const D_PARAMS: usize = 32;
const D_GRADS: usize = 36;
const D_BACKUP: usize = 40;
const D_BACKUP_BYTES: usize = 44;
const D_STATE1: usize = 48;
const D_STATE2: usize = 52;
const D_HYPER: usize = 56;
const D_HEADER: usize = 64;
// Per layer, LAYER_BYTES from D_HEADER on: sizes, activation, slope (f32) and byte addresses.
const R_INP: usize = 0;
const R_OUT: usize = 4;
const R_ACT: usize = 8;
const R_ALPHA: usize = 12;
const R_W: usize = 16;
const R_B: usize = 20;
const R_DW: usize = 24;
const R_DB: usize = 28;
const R_A: usize = 32;
const R_DELTA: usize = 36;
const LAYER_BYTES: usize = 48;
// Hyper-parameter block: f64 at these byte offsets.
const H_LR: usize = 0;
const H_CLIP: usize = 8;
const H_WD: usize = 16;
const H_MU: usize = 24;
const H_NESTEROV: usize = 32;
const H_BETA1: usize = 40;
const H_BETA2: usize = 48;
const H_EPS: usize = 56;
const H_BC1: usize = 64;
const H_BC2: usize = 72;
const H_LOSS: usize = 80; // written back: a returned f64 is a new heap number in JavaScript each step

const OPT_SGD: i32 = 0;
const OPT_MOMENTUM: i32 = 1;
const OPT_ADAMW: i32 = 3;

// @ts-ignore: decorator
@inline function addr(p: usize, off: usize): usize {
  return <usize>load<u32>(p + off);
}

// The smallest magnitude that rounds to infinity in float32 (2^128 - 2^103), and the largest that
// rounds to 0 (2^-150): the kernel contract's bounds (src/backends/contract.ts, native/args.h).
const F32_OVERFLOW: f64 = 3.4028235677973366e38;
const F32_HALF_MIN: f64 = 7.006492321624085e-46;

// The contract for a run's hyper-parameters: every number a finite float32, nesterov 0 or 1, bc1
// and bc2 nonzero in float32 for Adam. Checked here, where it costs the JavaScript loop nothing.
function hyperOk(h: usize, opt: i32): bool {
  for (let i: usize = 0; i < 10; i++) {
    const x = load<f64>(h + (i << 3));
    if (i == 4 ? !(x == 0 || x == 1) : !(Math.abs(x) < F32_OVERFLOW)) return false;
  }
  if (opt == OPT_SGD || opt == OPT_MOMENTUM) return true;
  return Math.abs(load<f64>(h + H_BC1)) > F32_HALF_MIN && Math.abs(load<f64>(h + H_BC2)) > F32_HALF_MIN;
}

/**
 * Forward, loss, backward, clip, backup, update; the summed loss goes to the hyper-parameter block
 * (not finite: stops after the loss). Returns 1, having done nothing, when the hyper-parameters
 * break the contract (the caller says which), else 0.
 */
export function trainStep(d: usize): i32 {
  if (!hyperOk(addr(d, D_HYPER), load<i32>(d + D_OPT))) return 1;
  const m = load<i32>(d + D_M);
  const L = load<i32>(d + D_LAYERS);
  const x = addr(d, D_X);
  const layers = d + D_HEADER;
  for (let l = 0; l < L; l++) {
    const r = layers + <usize>l * LAYER_BYTES;
    denseForward(addr(r, R_A), l == 0 ? x : addr(r - LAYER_BYTES, R_A), addr(r, R_W), addr(r, R_B), m,
      load<i32>(r + R_INP), load<i32>(r + R_OUT), load<i32>(r + R_ACT), load<f32>(r + R_ALPHA));
  }
  const last = layers + <usize>(L - 1) * LAYER_BYTES;
  const loss = lossDelta(addr(last, R_DELTA), addr(last, R_A), addr(d, D_Y), m, load<i32>(last + R_OUT),
    load<i32>(d + D_LOSS), load<i32>(last + R_ACT), load<f32>(last + R_ALPHA));
  const h = addr(d, D_HYPER);
  store<f64>(h + H_LOSS, loss);
  if (!isFinite<f64>(loss)) return 0;
  // the facade's scale is 1 / m in f64, rounded to f32 at the boundary
  const scale = <f32>(1.0 / <f64>m);
  for (let l = L - 1; l >= 0; l--) {
    const r = layers + <usize>l * LAYER_BYTES;
    const prev = r - LAYER_BYTES;
    denseBackward(addr(r, R_DW), addr(r, R_DB), l == 0 ? 0 : addr(prev, R_DELTA), addr(r, R_DELTA),
      l == 0 ? x : addr(prev, R_A), addr(r, R_W), m, load<i32>(r + R_INP), load<i32>(r + R_OUT), scale,
      l == 0 ? ACT_LINEAR : load<i32>(prev + R_ACT), l == 0 ? <f32>0 : load<f32>(prev + R_ALPHA));
  }
  const n = load<i32>(d + D_N);
  const p = addr(d, D_PARAMS), g = addr(d, D_GRADS);
  const clipNorm = load<f64>(h + H_CLIP);
  let gradScale: f64 = 1;
  if (clipNorm > 0) {
    const norm = Math.sqrt(sumSquares(g, n));
    if (norm > clipNorm) gradScale = clipNorm / norm;
  }
  memory.copy(addr(d, D_BACKUP), p, addr(d, D_BACKUP_BYTES));
  const opt = load<i32>(d + D_OPT);
  const decay = load<i32>(d + D_DECAY);
  const lr = <f32>load<f64>(h + H_LR), gs = <f32>gradScale, wd = <f32>load<f64>(h + H_WD);
  if (opt == OPT_SGD) {
    sgdStep(p, g, n, lr, gs, wd, decay);
  } else if (opt == OPT_MOMENTUM) {
    momentumStep(p, g, addr(d, D_STATE1), n, lr, gs, <f32>load<f64>(h + H_MU), load<f64>(h + H_NESTEROV) != 0, wd, decay);
  } else {
    adamStep(p, g, addr(d, D_STATE1), addr(d, D_STATE2), n, lr, gs, <f32>load<f64>(h + H_BETA1),
      <f32>load<f64>(h + H_BETA2), <f32>load<f64>(h + H_EPS), <f32>load<f64>(h + H_BC1), <f32>load<f64>(h + H_BC2),
      wd, opt == OPT_ADAMW, decay);
  }
  return 0;
}

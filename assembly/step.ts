// One whole training step in one call (Backend.compileStep, src/backends/step.ts is its
// specification): the same internal functions the single-kernel exports run, in the same order,
// with the same f64 → f32 conversions the JavaScript boundary applies to their arguments, so the
// bits are those of the kernel-by-kernel sequence. src/backends/wasm.ts writes the descriptor once
// (and checks it), and the hyper-parameter block before each call.
import { denseBackward, denseForward } from './dense';
import { lossDelta, sumSquares } from './loss';
import { adamStep, momentumStep, sgdStep } from './optim';
// The descriptor and hyper-parameter layouts (D_*, R_*, H_*) and the codes, generated from
// src/backends/abi.ts, the one source src/backends/wasm.ts writes the descriptor from.
import {
  ACT_LINEAR, D_BACKUP, D_BACKUP_BYTES, D_DECAY_COUNT, D_DELTA, D_WEIGHTS, D_GRADS, D_HEADER, D_HYPER, D_LAYERS, D_LOSS, D_M, D_N,
  D_OPTIMIZER, D_PARAMS, D_STATE1, D_STATE2, D_X, D_Y, F32_HALF_MIN, F32_OVERFLOW, HYPER_INPUTS, H_BC1, H_BC2, H_BETA1,
  H_BETA2, H_CLIP_NORM, H_EPS, H_LOSS, H_LR, H_MU, H_NESTEROV, H_WEIGHT_DECAY, LAYER_BYTES, OPT_ADAMW, OPT_MOMENTUM,
  OPT_SGD, R_A, R_ACT, R_ALPHA, R_B, R_DB, R_DELTA, R_DW, R_INP, R_OUT, R_W,
} from './abi';

// @ts-ignore: decorator
@inline function addr(p: usize, off: usize): usize {
  return <usize>load<u32>(p + off);
}

// The contract for a run's hyper-parameters: every number a finite float32, nesterov 0 or 1, bc1
// and bc2 nonzero in float32 for Adam. Checked here, where it costs the JavaScript loop nothing.
function hyperOk(h: usize, opt: i32): bool {
  for (let i: usize = 0; i < <usize>HYPER_INPUTS; i++) {
    const x = load<f64>(h + (i << 3));
    if (i == H_NESTEROV >> 3 ? !(x == 0 || x == 1) : !(Math.abs(x) < F32_OVERFLOW)) return false;
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
  if (!hyperOk(addr(d, D_HYPER), load<i32>(d + D_OPTIMIZER))) return 1;
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
    load<i32>(d + D_LOSS), load<i32>(last + R_ACT), load<f32>(last + R_ALPHA), load<f32>(d + D_DELTA), addr(d, D_WEIGHTS));
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
  const clipNorm = load<f64>(h + H_CLIP_NORM);
  let gradScale: f64 = 1;
  if (clipNorm > 0) {
    const norm = Math.sqrt(sumSquares(g, n));
    if (norm > clipNorm) gradScale = clipNorm / norm;
  }
  memory.copy(addr(d, D_BACKUP), p, addr(d, D_BACKUP_BYTES));
  const opt = load<i32>(d + D_OPTIMIZER);
  const decay = load<i32>(d + D_DECAY_COUNT);
  const lr = <f32>load<f64>(h + H_LR), gs = <f32>gradScale, wd = <f32>load<f64>(h + H_WEIGHT_DECAY);
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

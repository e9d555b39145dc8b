// The module's interpreter of programs (src/backends/program.ts; op table and record layout in
// src/backends/abi.ts, generated into ./abi): a whole training step or forward pass in one call.
// Each op runs the same internal function as its single-kernel export, with the same f64 → f32
// conversions the JavaScript boundary applies to that export's arguments, so the bits are those of
// src/backends/interpreter.ts calling the kernels one by one. src/backends/wasm/backend.ts checks
// the program (contract.ts checkProgram), writes its records once and has resolveProgram turn
// them into words, and writes the hyper-parameter block before each run. A new op: one case in
// runProgram (resolveProgram follows the op table).
import { denseBackward, denseForward } from './dense';
import { lossDelta, sumSquares } from './loss';
import { adamStep, momentumStep, sgdStep } from './optim';
import {
  ADAM_UPDATE_DECAY_COUNT, ADAM_UPDATE_DECOUPLED, ADAM_UPDATE_G, ADAM_UPDATE_M, ADAM_UPDATE_N, ADAM_UPDATE_P, ADAM_UPDATE_V,
  CLIP_NORM_G, CLIP_NORM_N, COPY_DST, COPY_N, COPY_SRC, DENSE_BACKWARD_ALPHA, DENSE_BACKWARD_DB, DENSE_BACKWARD_DW,
  DENSE_BACKWARD_DX, DENSE_BACKWARD_DZ, DENSE_BACKWARD_INP, DENSE_BACKWARD_M, DENSE_BACKWARD_OUT, DENSE_BACKWARD_PREV_ACT,
  DENSE_BACKWARD_SCALE, DENSE_BACKWARD_W, DENSE_BACKWARD_X, DENSE_FORWARD_ACT, DENSE_FORWARD_ALPHA, DENSE_FORWARD_B,
  DENSE_FORWARD_INP, DENSE_FORWARD_M, DENSE_FORWARD_OUT, DENSE_FORWARD_W, DENSE_FORWARD_X, DENSE_FORWARD_Y, F32_HALF_MIN,
  F32_OVERFLOW, HYPER_INPUTS, H_BC1, H_BC2, H_BETA1, H_BETA2, H_CLIP_NORM, H_EPS, H_LOSS, H_LR, H_MU, H_NESTEROV,
  H_WEIGHT_DECAY, LOSS_DELTA_A, LOSS_DELTA_ACT, LOSS_DELTA_ALPHA, LOSS_DELTA_DELTA, LOSS_DELTA_DZ, LOSS_DELTA_LOSS, LOSS_DELTA_M,
  LOSS_DELTA_N, LOSS_DELTA_WEIGHTS, LOSS_DELTA_Y, MOMENTUM_UPDATE_DECAY_COUNT, MOMENTUM_UPDATE_G, MOMENTUM_UPDATE_N, MOMENTUM_UPDATE_P,
  MOMENTUM_UPDATE_V, OP_ADAM_UPDATE, OP_CLIP_NORM, OP_COPY, OP_DENSE_BACKWARD, OP_DENSE_FORWARD, OP_LOSS_DELTA,
  OP_MOMENTUM_UPDATE, OP_SGD_UPDATE, OP_SLOTS, OP_SLOT_KINDS, OP_WORDS_BYTES, SGD_UPDATE_DECAY_COUNT, SGD_UPDATE_G,
  SGD_UPDATE_N, SGD_UPDATE_P, SLOT_BUFFER, SLOT_INT, SLOT_REAL,
} from './abi';
import {
  BATCH_NORM_BACKWARD_ALPHA, BATCH_NORM_BACKWARD_DBETA, BATCH_NORM_BACKWARD_DGAMMA, BATCH_NORM_BACKWARD_DX, BATCH_NORM_BACKWARD_DY,
  BATCH_NORM_BACKWARD_GAMMA, BATCH_NORM_BACKWARD_INV_STD, BATCH_NORM_BACKWARD_M, BATCH_NORM_BACKWARD_MEAN, BATCH_NORM_BACKWARD_N,
  BATCH_NORM_BACKWARD_PREV_ACT, BATCH_NORM_BACKWARD_SCALE, BATCH_NORM_BACKWARD_X, BATCH_NORM_FORWARD_ACT, BATCH_NORM_FORWARD_ALPHA,
  BATCH_NORM_FORWARD_BETA, BATCH_NORM_FORWARD_EPS, BATCH_NORM_FORWARD_GAMMA, BATCH_NORM_FORWARD_INV_STD, BATCH_NORM_FORWARD_M,
  BATCH_NORM_FORWARD_MEAN, BATCH_NORM_FORWARD_MOMENTUM, BATCH_NORM_FORWARD_N, BATCH_NORM_FORWARD_RUN_MEAN, BATCH_NORM_FORWARD_RUN_VAR,
  BATCH_NORM_FORWARD_UPDATE, BATCH_NORM_FORWARD_X, BATCH_NORM_FORWARD_Y, BATCH_NORM_INFERENCE_ACT, BATCH_NORM_INFERENCE_ALPHA,
  BATCH_NORM_INFERENCE_BETA, BATCH_NORM_INFERENCE_EPS, BATCH_NORM_INFERENCE_GAMMA, BATCH_NORM_INFERENCE_M, BATCH_NORM_INFERENCE_N,
  BATCH_NORM_INFERENCE_RUN_MEAN, BATCH_NORM_INFERENCE_RUN_VAR, BATCH_NORM_INFERENCE_X, BATCH_NORM_INFERENCE_Y,
  DROPOUT_BACKWARD_ALPHA, DROPOUT_BACKWARD_DX, DROPOUT_BACKWARD_DY, DROPOUT_BACKWARD_LAYER, DROPOUT_BACKWARD_N,
  DROPOUT_BACKWARD_PREV_ACT, DROPOUT_BACKWARD_RATE, DROPOUT_BACKWARD_SEED, DROPOUT_BACKWARD_X, DROPOUT_FORWARD_LAYER,
  DROPOUT_FORWARD_N, DROPOUT_FORWARD_RATE, DROPOUT_FORWARD_SEED, DROPOUT_FORWARD_X, DROPOUT_FORWARD_Y, H_STEP,
  LAYER_NORM_BACKWARD_ALPHA, LAYER_NORM_BACKWARD_DBETA, LAYER_NORM_BACKWARD_DGAMMA, LAYER_NORM_BACKWARD_DX, LAYER_NORM_BACKWARD_DY,
  LAYER_NORM_BACKWARD_GAMMA, LAYER_NORM_BACKWARD_INV_STD, LAYER_NORM_BACKWARD_M, LAYER_NORM_BACKWARD_MEAN, LAYER_NORM_BACKWARD_N,
  LAYER_NORM_BACKWARD_PREV_ACT, LAYER_NORM_BACKWARD_SCALE, LAYER_NORM_BACKWARD_X, LAYER_NORM_FORWARD_ACT, LAYER_NORM_FORWARD_ALPHA,
  LAYER_NORM_FORWARD_BETA, LAYER_NORM_FORWARD_EPS, LAYER_NORM_FORWARD_GAMMA, LAYER_NORM_FORWARD_INV_STD, LAYER_NORM_FORWARD_M,
  LAYER_NORM_FORWARD_MEAN, LAYER_NORM_FORWARD_N, LAYER_NORM_FORWARD_X, LAYER_NORM_FORWARD_Y, OP_BATCH_NORM_BACKWARD,
  OP_BATCH_NORM_FORWARD, OP_BATCH_NORM_INFERENCE, OP_DROPOUT_BACKWARD, OP_DROPOUT_FORWARD, OP_LAYER_NORM_BACKWARD,
  OP_LAYER_NORM_FORWARD, SLOT_U32,
} from './abi';
import { dropoutBackward, dropoutForward } from './dropout';
import { GATHER_ROWS_COLS, GATHER_ROWS_DST, GATHER_ROWS_IDX, GATHER_ROWS_M, GATHER_ROWS_ROWS, GATHER_ROWS_SRC, OP_GATHER_ROWS } from './abi';
import { gatherRows } from './gather';
import { batchNormBackward, batchNormForward, batchNormInference, layerNormBackward, layerNormForward } from './normalization';

/**
 * Resolves `count` op records at `ops` (OP_SLOTS f64 each: a buffer as id, float index in linear
 * memory, length; a number as itself) in place into words, once, when the program is compiled: slot
 * k becomes word k, an i32, an f32 (the kernel's float arguments, rounded as the JavaScript boundary
 * rounds them), or a buffer's byte address (0 for null). A run then reads words, not conversions.
 * Writing word k (bytes 4k..4k+4) never overwrites a slot not yet read (slot k+1 is at 8k+8).
 */
export function resolveProgram(ops: usize, count: i32): void {
  for (let i = 0; i < count; i++) {
    const at = <usize>i * <usize>OP_SLOTS;
    const kinds = OP_SLOT_KINDS + <usize>(<i32>load<f64>(ops + (at << 3))) * <usize>OP_SLOTS;
    for (let k: usize = 0; k < <usize>OP_SLOTS; k++) {
      const kind = load<u8>(kinds + k), slot = ops + ((at + k) << 3), word = ops + ((at + k) << 2);
      if (kind == SLOT_INT) store<i32>(word, <i32>load<f64>(slot));
      else if (kind == SLOT_REAL) store<f32>(word, <f32>load<f64>(slot));
      else if (kind == SLOT_BUFFER) store<u32>(word, <u32>load<f64>(slot + 8) << 2);
      else if (kind == SLOT_U32) store<u32>(word, <u32><i64>load<f64>(slot)); // above 2^31 too
      else store<u32>(word, 0);
    }
  }
}

// @ts-ignore: decorator
@inline function buf(r: usize, at: usize): usize {
  return <usize>load<u32>(r + at);
}

// @ts-ignore: decorator
@inline function int(r: usize, at: usize): i32 {
  return load<i32>(r + at);
}

// @ts-ignore: decorator
@inline function u32w(r: usize, at: usize): u32 {
  return load<u32>(r + at);
}

// @ts-ignore: decorator
@inline function real(r: usize, at: usize): f32 {
  return load<f32>(r + at);
}

/** What runProgram checks of the hyper-parameters (program.ts HYPER_*): nothing, every slot, and bc1, bc2. */
const HYPER_ALL: i32 = 1, HYPER_ADAM: i32 = 2;

// The contract for a run's hyper-parameters: every number a finite float32, nesterov 0 or 1, bc1
// and bc2 nonzero in float32 for Adam. Checked here, where it costs the JavaScript loop nothing.
function hyperOk(h: usize, use: i32): bool {
  for (let i: usize = 0; i < <usize>HYPER_INPUTS; i++) {
    const x = load<f64>(h + (i << 3));
    if (i == H_NESTEROV >> 3 ? !(x == 0 || x == 1) : !(Math.abs(x) < F32_OVERFLOW)) return false;
  }
  if (use != HYPER_ADAM) return true;
  return Math.abs(load<f64>(h + H_BC1)) > F32_HALF_MIN && Math.abs(load<f64>(h + H_BC2)) > F32_HALF_MIN;
}

/**
 * Runs the `count` resolved op records at `ops`, reading the hyper-parameter block at `h` (checked first
 * when `use` says the program reads it). A lossDelta leaves the summed loss in the block; one that
 * is not finite ends the run. Returns 1, having done nothing, when the hyper-parameters break the
 * contract (the caller says which); 2, the run ending there, when a gatherRows op's row numbers
 * are not all rows of its source (it copied nothing; the caller finds and names the bad one);
 * else 0.
 */
export function runProgram(ops: usize, count: i32, h: usize, use: i32): i32 {
  if (use >= HYPER_ALL && !hyperOk(h, use)) return 1;
  let gradScale: f64 = 1;
  for (let i = 0; i < count; i++) {
    const r = ops + <usize>i * OP_WORDS_BYTES;
    switch (int(r, 0)) {
      case OP_DENSE_FORWARD:
        denseForward(buf(r, DENSE_FORWARD_Y), buf(r, DENSE_FORWARD_X), buf(r, DENSE_FORWARD_W), buf(r, DENSE_FORWARD_B),
          int(r, DENSE_FORWARD_M), int(r, DENSE_FORWARD_INP), int(r, DENSE_FORWARD_OUT), int(r, DENSE_FORWARD_ACT),
          real(r, DENSE_FORWARD_ALPHA));
        break;
      case OP_LOSS_DELTA: {
        const loss = lossDelta(buf(r, LOSS_DELTA_DZ), buf(r, LOSS_DELTA_A), buf(r, LOSS_DELTA_Y), int(r, LOSS_DELTA_M),
          int(r, LOSS_DELTA_N), int(r, LOSS_DELTA_LOSS), int(r, LOSS_DELTA_ACT), real(r, LOSS_DELTA_ALPHA),
          real(r, LOSS_DELTA_DELTA), buf(r, LOSS_DELTA_WEIGHTS));
        store<f64>(h + H_LOSS, loss);
        if (!isFinite<f64>(loss)) return 0;
        break;
      }
      case OP_DENSE_BACKWARD:
        denseBackward(buf(r, DENSE_BACKWARD_DW), buf(r, DENSE_BACKWARD_DB), buf(r, DENSE_BACKWARD_DX),
          buf(r, DENSE_BACKWARD_DZ), buf(r, DENSE_BACKWARD_X), buf(r, DENSE_BACKWARD_W), int(r, DENSE_BACKWARD_M),
          int(r, DENSE_BACKWARD_INP), int(r, DENSE_BACKWARD_OUT), real(r, DENSE_BACKWARD_SCALE),
          int(r, DENSE_BACKWARD_PREV_ACT), real(r, DENSE_BACKWARD_ALPHA));
        break;
      case OP_CLIP_NORM: {
        gradScale = 1;
        const clip = load<f64>(h + H_CLIP_NORM);
        if (clip > 0) {
          const norm = Math.sqrt(sumSquares(buf(r, CLIP_NORM_G), int(r, CLIP_NORM_N)));
          if (norm > clip) gradScale = clip / norm;
        }
        break;
      }
      case OP_COPY:
        memory.copy(buf(r, COPY_DST), buf(r, COPY_SRC), <usize>int(r, COPY_N) << 2);
        break;
      case OP_SGD_UPDATE:
        sgdStep(buf(r, SGD_UPDATE_P), buf(r, SGD_UPDATE_G), int(r, SGD_UPDATE_N), <f32>load<f64>(h + H_LR), <f32>gradScale,
          <f32>load<f64>(h + H_WEIGHT_DECAY), int(r, SGD_UPDATE_DECAY_COUNT));
        break;
      case OP_MOMENTUM_UPDATE:
        momentumStep(buf(r, MOMENTUM_UPDATE_P), buf(r, MOMENTUM_UPDATE_G), buf(r, MOMENTUM_UPDATE_V), int(r, MOMENTUM_UPDATE_N),
          <f32>load<f64>(h + H_LR), <f32>gradScale, <f32>load<f64>(h + H_MU), load<f64>(h + H_NESTEROV) != 0,
          <f32>load<f64>(h + H_WEIGHT_DECAY), int(r, MOMENTUM_UPDATE_DECAY_COUNT));
        break;
      case OP_ADAM_UPDATE:
        adamStep(buf(r, ADAM_UPDATE_P), buf(r, ADAM_UPDATE_G), buf(r, ADAM_UPDATE_M), buf(r, ADAM_UPDATE_V),
          int(r, ADAM_UPDATE_N), <f32>load<f64>(h + H_LR), <f32>gradScale, <f32>load<f64>(h + H_BETA1),
          <f32>load<f64>(h + H_BETA2), <f32>load<f64>(h + H_EPS), <f32>load<f64>(h + H_BC1), <f32>load<f64>(h + H_BC2),
          <f32>load<f64>(h + H_WEIGHT_DECAY), int(r, ADAM_UPDATE_DECOUPLED) != 0, int(r, ADAM_UPDATE_DECAY_COUNT));
        break;
      case OP_DROPOUT_FORWARD:
        dropoutForward(buf(r, DROPOUT_FORWARD_Y), buf(r, DROPOUT_FORWARD_X), int(r, DROPOUT_FORWARD_N), real(r, DROPOUT_FORWARD_RATE),
          u32w(r, DROPOUT_FORWARD_SEED), <u32><i64>load<f64>(h + H_STEP), u32w(r, DROPOUT_FORWARD_LAYER));
        break;
      case OP_DROPOUT_BACKWARD:
        dropoutBackward(buf(r, DROPOUT_BACKWARD_DX), buf(r, DROPOUT_BACKWARD_DY), buf(r, DROPOUT_BACKWARD_X), int(r, DROPOUT_BACKWARD_N),
          real(r, DROPOUT_BACKWARD_RATE), u32w(r, DROPOUT_BACKWARD_SEED), <u32><i64>load<f64>(h + H_STEP),
          u32w(r, DROPOUT_BACKWARD_LAYER), int(r, DROPOUT_BACKWARD_PREV_ACT), real(r, DROPOUT_BACKWARD_ALPHA));
        break;
      case OP_BATCH_NORM_FORWARD:
        batchNormForward(buf(r, BATCH_NORM_FORWARD_Y), buf(r, BATCH_NORM_FORWARD_X), buf(r, BATCH_NORM_FORWARD_GAMMA),
          buf(r, BATCH_NORM_FORWARD_BETA), buf(r, BATCH_NORM_FORWARD_RUN_MEAN), buf(r, BATCH_NORM_FORWARD_RUN_VAR),
          buf(r, BATCH_NORM_FORWARD_MEAN), buf(r, BATCH_NORM_FORWARD_INV_STD), int(r, BATCH_NORM_FORWARD_M), int(r, BATCH_NORM_FORWARD_N),
          int(r, BATCH_NORM_FORWARD_UPDATE) != 0, real(r, BATCH_NORM_FORWARD_MOMENTUM), real(r, BATCH_NORM_FORWARD_EPS),
          int(r, BATCH_NORM_FORWARD_ACT), real(r, BATCH_NORM_FORWARD_ALPHA));
        break;
      case OP_BATCH_NORM_INFERENCE:
        batchNormInference(buf(r, BATCH_NORM_INFERENCE_Y), buf(r, BATCH_NORM_INFERENCE_X), buf(r, BATCH_NORM_INFERENCE_GAMMA),
          buf(r, BATCH_NORM_INFERENCE_BETA), buf(r, BATCH_NORM_INFERENCE_RUN_MEAN), buf(r, BATCH_NORM_INFERENCE_RUN_VAR),
          int(r, BATCH_NORM_INFERENCE_M), int(r, BATCH_NORM_INFERENCE_N), real(r, BATCH_NORM_INFERENCE_EPS),
          int(r, BATCH_NORM_INFERENCE_ACT), real(r, BATCH_NORM_INFERENCE_ALPHA));
        break;
      case OP_BATCH_NORM_BACKWARD:
        batchNormBackward(buf(r, BATCH_NORM_BACKWARD_DX), buf(r, BATCH_NORM_BACKWARD_DGAMMA), buf(r, BATCH_NORM_BACKWARD_DBETA),
          buf(r, BATCH_NORM_BACKWARD_DY), buf(r, BATCH_NORM_BACKWARD_X), buf(r, BATCH_NORM_BACKWARD_GAMMA),
          buf(r, BATCH_NORM_BACKWARD_MEAN), buf(r, BATCH_NORM_BACKWARD_INV_STD), int(r, BATCH_NORM_BACKWARD_M),
          int(r, BATCH_NORM_BACKWARD_N), real(r, BATCH_NORM_BACKWARD_SCALE), int(r, BATCH_NORM_BACKWARD_PREV_ACT),
          real(r, BATCH_NORM_BACKWARD_ALPHA));
        break;
      case OP_LAYER_NORM_FORWARD:
        layerNormForward(buf(r, LAYER_NORM_FORWARD_Y), buf(r, LAYER_NORM_FORWARD_X), buf(r, LAYER_NORM_FORWARD_GAMMA),
          buf(r, LAYER_NORM_FORWARD_BETA), buf(r, LAYER_NORM_FORWARD_MEAN), buf(r, LAYER_NORM_FORWARD_INV_STD),
          int(r, LAYER_NORM_FORWARD_M), int(r, LAYER_NORM_FORWARD_N), real(r, LAYER_NORM_FORWARD_EPS), int(r, LAYER_NORM_FORWARD_ACT),
          real(r, LAYER_NORM_FORWARD_ALPHA));
        break;
      case OP_LAYER_NORM_BACKWARD:
        layerNormBackward(buf(r, LAYER_NORM_BACKWARD_DX), buf(r, LAYER_NORM_BACKWARD_DGAMMA), buf(r, LAYER_NORM_BACKWARD_DBETA),
          buf(r, LAYER_NORM_BACKWARD_DY), buf(r, LAYER_NORM_BACKWARD_X), buf(r, LAYER_NORM_BACKWARD_GAMMA),
          buf(r, LAYER_NORM_BACKWARD_MEAN), buf(r, LAYER_NORM_BACKWARD_INV_STD), int(r, LAYER_NORM_BACKWARD_M),
          int(r, LAYER_NORM_BACKWARD_N), real(r, LAYER_NORM_BACKWARD_SCALE), int(r, LAYER_NORM_BACKWARD_PREV_ACT),
          real(r, LAYER_NORM_BACKWARD_ALPHA));
        break;
      case OP_GATHER_ROWS:
        if (gatherRows(buf(r, GATHER_ROWS_DST), buf(r, GATHER_ROWS_SRC), buf(r, GATHER_ROWS_IDX), int(r, GATHER_ROWS_M),
          int(r, GATHER_ROWS_ROWS), int(r, GATHER_ROWS_COLS)) >= 0) return 2;
        break;
    }
  }
  return 0;
}

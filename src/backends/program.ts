// Programs: a training step, or a forward pass, as a list of ops (the op table is OPS in abi.ts).
// Built once per (network, batch size) from a description of the network's buffers; every backend
// runs the same list: interpreter.ts kernel by kernel through the Backend, the native addon and the
// wasm module in one call each (Backend.compileProgram, after encodeProgram below).
import { ACT, OPT, OPS, OP_SLOTS, opSlots, type ArgContract, type OpName } from './abi.js';
import type { ActCode, Buf, LossCode, StepDesc } from './backend.js';

/** y = act(x·w + b) (Backend.denseForward). */
export interface DenseForwardOp {
  readonly op: 'denseForward';
  readonly y: Buf; readonly x: Buf; readonly w: Buf; readonly b: Buf;
  readonly m: number; readonly inp: number; readonly out: number; readonly act: ActCode; readonly alpha: number;
}
/** Backend.lossDelta; the summed loss goes to the run's loss, and a loss that is not finite ends the run. */
export interface LossDeltaOp {
  readonly op: 'lossDelta';
  readonly dz: Buf; readonly a: Buf; readonly y: Buf;
  readonly m: number; readonly n: number; readonly loss: LossCode; readonly act: ActCode; readonly alpha: number;
  /** huber's threshold (the other losses ignore it) and the rows' weights (null: every row 1). */
  readonly delta: number; readonly weights: Buf | null;
}
/** Backend.denseBackward. */
export interface DenseBackwardOp {
  readonly op: 'denseBackward';
  readonly dw: Buf; readonly db: Buf; readonly dx: Buf | null; readonly dz: Buf; readonly x: Buf; readonly w: Buf;
  readonly m: number; readonly inp: number; readonly out: number; readonly scale: number; readonly prevAct: ActCode;
  readonly alpha: number;
}
/** gradScale = clipNorm / ‖g‖ when hyper.clipNorm > 0 and ‖g‖ (Backend.sumSquares) exceeds it, else 1. */
export interface ClipNormOp {
  readonly op: 'clipNorm';
  readonly g: Buf; readonly n: number;
}
/** dst[0, n) = src[0, n) (the backup of the weights before an update). */
export interface CopyOp {
  readonly op: 'copy';
  readonly dst: Buf; readonly src: Buf; readonly n: number;
}
/** Backend.sgdStep with lr and weightDecay from the hyper-parameters, gradScale from clipNorm. */
export interface SgdUpdateOp {
  readonly op: 'sgdUpdate';
  readonly p: Buf; readonly g: Buf; readonly n: number; readonly decayCount: number;
}
/** Backend.momentumStep (mu, nesterov from the hyper-parameters). */
export interface MomentumUpdateOp {
  readonly op: 'momentumUpdate';
  readonly p: Buf; readonly g: Buf; readonly v: Buf; readonly n: number; readonly decayCount: number;
}
/** Backend.adamStep (beta1, beta2, eps, bc1, bc2 from the hyper-parameters); decoupled is AdamW. */
export interface AdamUpdateOp {
  readonly op: 'adamUpdate';
  readonly p: Buf; readonly g: Buf; readonly m: Buf; readonly v: Buf; readonly n: number; readonly decoupled: boolean;
  readonly decayCount: number;
}

/** Backend.dropoutForward with the step key from the hyper-parameters' step. */
export interface DropoutForwardOp {
  readonly op: 'dropoutForward';
  readonly y: Buf; readonly x: Buf; readonly n: number; readonly rate: number; readonly seed: number; readonly layer: number;
}
/** Backend.dropoutBackward with the step key from the hyper-parameters' step. */
export interface DropoutBackwardOp {
  readonly op: 'dropoutBackward';
  readonly dx: Buf; readonly dy: Buf; readonly x: Buf; readonly n: number; readonly rate: number; readonly seed: number;
  readonly layer: number; readonly prevAct: ActCode; readonly alpha: number;
}
/** Backend.batchNormForward (training: batch statistics; `update` moves the running ones). */
export interface BatchNormForwardOp {
  readonly op: 'batchNormForward';
  readonly y: Buf; readonly x: Buf; readonly gamma: Buf; readonly beta: Buf; readonly runMean: Buf; readonly runVar: Buf;
  readonly mean: Buf; readonly invStd: Buf; readonly m: number; readonly n: number; readonly update: boolean;
  readonly momentum: number; readonly eps: number; readonly act: ActCode; readonly alpha: number;
}
/** Backend.batchNormInference (the running statistics). */
export interface BatchNormInferenceOp {
  readonly op: 'batchNormInference';
  readonly y: Buf; readonly x: Buf; readonly gamma: Buf; readonly beta: Buf; readonly runMean: Buf; readonly runVar: Buf;
  readonly m: number; readonly n: number; readonly eps: number; readonly act: ActCode; readonly alpha: number;
}
/** Backend.batchNormBackward / layerNormBackward. */
export interface NormBackwardOp {
  readonly op: 'batchNormBackward' | 'layerNormBackward';
  readonly dx: Buf | null; readonly dgamma: Buf; readonly dbeta: Buf; readonly dy: Buf; readonly x: Buf; readonly gamma: Buf;
  readonly mean: Buf; readonly invStd: Buf; readonly m: number; readonly n: number; readonly scale: number;
  readonly prevAct: ActCode; readonly alpha: number;
}
/** Backend.layerNormForward. */
export interface LayerNormForwardOp {
  readonly op: 'layerNormForward';
  readonly y: Buf; readonly x: Buf; readonly gamma: Buf; readonly beta: Buf; readonly mean: Buf; readonly invStd: Buf;
  readonly m: number; readonly n: number; readonly eps: number; readonly act: ActCode; readonly alpha: number;
}

/**
 * Row idx[i] of src (rows, cols) into row i of dst (m, cols), for i < m: a batch staged inside the
 * program. The row numbers are floats (exact integers up to 2^24: GATHER_MAX_ROWS); a run checks
 * them all first and copies nothing when one is not an integer in [0, rows) (gatherRowsFault).
 */
export interface GatherRowsOp {
  readonly op: 'gatherRows';
  readonly dst: Buf; readonly src: Buf; readonly idx: Buf; readonly m: number; readonly rows: number; readonly cols: number;
}

/** The most rows a gatherRows op addresses: every row number below it is exact as a float32. */
export const GATHER_MAX_ROWS = 2 ** 24;

/**
 * What is wrong with a gatherRows op's row numbers, as its run reports it, or null when every
 * idx[i] (i < m) is an integer in [0, rows). `i` is the op's position in its program. The native
 * interpreter builds the same words (native/boundary/interpreter.cc).
 */
export function gatherRowsFault(o: GatherRowsOp, i: number): string | null {
  const idx = o.idx.data, m = o.m, rows = o.rows;
  for (let j = 0; j < m; j++) {
    const r = idx[j];
    if (!(r >= 0 && r < rows && Math.floor(r) === r)) {
      return `op ${i} (gatherRows): idx[${j}] = ${r} is not a row of src (an integer in [0, ${rows}))`;
    }
  }
  return null;
}

/** The first fault of a program's gatherRows ops (gatherRowsFault), or null. */
export function programGatherFault(program: Program): string | null {
  for (let i = 0; i < program.length; i++) {
    const o = program[i];
    if (o.op === 'gatherRows') {
      const fault = gatherRowsFault(o, i);
      if (fault) return fault;
    }
  }
  return null;
}

export type Op = DenseForwardOp | LossDeltaOp | DenseBackwardOp | ClipNormOp | CopyOp | SgdUpdateOp | MomentumUpdateOp | AdamUpdateOp
  | DropoutForwardOp | DropoutBackwardOp | BatchNormForwardOp | BatchNormInferenceOp | NormBackwardOp | LayerNormForwardOp | GatherRowsOp;
/** A program: its ops, run in order. */
export type Program = readonly Op[];

/** The part of a step description a forward pass needs. */
export type ForwardDesc = Pick<StepDesc, 'm' | 'dims' | 'acts' | 'alphas' | 'x' | 'outs' | 'params' | 'wOffsets' | 'bOffsets'>;

function layerViews(d: ForwardDesc, l: number, of: Buf): [Buf, Buf] {
  const inp = d.dims[l], out = d.dims[l + 1];
  return [of.view(d.wOffsets[l], inp * out), of.view(d.bOffsets[l], out)];
}

/** denseForward per layer: the outputs of the rows in x, the last in outs[L - 1]. */
export function forwardProgram(d: ForwardDesc): Op[] {
  const ops: Op[] = [];
  const L = d.dims.length - 1;
  for (let l = 0; l < L; l++) {
    const [w, b] = layerViews(d, l, d.params);
    ops.push({ op: 'denseForward', y: d.outs[l], x: l === 0 ? d.x : d.outs[l - 1], w, b, m: d.m, inp: d.dims[l],
      out: d.dims[l + 1], act: d.acts[l], alpha: d.alphas[l] });
  }
  return ops;
}

/** The forward pass, the loss and its delta, and denseBackward per layer (the gradients of the mean loss). */
export function gradientProgram(d: StepDesc): Op[] {
  const ops = forwardProgram(d);
  const L = d.dims.length - 1;
  ops.push({ op: 'lossDelta', dz: d.deltas[L - 1], a: d.outs[L - 1], y: d.y, m: d.m, n: d.dims[L], loss: d.loss,
    act: d.acts[L - 1], alpha: d.alphas[L - 1], delta: d.delta ?? 1, weights: d.weights ?? null });
  for (let l = L - 1; l >= 0; l--) {
    const [w] = layerViews(d, l, d.params), [dw, db] = layerViews(d, l, d.grads);
    // the first layer has no previous activation (dx is null): linear, which every backend accepts
    ops.push({ op: 'denseBackward', dw, db, dx: l === 0 ? null : d.deltas[l - 1], dz: d.deltas[l], x: l === 0 ? d.x : d.outs[l - 1],
      w, m: d.m, inp: d.dims[l], out: d.dims[l + 1], scale: 1 / d.m, prevAct: l === 0 ? ACT.linear : d.acts[l - 1],
      alpha: l === 0 ? 0 : d.alphas[l - 1] });
  }
  return ops;
}

/**
 * One training step (CompiledStep.run in backend.ts): the gradient program, clipNorm over the n
 * grads, the backup of the n params, and the optimizer's update.
 */
export function trainProgram(d: StepDesc): Op[] {
  const ops = gradientProgram(d);
  const { params: p, grads: g, n, decayCount } = d;
  ops.push({ op: 'clipNorm', g, n });
  ops.push({ op: 'copy', dst: d.backup, src: p, n });
  if (d.optimizer === OPT.sgd) ops.push({ op: 'sgdUpdate', p, g, n, decayCount });
  else if (d.optimizer === OPT.momentum) ops.push({ op: 'momentumUpdate', p, g, v: d.state1!, n, decayCount });
  else ops.push({ op: 'adamUpdate', p, g, m: d.state1!, v: d.state2!, n, decoupled: d.optimizer === OPT.adamw, decayCount });
  return ops;
}

/**
 * What a run checks of its hyper-parameters: nothing (HYPER_NONE: no op reads them), every slot
 * (HYPER_ALL), or every slot and bc1, bc2 nonzero too (HYPER_ADAM: an Adam update divides by them).
 */
export const HYPER_NONE = 0, HYPER_ALL = 1, HYPER_ADAM = 2;

export function hyperUse(program: Program): number {
  let use = HYPER_NONE;
  for (const o of program) {
    if (o.op === 'adamUpdate') return HYPER_ADAM;
    if (OPS[o.op].hyper.length > 0) use = HYPER_ALL;
  }
  return use;
}

/** Writes a buffer operand's BUF_SLOTS at `at` (null: id -1). */
export type PutBuffer = (rec: Float64Array, at: number, b: Buf | null) => void;

const SLOTS = Object.fromEntries((Object.keys(OPS) as OpName[]).map((n) => [n, opSlots(n)])) as Record<OpName, Record<string, number>>;

/** The program as op records (abi.ts OP_SLOTS doubles each), buffers placed by the backend's `put`. */
export function encodeProgram(program: Program, put: PutBuffer): Float64Array {
  const rec = new Float64Array(program.length * OP_SLOTS);
  program.forEach((o, i) => {
    const base = i * OP_SLOTS, slots = SLOTS[o.op];
    rec[base] = OPS[o.op].code;
    for (const a of OPS[o.op].operands as readonly ArgContract[]) {
      const v = (o as unknown as Record<string, unknown>)[a.name];
      const at = base + slots[a.name];
      if (a.kind === 'buffer' || a.kind === 'buffer?') put(rec, at, v as Buf | null);
      else rec[at] = typeof v === 'boolean' ? +v : (v as number);
    }
  });
  return rec;
}

// What a Network keeps per batch size (a plan: its buffers, views and programs), per layer, and
// per fit (the rows copied into backend memory for off-thread steps): the shapes network.ts,
// stack-ops.ts and fit.ts share.
import type { ActCode, Buf, CompiledProgram, CompiledStep } from '../backends/backend.js';
import type { Program } from '../backends/program.js';

export interface Metrics {
  loss: number;
  /** Classification accuracy (argmax for softmax, 0.5 threshold for sigmoid); absent for mse. */
  accuracy?: number;
}

/** Buffers and views for one batch size: created once, reused by every step of that size. */
export interface Plan {
  m: number;
  /** One per layer (of the whole stack when the network has layers beyond dense). */
  acts: Buf[];
  deltas: Buf[];
  /** Per normalization layer (else unused): its saved statistics, per column (batch) or per row (layer). */
  means: (Buf | null)[];
  invStds: (Buf | null)[];
  x: Buf;
  y: Buf;
  /** The staged rows' weights (m): the loss reads them when `weighted`. */
  w: Buf;
  /** Whether the last stage() gave per-row weights (else every row weighs 1). */
  weighted: boolean;
  /** The training step's program (built on the first step) and, where the backend compiles programs, its one call. */
  train?: Program;
  compiledTrain?: CompiledProgram;
  /** The same with the staged weights in the loss. */
  trainWeighted?: Program;
  compiledTrainWeighted?: CompiledProgram;
  /** The forward pass's program and its one call. */
  forward?: Program;
  compiledForward?: CompiledProgram;
  /**
   * Off-thread training (trainStepAsync): the training program followed by copies of the batch's
   * outputs, targets and weights into `outCopy`, `yCopy` and `wCopy`, which the fit's metrics read
   * after the await; a predict or evaluate in between may reuse acts, y and w.
   */
  compiledTrainAsync?: CompiledStep;
  /** The same with the staged weights in the loss. */
  compiledTrainAsyncWeighted?: CompiledStep;
  /**
   * The same again, staging its own batch first (gatherRows from `gatherFrom`, the rows idx names),
   * for the rows it was compiled for.
   */
  compiledTrainGather?: CompiledStep;
  gatherFrom?: ResidentRows;
  /** The batch's row numbers in the resident rows (floats), written by stageIndices. */
  idx?: Buf;
  outCopy?: Buf;
  yCopy?: Buf;
  wCopy?: Buf;
  /** Several gathering steps per hand-off off the thread (Network.trainStepsAsync), for the rows it was compiled for. */
  chunk?: StepChunk;
}

/**
 * A program of `steps` copies of a plan's gathering training step, which the backend runs in one
 * hand-off (CompiledStep.runStepsAsync): step s gathers the rows idx[s·m, (s+1)·m) names, trains,
 * and copies its outputs, targets and weights to its slice of out, y and w for the fit's metrics.
 */
export interface StepChunk {
  readonly from: ResidentRows;
  readonly steps: number;
  readonly opsPerStep: number;
  readonly compiled: CompiledStep;
  readonly idx: Buf;
  readonly out: Buf;
  readonly y: Buf;
  readonly w: Buf | null;
  /** Adam's bias corrections of each step (bc1, bc2), and each step's summed loss. */
  readonly bc: Float64Array;
  readonly losses: Float64Array;
}

/**
 * A fit's training rows copied once into backend memory (Network.residentRows): inputs normalized
 * as stage() normalizes them, targets, and the rows' weights if any. Off-thread steps gather their
 * batches from them on the backend's threads, so the event loop only writes m row numbers a step.
 */
export interface ResidentRows {
  readonly x: Buf;
  readonly y: Buf;
  readonly w: Buf | null;
  readonly rows: number;
}

/** A dense layer: its shape, activation and views of the params and grads arenas. */
export interface LayerInfo {
  inp: number;
  out: number;
  act: ActCode;
  alpha: number;
  w: Buf;
  b: Buf;
  dw: Buf;
  db: Buf;
}

// ---- layers beyond dense (dropout, batch and layer normalization) ------------------------------
// A network with any of them runs the stack below, kernel by kernel (compiled steps cover dense
// layers only). Each entry's output has its activation `act` (dropout: linear), so that the next
// entry's backward kernel turns the delta at its input into the delta at this entry's
// pre-activation, as denseBackward does.

/** How a forward pass runs: training (batch statistics, running averages move, dropout on),
 * gradients (the same, but nothing moves: the check of Model.gradients), or inference. */
export type PassMode = 'train' | 'gradients' | 'inference';

export type StackLayer =
  | { kind: 'dense'; width: number; act: ActCode; alpha: number; dense: LayerInfo }
  | { kind: 'dropout'; width: number; act: ActCode; alpha: number; rate: number }
  | { kind: 'batchNormalization' | 'layerNormalization'; width: number; act: ActCode; alpha: number; eps: number;
    momentum: number; gamma: Buf; beta: Buf; dgamma: Buf; dbeta: Buf; runMean: Buf | null; runVar: Buf | null };

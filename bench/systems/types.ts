// What the harness needs from any trainer, deltaprop or peer: a unit of work to time, and a check
// batch to confirm it learns before it is timed.

export interface TrainSystem {
  /** 'deltaprop-native', 'tfjs-wasm', 'brain.js', ... */
  system: string;
  /** How this system's run differs from the workload as specified (e.g. brain.js's sigmoid output). */
  note?: string;
  /** Training samples (rows × forward+backward+update) in one unit of `run`. */
  samplesPerUnit: number;
  /** Mean loss on a fixed check batch. */
  checkLoss(): Promise<number> | number;
  /** Trains `steps` steps on the check batch only (for the loss-falls check). */
  trainOnCheck(steps: number): Promise<void> | void;
  /** Trains `units` units of work on the pool. */
  run(units: number): Promise<void> | void;
  dispose?(): void;
}

/** Per-epoch record of a Fashion-MNIST run. */
export interface FashionRun {
  system: string;
  note?: string;
  /** Training seconds of each epoch (evaluation excluded). */
  epochSeconds: number[];
  /** Test accuracy after each epoch. */
  testAccuracy: number[];
  /** Mean training loss of each epoch. */
  trainLoss: number[];
}

export interface FashionData {
  trainX: Float32Array;
  trainY: Int32Array;
  testX: Float32Array;
  testY: Int32Array;
  trainRows: number;
  testRows: number;
  /** Where the files were read from. */
  dir: string;
}

// The C++ addon (native/) and its loading: node-gyp-build from the package root (a prebuild in
// prebuilds/ or a local build in build/), once per thread, or an error that says why and what to do.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { installAdvice } from './install-advice.js';

/** The addon's kernel object for one ISA (native/boundary/init.cc `create`). */
export interface NativeKernels {
  readonly isa: string;
  readonly mr: number;
  readonly nr: number;
  gemm(ta: boolean, tb: boolean, m: number, n: number, k: number, alpha: number,
    a: Float32Array, b: Float32Array, beta: number, c: Float32Array): void;
  denseForward(y: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array, m: number,
    inp: number, out: number, act: number, alpha: number): void;
  denseBackward(dw: Float32Array, db: Float32Array, dx: Float32Array | null, dz: Float32Array,
    x: Float32Array, w: Float32Array, m: number, inp: number, out: number, scale: number,
    prevAct: number, alpha: number): void;
  lossDelta(dz: Float32Array, a: Float32Array, y: Float32Array, m: number, n: number, loss: number,
    act: number, alpha: number, delta: number, weights: Float32Array | null): number;
  sumSquares(g: Float32Array, n: number): number;
  sgdStep(p: Float32Array, g: Float32Array, n: number, lr: number, gradScale: number,
    weightDecay: number, decayCount: number): void;
  momentumStep(p: Float32Array, g: Float32Array, v: Float32Array, n: number, lr: number,
    gradScale: number, mu: number, nesterov: boolean, weightDecay: number, decayCount: number): void;
  adamStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number,
    gradScale: number, beta1: number, beta2: number, eps: number, bc1: number, bc2: number,
    weightDecay: number, decoupled: boolean, decayCount: number): void;
  /** y = e^x, the addon's vector exp (exposed for accuracy tests). */
  vexp(y: Float32Array, x: Float32Array, n: number): void;
  /** y = g(x) for act 0..4, the addon's vector activations (exposed for accuracy tests). */
  vact(y: Float32Array, x: Float32Array, n: number, act: number, alpha: number): void;
  setThreads(n: number): number;
  getThreads(): number;
  /**
   * The argument block of the *Fast entry points: argument position p is read from slot
   * ARG_STRIDE·p (a number) or the BUF_SLOTS from there (a buffer as id, offset, length; id -1
   * for null), abi.ts. A call then costs one bare napi call, whatever its argument count.
   */
  readonly args: Float64Array;
  gemmFast(): void;
  denseForwardFast(): void;
  denseBackwardFast(): void;
  lossDeltaFast(): number;
  sumSquaresFast(): number;
  sgdStepFast(): void;
  momentumStepFast(): void;
  adamStepFast(): void;
  gatherRows(dst: Float32Array, src: Float32Array, order: Uint32Array | null, start: number, count: number,
    cols: number): void;
  /** Floats of w (inp, out) packed for this kernel object's blocked GEMM. */
  packedWeightsLength(inp: number, out: number): number;
  packWeights(dst: Float32Array, w: Float32Array, inp: number, out: number): void;
  denseForwardPacked(y: Float32Array, x: Float32Array, w: Float32Array, packed: Float32Array, b: Float32Array, m: number,
    inp: number, out: number, act: number, alpha: number): void;
  dropoutForward(y: Float32Array, x: Float32Array, n: number, rate: number, seed: number, step: number, layer: number): void;
  dropoutBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, n: number, rate: number, seed: number, step: number,
    layer: number, prevAct: number, alpha: number): void;
  batchNormForward(y: Float32Array, x: Float32Array, gamma: Float32Array, beta: Float32Array, runMean: Float32Array,
    runVar: Float32Array, mean: Float32Array, invStd: Float32Array, m: number, n: number, update: boolean,
    momentum: number, eps: number, act: number, alpha: number): void;
  batchNormInference(y: Float32Array, x: Float32Array, gamma: Float32Array, beta: Float32Array, runMean: Float32Array,
    runVar: Float32Array, m: number, n: number, eps: number, act: number, alpha: number): void;
  batchNormBackward(dx: Float32Array | null, dgamma: Float32Array, dbeta: Float32Array, dy: Float32Array, x: Float32Array,
    gamma: Float32Array, mean: Float32Array, invStd: Float32Array, m: number, n: number, scale: number, prevAct: number,
    alpha: number): void;
  layerNormForward(y: Float32Array, x: Float32Array, gamma: Float32Array, beta: Float32Array, mean: Float32Array,
    invStd: Float32Array, m: number, n: number, eps: number, act: number, alpha: number): void;
  layerNormBackward(dx: Float32Array | null, dgamma: Float32Array, dbeta: Float32Array, dy: Float32Array, x: Float32Array,
    gamma: Float32Array, mean: Float32Array, invStd: Float32Array, m: number, n: number, scale: number, prevAct: number,
    alpha: number): void;
  dropoutForwardFast(): void;
  dropoutBackwardFast(): void;
  batchNormForwardFast(): void;
  batchNormInferenceFast(): void;
  batchNormBackwardFast(): void;
  layerNormForwardFast(): void;
  layerNormBackwardFast(): void;
  /**
   * Checks and resolves a program's op records once (abi.ts OP_SLOTS doubles each; see
   * NativeBackend.compileProgram). run() reads the hyper-parameters from `args` and leaves the
   * summed loss in args[HYPER.at.loss] (a returned double would be a new heap number every step).
   */
  compileProgram(records: Float64Array): NativeProgram;
}

/** A program compiled by the addon (native/boundary/interpreter.cc). */
export interface NativeProgram {
  run(): void;
  /** The same run on a libuv thread; resolves with the summed loss (args[HYPER.at.loss] is not written). */
  runAsync(): Promise<number>;
  /**
   * runAsync for a program of copies of one step's ops (opsPerStep each): its first `steps` steps
   * in one async run, step s with the hyper-parameters in blocks[s·HYPER.size, (s+1)·HYPER.size),
   * read at the call. Ends after a step whose loss is not finite, or after the current step once
   * stop() is called; resolves with the steps that ran, each one's loss written back into its
   * block's loss slot.
   */
  runStepsAsync(blocks: Float64Array, steps: number, opsPerStep: number): Promise<number>;
  /** Blocks until a runAsync or runStepsAsync in flight has finished. */
  wait(): void;
  /** Asks a runStepsAsync in flight to end after the step it is in. */
  stop(): void;
}

/** The addon module itself. */
export interface NativeAddon {
  /** ISAs this CPU runs, newest first, comma-separated (e.g. 'avx512,avx2-fma,scalar'). */
  readonly availableIsas: string;
  readonly hardwareThreads: number;
  create(isa: string, threads: number, smallGemm?: number): NativeKernels;
  /** A zero-filled Float32Array over 64-byte-aligned native memory. */
  alloc(length: number): Float32Array;
  /** The same, with the id that names it in an argument block. */
  allocBuf(length: number): [Float32Array, number];
  /** The array's data address modulo 64 (for tests). */
  misalignment(a: Float32Array): number;
}

/** Folders to start the search for package.json from: this module's, in the ESM and CJS builds. */
function startDirs(): string[] {
  const dirs: string[] = [];
  try {
    const url = import.meta.url; // undefined in a CommonJS bundle without shims
    if (url) dirs.push(dirname(fileURLToPath(url)));
  } catch {
    // not an ES module
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const cjsDir = typeof __dirname === 'string' ? __dirname : undefined;
  if (cjsDir) dirs.push(cjsDir);
  return dirs;
}

/** The deltaprop package root above this module (where binding.gyp, build/ and prebuilds/ are). */
export function nativePackageRoot(): string {
  const tried: string[] = [];
  for (const start of startDirs()) {
    for (let dir = start; ;) {
      const pkg = join(dir, 'package.json');
      if (existsSync(pkg)) {
        try {
          if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'deltaprop') return dir;
        } catch {
          // unreadable package.json: not ours, keep going up
        }
      }
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
    tried.push(start);
  }
  throw new Error(`cannot find the deltaprop package root (searched upward from ${tried.join(', ') || 'nowhere: no module location'})`);
}

let addon: NativeAddon | null = null;
let addonError: Error | null = null;

/** Loads the addon once per thread (prebuild or local build), or throws why it cannot. */
export function loadNativeAddon(): NativeAddon {
  if (addon) return addon;
  if (addonError) throw addonError;
  let root = '(unknown)';
  try {
    root = nativePackageRoot();
    const req = createRequire(join(root, 'package.json'));
    let nodeGypBuild: (dir: string) => NativeAddon;
    try {
      nodeGypBuild = req('node-gyp-build');
    } catch (e) {
      throw new Error(`the node-gyp-build package is missing (${(e as Error).message.split('\n')[0]})`);
    }
    addon = nodeGypBuild(root);
    return addon;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    const hint = root === '(unknown)' ? '' : installAdvice(root, msg);
    addonError = new Error(`native addon not loaded: ${msg}.${hint}`);
    throw addonError;
  }
}

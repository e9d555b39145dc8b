// The native backend: the C++ addon (native/), loaded with node-gyp-build from the package root
// (a prebuild in prebuilds/ or a local build in build/). Kernels are called with the Float32Arrays
// of the Bufs directly; a call allocates nothing on the JS side.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ActCode, Backend, Buf, LossCode } from './backend.js';

/** The addon's kernel object for one ISA (native/addon.cc `create`). */
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
    act: number, alpha: number): number;
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
}

/** The addon module itself. */
export interface NativeAddon {
  /** ISAs this CPU runs, newest first, comma-separated (e.g. 'avx512,avx2-fma,scalar'). */
  readonly availableIsas: string;
  readonly hardwareThreads: number;
  create(isa: string, threads: number, smallGemm?: number): NativeKernels;
  /** A zero-filled Float32Array over 64-byte-aligned native memory. */
  alloc(length: number): Float32Array;
  /** The array's data address modulo 64 (for tests). */
  misalignment(a: Float32Array): number;
}

export interface NativeOptions {
  /** Force an ISA: 'avx512', 'avx2-fma', 'neon' or 'scalar' (default: DELTAPROP_ISA, else the newest). */
  isa?: string;
  /** Threads for the kernels (default: DELTAPROP_THREADS, else every hardware thread). */
  threads?: number;
  /**
   * GEMMs with m·n·k at or below this run unpacked (default 32768). For tests: 0 forces the packed,
   * blocked path everywhere, Infinity the unpacked one.
   */
  smallGemm?: number;
}

const ISAS = ['avx512', 'avx2-fma', 'neon', 'scalar'];

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
    const hint = /No native build was found/.test(msg)
      ? ` There is no prebuild for ${process.platform}-${process.arch} in ${join(root, 'prebuilds')} and no local build in` +
        ` ${join(root, 'build')}. Installing compiles one when npm runs deltaprop's install script (npm 11 skips` +
        ' dependency install scripts unless allowed: `npm install-scripts approve deltaprop && npm rebuild deltaprop`)' +
        ' and a C++ toolchain is present (g++ or clang, make, python3); `npm run build:native` in the package shows why a build fails.'
      : '';
    addonError = new Error(`native addon not loaded: ${msg}.${hint}`);
    throw addonError;
  }
}

class NativeBuf implements Buf {
  constructor(readonly data: Float32Array) {}
  get length(): number {
    return this.data.length;
  }
  view(offset: number, length: number): Buf {
    if (!(Number.isInteger(offset) && Number.isInteger(length) && offset >= 0 && length >= 0 &&
      offset + length <= this.data.length)) {
      throw new RangeError(`view(${offset}, ${length}) is outside a buffer of ${this.data.length} floats`);
    }
    return new NativeBuf(this.data.subarray(offset, offset + length));
  }
}

function envVar(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

export class NativeBackend implements Backend {
  readonly name = 'native' as const;
  readonly isa: string;
  /** ISAs this CPU runs, newest first: the values `isa` may be forced to. */
  readonly availableIsas: string[];
  readonly hardwareThreads: number;
  /** The addon's kernels, unwrapped (benchmarks call them with plain Float32Arrays). */
  readonly kernels: NativeKernels;
  private readonly addon: NativeAddon;
  private nThreads: number;

  constructor(opts: NativeOptions = {}) {
    this.addon = loadNativeAddon();
    this.availableIsas = this.addon.availableIsas.split(',');
    this.hardwareThreads = this.addon.hardwareThreads;
    const isa = opts.isa ?? envVar('DELTAPROP_ISA') ?? '';
    if (isa !== '' && !ISAS.includes(isa)) {
      throw new Error(`unknown ISA '${isa}'${opts.isa === undefined ? ' (from DELTAPROP_ISA)' : ''}: expected one of ${ISAS.join(', ')}`);
    }
    if (isa !== '' && !this.availableIsas.includes(isa)) {
      throw new Error(`ISA '${isa}'${opts.isa === undefined ? ' (from DELTAPROP_ISA)' : ''} is not supported by this CPU; it runs ${this.availableIsas.join(', ')}`);
    }
    const te = envVar('DELTAPROP_THREADS');
    const threads = opts.threads ?? (te === undefined ? this.hardwareThreads : Number(te));
    if (!(Number.isInteger(threads) && threads >= 1)) {
      throw new Error(`threads must be a positive integer, got ${String(opts.threads ?? te)}${opts.threads === undefined ? ' (from DELTAPROP_THREADS)' : ''}`);
    }
    this.kernels = this.addon.create(isa, Math.min(threads, 256), opts.smallGemm);
    this.isa = this.kernels.isa;
    this.nThreads = this.kernels.getThreads();
  }

  get threads(): number {
    return this.nThreads;
  }

  setThreads(n: number): void {
    this.nThreads = this.kernels.setThreads(n);
  }

  alloc(length: number): Buf {
    return new NativeBuf(this.addon.alloc(length));
  }

  gemm(transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: Buf, b: Buf, beta: number, c: Buf): void {
    this.kernels.gemm(transA, transB, m, n, k, alpha, a.data, b.data, beta, c.data);
  }

  denseForward(y: Buf, x: Buf, w: Buf, b: Buf, m: number, inp: number, out: number,
    act: ActCode, alpha: number): void {
    this.kernels.denseForward(y.data, x.data, w.data, b.data, m, inp, out, act, alpha);
  }

  denseBackward(dw: Buf, db: Buf, dx: Buf | null, dz: Buf, x: Buf, w: Buf,
    m: number, inp: number, out: number, scale: number, prevAct: ActCode, alpha: number): void {
    this.kernels.denseBackward(dw.data, db.data, dx === null ? null : dx.data, dz.data, x.data, w.data,
      m, inp, out, scale, prevAct, alpha);
  }

  lossDelta(dz: Buf, a: Buf, y: Buf, m: number, n: number, loss: LossCode, act: ActCode,
    alpha: number): number {
    return this.kernels.lossDelta(dz.data, a.data, y.data, m, n, loss, act, alpha);
  }

  sumSquares(g: Buf, n: number): number {
    return this.kernels.sumSquares(g.data, n);
  }

  sgdStep(p: Buf, g: Buf, n: number, lr: number, gradScale: number, weightDecay: number,
    decayCount: number): void {
    this.kernels.sgdStep(p.data, g.data, n, lr, gradScale, weightDecay, decayCount);
  }

  momentumStep(p: Buf, g: Buf, v: Buf, n: number, lr: number, gradScale: number, mu: number,
    nesterov: boolean, weightDecay: number, decayCount: number): void {
    this.kernels.momentumStep(p.data, g.data, v.data, n, lr, gradScale, mu, nesterov, weightDecay, decayCount);
  }

  adamStep(p: Buf, g: Buf, m: Buf, v: Buf, n: number, lr: number, gradScale: number,
    beta1: number, beta2: number, eps: number, bc1: number, bc2: number,
    weightDecay: number, decoupled: boolean, decayCount: number): void {
    this.kernels.adamStep(p.data, g.data, m.data, v.data, n, lr, gradScale, beta1, beta2, eps, bc1, bc2,
      weightDecay, decoupled, decayCount);
  }
}

/**
 * Loads the native backend (synchronously). Throws an Error saying what was tried and why it
 * failed: no prebuild and no local build, an ISA this CPU lacks, a bad thread count.
 */
export function loadNativeBackend(opts: NativeOptions = {}): NativeBackend {
  return new NativeBackend(opts);
}

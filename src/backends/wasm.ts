/// <reference lib="dom" />
// The WebAssembly backend: the AssemblyScript kernels of assembly/ over one linear memory. Buffers
// are placed in that memory by this file (bump allocation, plus reuse of buffers nobody references
// any more); a Buf keeps its byte address and re-resolves its Float32Array when the memory has
// grown (growth detaches every old view). No Node-only import at
// the top level: this file loads in browsers, Deno, Bun and workerd; Node's fs is reached only
// when a file: URL or a path has to be read.
import { type ActCode, type Backend, type Buf, type CompiledStep, type LossCode, type StepDesc, type StepHyper } from './backend.js';
import { HYPER, WASM_STEP, WASM_STEP_HYPER_BYTES, WASM_STEP_LAYER } from './abi.js';
import { FAST, RESOLVED, checkHyper, checkKernel, checkStep, hyperTypesOk, type BufferSpace } from './contract.js';

const K = RESOLVED;

/** One build: a compiled module (what Cloudflare Workers need), bytes, or a URL / path to fetch or read. */
export type WasmSource = WebAssembly.Module | BufferSource | URL | string;

/** Both builds, so that feature detection can pick; `simd` is the fallback. */
export interface WasmSources {
  simd: WasmSource;
  relaxed?: WasmSource;
}

export interface WasmBackendOptions {
  /** Use the relaxed-SIMD build: true forces it (fails where unsupported), false forbids it; default: detect. */
  relaxed?: boolean;
  /** Upper bound on the module's memory in MB (default 2048, at most 4096). */
  maxMemoryMB?: number;
}

export const WASM_FILES = { simd: 'deltaprop-simd.wasm', relaxed: 'deltaprop-relaxed.wasm' } as const;

const PAGE = 65536;
const ALIGN = 64; // cache-line aligned buffers: aligned v128 loads and no false sharing of lines

// The smallest modules using one SIMD op (v128.const) and one relaxed-SIMD op (f32x4.relaxed_madd):
// validating them tells what this engine supports without compiling the real module twice.
function probeModule(body: number[]): Uint8Array<ArrayBuffer> {
  const code = [0x00, ...body, 0x0b]; // no locals, body, end
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type: () -> v128
    0x03, 0x02, 0x01, 0x00, // one function of type 0
    0x0a, code.length + 2, 0x01, code.length, ...code,
  ]);
}
const V128_ZERO = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];

/** True where WebAssembly SIMD (v128) is supported. */
export function simdSupported(): boolean {
  try {
    return WebAssembly.validate(probeModule(V128_ZERO));
  } catch {
    return false;
  }
}

/** True where relaxed SIMD is supported (f32x4.relaxed_madd). */
export function relaxedSimdSupported(): boolean {
  try {
    return WebAssembly.validate(probeModule([...V128_ZERO, ...V128_ZERO, ...V128_ZERO, 0xfd, 0x85, 0x02]));
  } catch {
    return false;
  }
}

interface NodeFs {
  readFileSync(path: string | URL): Uint8Array;
  existsSync(path: string | URL): boolean;
}

// Node's fs, registered by the Node entry (src/index.ts imports node:fs statically: it is never
// bundled for a browser), so that every Node >= 20.0 reads the packaged files.
let registeredFs: NodeFs | null = null;

/** Gives the loader Node's fs (called once by the Node entry). */
export function registerNodeFs(fs: NodeFs): void {
  registeredFs = fs;
}

// Otherwise Node's fs (also Bun's and Deno's) without an import statement: bundlers for browsers
// and workerd must not see one, and workerd's module loader rejects computed dynamic imports too.
// process.getBuiltinModule exists from Node 20.16; older Nodes reach this only through the web
// entry and must pass bytes or a module there.
function nodeFs(): NodeFs | null {
  if (registeredFs) return registeredFs;
  const proc = (globalThis as { process?: { versions?: { node?: string }; getBuiltinModule?: (id: string) => unknown } }).process;
  if (!proc?.versions?.node) return null;
  const fs = proc.getBuiltinModule?.('node:fs') as NodeFs | undefined;
  // Deno (whose `process` may lack it) has Deno.readFile and fetch of file: URLs instead
  if (!fs && (globalThis as { Deno?: unknown }).Deno) return null;
  if (!fs) throw new Error(`wasm backend: reading .wasm files from this entry needs Node >= 20.16 (process.getBuiltinModule); this is ${proc.versions.node}: import 'deltaprop' (the Node entry) or 'deltaprop/inline', or pass the bytes or a WebAssembly.Module`);
  return fs;
}

// Server-side runtimes (Node, Bun, Deno) compile and instantiate the ~30 KB module synchronously.
// The promise of WebAssembly.compile settles from a task V8 posts to the embedder's event loop,
// and Node holds no reference to the loop for it (nodejs/node#36616): a loader awaiting it must
// not depend on what else keeps the process alive. Browsers keep the asynchronous path (Chrome
// refuses synchronous compilation of modules over 4 KB on the main thread).
function compilesSynchronously(): boolean {
  const g = globalThis as { process?: { versions?: { node?: string } }; Deno?: unknown; window?: unknown };
  return (typeof g.process?.versions?.node === 'string' || g.Deno !== undefined) && g.window === undefined;
}

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

async function readSource(src: URL | string): Promise<Uint8Array | ArrayBuffer> {
  const isUrl = src instanceof URL || SCHEME.test(src) || src.startsWith('data:') || src.startsWith('blob:');
  const url = isUrl ? new URL(String(src)) : null;
  if (url === null || url.protocol === 'file:') {
    const fs = nodeFs();
    if (fs) return fs.readFileSync(url ?? src);
    const deno = (globalThis as { Deno?: { readFile(p: string | URL): Promise<Uint8Array> } }).Deno;
    if (deno) return deno.readFile(url ?? src);
    if (url === null) throw new Error(`wasm backend: cannot read the file '${String(src)}' in this runtime (pass a URL, bytes or a WebAssembly.Module)`);
  }
  const res = await fetch(url!);
  if (!res.ok) throw new Error(`wasm backend: fetching ${url!.href} failed: ${res.status} ${res.statusText}`);
  return res.arrayBuffer();
}

async function compile(src: WasmSource): Promise<WebAssembly.Module> {
  if (src instanceof WebAssembly.Module) return src;
  const bytes = typeof src === 'string' || src instanceof URL ? await readSource(src) : src;
  return compilesSynchronously() ? new WebAssembly.Module(bytes as BufferSource) : WebAssembly.compile(bytes as BufferSource);
}

// How to give a bundle its kernels when the packaged files cannot be found from it.
const BUNDLE_HINT = "import from 'deltaprop/inline' (the .wasm inside the bundle), or pass the .wasm files' URLs as the `wasm` option";

// The package's wasm/ files: next to dist/ in the package (dist/*.js is one level down), or at the
// repository root when running from the sources (src/backends/wasm.ts is two levels down). The
// first URLs are literal `new URL('…', import.meta.url)` so that bundlers (Vite, webpack) emit the
// .wasm as an asset; the second is computed so that they do not try to resolve it.
function packagedCandidates(relaxed: boolean): URL[] {
  const here: unknown = import.meta.url;
  // an IIFE or CommonJS bundle made for browsers has no module URL (esbuild makes import.meta {})
  if (typeof here !== 'string' || here === '') {
    throw new Error(`wasm backend: this bundle has no import.meta.url to locate ${relaxed ? WASM_FILES.relaxed : WASM_FILES.simd} from (an IIFE or CommonJS bundle): ${BUNDLE_HINT}`);
  }
  const inPackage = relaxed
    ? new URL('../wasm/deltaprop-relaxed.wasm', import.meta.url)
    : new URL('../wasm/deltaprop-simd.wasm', import.meta.url);
  const file = relaxed ? WASM_FILES.relaxed : WASM_FILES.simd;
  return [inPackage, new URL(['..', '..', 'wasm', file].join('/'), here)];
}

/** The packaged files' URLs (`packaged`: not given by the caller, so a failure names the bundle fix). */
interface PackagedUrl {
  url: URL;
  packaged: true;
}

async function packagedWasmUrl(relaxed: boolean): Promise<URL | PackagedUrl> {
  const candidates = packagedCandidates(relaxed);
  if (candidates[0].protocol === 'file:') {
    const fs = nodeFs();
    if (fs) {
      const found = candidates.find((u) => fs.existsSync(u));
      if (!found) throw new Error(`wasm backend: ${candidates[0].pathname.split('/').pop()} not found (looked in ${candidates.map((u) => u.pathname).join(', ')}); run \`npm run build:wasm\``);
      return found;
    }
  }
  return { url: candidates[0], packaged: true };
}

interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  relaxedBuild(): number;
  gemm(transA: number, transB: number, m: number, n: number, k: number, alpha: number, a: number, b: number, beta: number, c: number): void;
  denseForward(y: number, x: number, w: number, b: number, m: number, inp: number, out: number, act: number, alpha: number): void;
  denseBackward(dw: number, db: number, dx: number, dz: number, x: number, w: number, m: number, inp: number, out: number,
    scale: number, prevAct: number, alpha: number): void;
  lossDelta(dz: number, a: number, y: number, m: number, n: number, loss: number, act: number, alpha: number): number;
  sumSquares(g: number, n: number): number;
  sgdStep(p: number, g: number, n: number, lr: number, gradScale: number, weightDecay: number, decayCount: number): void;
  momentumStep(p: number, g: number, v: number, n: number, lr: number, gradScale: number, mu: number, nesterov: number,
    weightDecay: number, decayCount: number): void;
  adamStep(p: number, g: number, m: number, v: number, n: number, lr: number, gradScale: number, beta1: number, beta2: number,
    eps: number, bc1: number, bc2: number, weightDecay: number, decoupled: number, decayCount: number): void;
  /** absent in builds from before assembly/step.ts; leaves the loss in the hyper-parameter block; 1: hyper-parameters refused */
  trainStep?(desc: number): number;
}

class WasmBuf implements Buf {
  private cached: Float32Array | null = null;
  private cachedOf: ArrayBuffer | null = null;
  /**
   * root: the allocation a view lies in, held so that the allocation is not recycled while any
   * view of it is reachable (null for the allocation itself).
   */
  constructor(readonly owner: WasmBackend, readonly ptr: number, readonly length: number,
    readonly root: WasmBuf | null = null) {}

  get data(): Float32Array {
    // owner.buffer, not memory.buffer: the Memory getter is slow and only alloc() grows memory.
    // The view's buffer is kept beside it: reading a typed array's .buffer can allocate.
    const buffer = this.owner.buffer;
    if (this.cachedOf !== buffer) {
      this.cached = new Float32Array(buffer, this.ptr, this.length);
      this.cachedOf = buffer;
    }
    return this.cached!;
  }

  view(offset: number, length: number): Buf {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.length) {
      throw new RangeError(`wasm backend: view [${offset}, ${offset + length}) is outside a buffer of ${this.length} floats`);
    }
    return new WasmBuf(this.owner, this.ptr + offset * 4, length, this.root ?? this);
  }
}

/** Free byte ranges [ptr, ptr + size), sorted by ptr, adjacent ranges merged. */
interface Block {
  ptr: number;
  size: number;
}

const isInt = (v: number): boolean => Number.isInteger(v) && v >= 0;

// The compiled-step descriptor of assembly/step.ts (abi.ts), in one allocation: the
// hyper-parameter block (HYPER, f64) first, then the header (u32 words), then one record per layer.
const D_BASE = WASM_STEP_HYPER_BYTES; // byte offset of the header in the allocation
const D = WASM_STEP.at, R = WASM_STEP_LAYER.at, H = HYPER.at;
const D_HEADER_WORDS = WASM_STEP.size;
const LAYER_WORDS = WASM_STEP_LAYER.size;

export class WasmBackend implements Backend {
  readonly name = 'wasm' as const;
  readonly isa: string;
  readonly threads = 1;
  readonly memory: WebAssembly.Memory;
  /** memory.buffer as of the last growth (the module never grows its memory itself). */
  buffer: ArrayBuffer;
  /** All of `buffer` as f64, for the compiled steps' hyper-parameter blocks. */
  f64: Float64Array;
  private readonly k: Exports;
  private top: number;
  private readonly maxBytes: number;
  /**
   * A whole training step in one call (see StepCompiler in backend.ts); absent with a module built
   * before assembly/step.ts existed.
   */
  readonly compileStep?: (desc: StepDesc) => CompiledStep;

  constructor(instance: WebAssembly.Instance, memory: WebAssembly.Memory, maxBytes: number) {
    this.k = instance.exports as unknown as Exports;
    if (typeof this.k.trainStep === 'function') this.compileStep = (desc) => this.compile(desc);
    this.memory = memory;
    this.buffer = memory.buffer;
    this.f64 = new Float64Array(this.buffer);
    this.maxBytes = maxBytes;
    this.isa = this.k.relaxedBuild() ? 'wasm-relaxed-simd' : 'wasm-simd128';
    this.top = this.k.heapBase();
    if (this.top > maxBytes) {
      throw new RangeError(`wasm backend: a memory limit of ${(maxBytes / 1048576).toFixed(1)} MB is below the kernels' own ${(this.top / 1048576).toFixed(1)} MB (static data and GEMM scratch)`);
    }
    this.ensure(this.top, 0);
  }

  setThreads(_n: number): void {}

  /** Bytes of linear memory in use by live buffers and the kernels' scratch. */
  get bytesUsed(): number {
    return this.top - this.free.reduce((s, b) => s + b.size, 0);
  }

  /** Bytes of linear memory the module has (grows, never shrinks). */
  get bytesReserved(): number {
    return this.buffer.byteLength;
  }

  // Buffers the program no longer references give their bytes back (where the runtime has
  // FinalizationRegistry): creating model after model must not exhaust the memory. The Backend
  // interface has no free(); a Buf's views keep their allocation alive through `root`.
  private readonly free: Block[] = [];
  private highWater = 0;
  private readonly registry = typeof FinalizationRegistry === 'function'
    ? new FinalizationRegistry<Block>((b) => this.release(b))
    : null;

  private release(b: Block): void {
    const f = this.free;
    let i = 0;
    while (i < f.length && f[i].ptr < b.ptr) i++;
    f.splice(i, 0, { ptr: b.ptr, size: b.size });
    // merge with the next and the previous range
    if (i + 1 < f.length && f[i].ptr + f[i].size === f[i + 1].ptr) {
      f[i].size += f[i + 1].size;
      f.splice(i + 1, 1);
    }
    if (i > 0 && f[i - 1].ptr + f[i - 1].size === f[i].ptr) {
      f[i - 1].size += f[i].size;
      f.splice(i, 1);
      i--;
    }
    // a free range at the top lowers the top
    if (f[i].ptr + f[i].size === this.top) {
      this.top = f[i].ptr;
      f.splice(i, 1);
    }
  }

  private ensure(end: number, floats: number): void {
    const have = this.buffer.byteLength;
    if (end <= have) return;
    const mb = (x: number): string => (x / 1048576).toFixed(1);
    const fail = (): never => {
      throw new RangeError(`wasm backend: cannot allocate ${floats} floats (${mb(floats * 4)} MB): memory limit ${mb(this.maxBytes)} MB reached`);
    };
    if (end > this.maxBytes) fail();
    // grow at least geometrically, so many small allocations do not grow page by page
    const need = Math.ceil((end - have) / PAGE);
    const want = Math.min(Math.max(need, Math.ceil(have / PAGE / 4)), Math.floor(this.maxBytes / PAGE) - have / PAGE);
    try {
      this.memory.grow(want);
    } catch {
      try {
        this.memory.grow(need);
      } catch {
        fail();
      }
    }
    this.buffer = this.memory.buffer;
    this.f64 = new Float64Array(this.buffer);
  }

  alloc(length: number): Buf {
    if (!isInt(length)) throw new RangeError(`wasm backend: alloc(${length}): length must be a non-negative integer`);
    // whole cache lines: every allocation starts aligned, and freed ranges fit others exactly
    const size = Math.ceil((length * 4) / ALIGN) * ALIGN;
    if (size === 0) return new WasmBuf(this, Math.ceil(this.top / ALIGN) * ALIGN, 0);
    let ptr = -1;
    const f = this.free;
    for (let i = 0; i < f.length; i++) {
      if (f[i].size < size) continue;
      ptr = f[i].ptr;
      if (f[i].size === size) f.splice(i, 1);
      else {
        f[i].ptr += size;
        f[i].size -= size;
      }
      // recycled bytes hold old values; alloc promises zeros
      new Uint8Array(this.buffer, ptr, size).fill(0);
      break;
    }
    if (ptr < 0) {
      ptr = Math.ceil(this.top / ALIGN) * ALIGN;
      this.ensure(ptr + size, length);
      this.top = ptr + size;
      // bytes above the high-water mark were never used (zero); those below it were, when a
      // freed range at the top lowered the top
      if (ptr < this.highWater) new Uint8Array(this.buffer, ptr, Math.min(size, this.highWater - ptr)).fill(0);
      this.highWater = Math.max(this.highWater, this.top);
    }
    const buf = new WasmBuf(this, ptr, length);
    this.registry?.register(buf, { ptr, size });
    return buf;
  }

  // The boundary: every call is checked against the kernel contract (contract.ts: buffers ours and
  // long enough, no output sharing memory with another argument, numbers in range and finite in
  // float32), so that a bad call throws here, with the same words as every backend, instead of
  // writing over another buffer. The addresses are then the Bufs' own.
  private readonly space: BufferSpace = {
    accepts: (b) => b instanceof WasmBuf && b.owner === this,
    length: (b) => b.length,
    memory: () => this,
    start: (b) => (b as WasmBuf).ptr / 4,
  };

  gemm(transA: boolean, transB: boolean, m: number, n: number, k: number,
    alpha: number, a: Buf, b: Buf, beta: number, c: Buf): void {
    if (!FAST.gemm(this.space, transA, transB, m, n, k, alpha, a, b, beta, c)) checkKernel(this.space, K.gemm, transA, transB, m, n, k, alpha, a, b, beta, c);
    this.k.gemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, (a as WasmBuf).ptr, (b as WasmBuf).ptr, beta, (c as WasmBuf).ptr);
  }

  denseForward(y: Buf, x: Buf, w: Buf, b: Buf, m: number, inp: number, out: number,
    act: ActCode, alpha: number): void {
    if (!FAST.denseForward(this.space, y, x, w, b, m, inp, out, act, alpha)) checkKernel(this.space, K.denseForward, y, x, w, b, m, inp, out, act, alpha);
    this.k.denseForward((y as WasmBuf).ptr, (x as WasmBuf).ptr, (w as WasmBuf).ptr, (b as WasmBuf).ptr, m, inp, out, act, alpha);
  }

  denseBackward(dw: Buf, db: Buf, dx: Buf | null, dz: Buf, x: Buf, w: Buf,
    m: number, inp: number, out: number, scale: number, prevAct: ActCode, alpha: number): void {
    if (!FAST.denseBackward(this.space, dw, db, dx, dz, x, w, m, inp, out, scale, prevAct, alpha)) checkKernel(this.space, K.denseBackward, dw, db, dx, dz, x, w, m, inp, out, scale, prevAct, alpha);
    this.k.denseBackward((dw as WasmBuf).ptr, (db as WasmBuf).ptr, dx === null ? 0 : (dx as WasmBuf).ptr, (dz as WasmBuf).ptr,
      (x as WasmBuf).ptr, (w as WasmBuf).ptr, m, inp, out, scale, prevAct, alpha);
  }

  lossDelta(dz: Buf, a: Buf, y: Buf, m: number, n: number, loss: LossCode, act: ActCode,
    alpha: number): number {
    if (!FAST.lossDelta(this.space, dz, a, y, m, n, loss, act, alpha)) checkKernel(this.space, K.lossDelta, dz, a, y, m, n, loss, act, alpha);
    return this.k.lossDelta((dz as WasmBuf).ptr, (a as WasmBuf).ptr, (y as WasmBuf).ptr, m, n, loss, act, alpha);
  }

  sumSquares(g: Buf, n: number): number {
    if (!FAST.sumSquares(this.space, g, n)) checkKernel(this.space, K.sumSquares, g, n);
    return this.k.sumSquares((g as WasmBuf).ptr, n);
  }

  sgdStep(p: Buf, g: Buf, n: number, lr: number, gradScale: number, weightDecay: number,
    decayCount: number): void {
    if (!FAST.sgdStep(this.space, p, g, n, lr, gradScale, weightDecay, decayCount)) checkKernel(this.space, K.sgdStep, p, g, n, lr, gradScale, weightDecay, decayCount);
    this.k.sgdStep((p as WasmBuf).ptr, (g as WasmBuf).ptr, n, lr, gradScale, weightDecay, decayCount);
  }

  momentumStep(p: Buf, g: Buf, v: Buf, n: number, lr: number, gradScale: number, mu: number,
    nesterov: boolean, weightDecay: number, decayCount: number): void {
    if (!FAST.momentumStep(this.space, p, g, v, n, lr, gradScale, mu, nesterov, weightDecay, decayCount)) checkKernel(this.space, K.momentumStep, p, g, v, n, lr, gradScale, mu, nesterov, weightDecay, decayCount);
    this.k.momentumStep((p as WasmBuf).ptr, (g as WasmBuf).ptr, (v as WasmBuf).ptr, n, lr, gradScale, mu,
      nesterov ? 1 : 0, weightDecay, decayCount);
  }

  adamStep(p: Buf, g: Buf, m: Buf, v: Buf, n: number, lr: number, gradScale: number,
    beta1: number, beta2: number, eps: number, bc1: number, bc2: number,
    weightDecay: number, decoupled: boolean, decayCount: number): void {
    if (!FAST.adamStep(this.space, p, g, m, v, n, lr, gradScale, beta1, beta2, eps, bc1, bc2, weightDecay, decoupled, decayCount)) checkKernel(this.space, K.adamStep, p, g, m, v, n, lr, gradScale, beta1, beta2, eps, bc1, bc2, weightDecay, decoupled, decayCount);
    this.k.adamStep((p as WasmBuf).ptr, (g as WasmBuf).ptr, (m as WasmBuf).ptr, (v as WasmBuf).ptr, n, lr,
      gradScale, beta1, beta2, eps, bc1, bc2, weightDecay, decoupled ? 1 : 0, decayCount);
  }

  // The whole step of src/backends/step.ts in one call to the module (assembly/step.ts). The
  // descriptor is checked here, once: every buffer ours and long enough for its shape, every
  // layer's W / b window inside the n params, the codes known.
  private compile(desc: StepDesc): CompiledStep {
    const used = checkStep(this.space, desc); // the contract, the same as on the native backend
    const { m, dims, n } = desc;
    const L = dims.length - 1;
    const ptr = (b: Buf | null | undefined): number => (b ? (b as WasmBuf).ptr : 0);
    const params = ptr(desc.params), grads = ptr(desc.grads), backup = ptr(desc.backup);
    const state1 = ptr(desc.state1), state2 = ptr(desc.state2), x = ptr(desc.x), y = ptr(desc.y);
    const outs = desc.outs.map(ptr), deltas = desc.deltas.map(ptr);

    const rec = this.alloc(D_BASE / 4 + D_HEADER_WORDS + L * LAYER_WORDS) as WasmBuf; // zeroed
    // alloc may have grown the memory: views after it
    const base = (rec.ptr + D_BASE) / 4;
    const u32 = new Uint32Array(this.buffer), f32 = new Float32Array(this.buffer);
    u32[base + D.m] = m;
    u32[base + D.layers] = L;
    u32[base + D.loss] = desc.loss;
    u32[base + D.optimizer] = desc.optimizer;
    u32[base + D.n] = n;
    u32[base + D.decayCount] = desc.decayCount;
    u32[base + D.x] = x;
    u32[base + D.y] = y;
    u32[base + D.params] = params;
    u32[base + D.grads] = grads;
    u32[base + D.backup] = backup;
    u32[base + D.backupBytes] = n * 4; // the n params the contract checked backup for
    u32[base + D.state1] = state1;
    u32[base + D.state2] = state2;
    u32[base + D.hyper] = rec.ptr;
    for (let l = 0; l < L; l++) {
      const wo = desc.wOffsets[l], bo = desc.bOffsets[l];
      const r = base + D_HEADER_WORDS + l * LAYER_WORDS;
      u32[r + R.inp] = dims[l];
      u32[r + R.out] = dims[l + 1];
      u32[r + R.act] = desc.acts[l];
      f32[r + R.alpha] = desc.alphas[l];
      u32[r + R.w] = params + wo * 4;
      u32[r + R.b] = params + bo * 4;
      u32[r + R.dw] = grads + wo * 4;
      u32[r + R.db] = grads + bo * 4;
      u32[r + R.a] = outs[l];
      u32[r + R.delta] = deltas[l];
    }
    // the step holds every buffer it names, so that none is recycled while it can run
    const keep = used.map((u) => u.buf);
    return new WasmCompiledStep(this, rec, this.k.trainStep!, keep, desc.optimizer);
  }
}

/** One compiled step: its descriptor allocation (held: the module reads it) and the buffers it names. */
class WasmCompiledStep implements CompiledStep {
  readonly loss = new Float64Array(1);
  /** f64 index of the hyper-parameter block (allocations are 64-byte aligned). */
  private readonly at: number;

  constructor(private readonly owner: WasmBackend, private readonly desc: WasmBuf,
    private readonly run_: (d: number) => number, readonly keep: readonly Buf[], private readonly optimizer: number) {
    this.at = desc.ptr / 8;
  }

  /** The last hyper-parameter object whose fields were all of the right type. */
  private typed: StepHyper | null = null;

  private checkTypes(h: StepHyper): void {
    if (!hyperTypesOk(h)) checkHyper(h, this.optimizer);
    this.typed = h;
  }

  run(h: StepHyper): void {
    // the contract (contract.ts): the types here, when the object is new (a Float64Array would take
    // '0.1' as 0.1 and null as 0), the values in the module on every run (trainStep returns 1 and
    // does nothing when they are out of contract). More checking here would cost the batch loop an
    // inlining, and a boxed number a step.
    if (h !== this.typed) this.checkTypes(h);
    // owner.f64 follows memory growth; a view of the step's own would need a check per run
    const v = this.owner.f64, at = this.at;
    v[at + H.lr] = h.lr;
    v[at + H.clipNorm] = h.clipNorm;
    v[at + H.weightDecay] = h.weightDecay;
    v[at + H.mu] = h.mu;
    v[at + H.nesterov] = +h.nesterov;
    v[at + H.beta1] = h.beta1;
    v[at + H.beta2] = h.beta2;
    v[at + H.eps] = h.eps;
    v[at + H.bc1] = h.bc1;
    v[at + H.bc2] = h.bc2;
    if (this.run_(this.desc.ptr + D_BASE) !== 0) checkHyper(h, this.optimizer);
    this.loss[0] = v[at + H.loss];
  }
}

function isPackagedUrl(s: unknown): s is PackagedUrl {
  return typeof s === 'object' && s !== null && (s as Partial<PackagedUrl>).packaged === true && (s as PackagedUrl).url instanceof URL;
}

function isSources(s: unknown): s is WasmSources {
  return typeof s === 'object' && s !== null && !(s instanceof WebAssembly.Module) && !(s instanceof URL) &&
    !ArrayBuffer.isView(s) && !(s instanceof ArrayBuffer) && 'simd' in s;
}

/**
 * Loads the wasm backend. `source` is one build (module, bytes, URL or path) or both builds
 * `{ simd, relaxed }`; without it the package's own `wasm/` files are read (Node, Bun, Deno) or
 * fetched next to the bundle (browsers). With both builds available, relaxed SIMD is used where the
 * engine validates it, unless `opts.relaxed` says otherwise.
 */
export async function loadWasmBackend(source?: WasmSource | WasmSources,
  opts: WasmBackendOptions = {}): Promise<Backend> {
  if (!simdSupported()) throw new Error('wasm backend: this engine has no WebAssembly SIMD (v128)');
  const maxMB = opts.maxMemoryMB ?? 2048;
  if (!(maxMB > 0 && maxMB <= 4096)) throw new RangeError(`wasm backend: maxMemoryMB must be in (0, 4096], got ${maxMB}`);
  const canRelax = relaxedSimdSupported();
  if (opts.relaxed === true && !canRelax) throw new Error('wasm backend: relaxed SIMD was requested but this engine does not support it');
  let src: WasmSource | PackagedUrl;
  if (source === undefined || isSources(source)) {
    const both = source ?? {
      simd: await packagedWasmUrl(false),
      relaxed: await packagedWasmUrl(true),
    };
    const relaxed = opts.relaxed ?? canRelax;
    if (relaxed && both.relaxed === undefined) {
      if (opts.relaxed === true) throw new Error('wasm backend: relaxed SIMD was requested but no relaxed build was given');
    }
    src = relaxed && both.relaxed !== undefined ? both.relaxed : both.simd;
  } else {
    src = source;
  }
  let module: WebAssembly.Module;
  if (isPackagedUrl(src)) {
    try {
      module = await compile(src.url);
    } catch (e) {
      // fetched next to a bundle that does not carry the file (esbuild emits no .wasm assets)
      throw new Error(`${(e as Error).message} (the packaged ${src.url.pathname.split('/').pop()}, located from the bundle's import.meta.url): ${BUNDLE_HINT}`);
    }
  } else {
    module = await compile(src);
  }
  const maxPages = Math.floor((maxMB * 1048576) / PAGE);
  const need = WebAssembly.Module.imports(module).find((i) => i.kind === 'memory');
  if (!need) throw new Error('wasm backend: the module does not import env.memory: not a deltaprop kernel build');
  // The module declares a small minimum (its static data); the GEMM scratch after it (about 2.2 MB,
  // heapBase() says exactly) is covered by the initial size or grown by the constructor.
  const memory = new WebAssembly.Memory({ initial: Math.min(40, maxPages), maximum: maxPages });
  const imports = { env: { memory } };
  const instance = compilesSynchronously() ? new WebAssembly.Instance(module, imports) : await WebAssembly.instantiate(module, imports);
  return new WasmBackend(instance, memory, maxPages * PAGE);
}

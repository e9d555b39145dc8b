// The wasm backend's memory: buffers placed in the module's one linear memory by bump allocation,
// plus reuse of the bytes of buffers nobody references any more. A Buf keeps its byte address and
// re-resolves its Float32Array when the memory has grown (growth detaches every old view).
import type { Buf } from '../backend.js';

export const PAGE = 65536;
const ALIGN = 64; // cache-line aligned buffers: aligned v128 loads and no false sharing of lines

export class WasmBuf implements Buf {
  private cached: Float32Array | null = null;
  private cachedOf: ArrayBuffer | null = null;
  /**
   * root: the allocation a view lies in, held so that the allocation is not recycled while any
   * view of it is reachable (null for the allocation itself).
   */
  constructor(readonly owner: Arena, readonly ptr: number, readonly length: number,
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

export class Arena {
  /** memory.buffer as of the last growth (the module never grows its memory itself). */
  buffer: ArrayBuffer;
  /** All of `buffer` as f64, for the compiled steps' hyper-parameter blocks. */
  f64: Float64Array;
  private top: number;

  /** `base`: the first byte after the module's static data and scratch. */
  constructor(readonly memory: WebAssembly.Memory, base: number, private readonly maxBytes: number) {
    this.buffer = memory.buffer;
    this.f64 = new Float64Array(this.buffer);
    this.top = base;
    if (this.top > maxBytes) {
      throw new RangeError(`wasm backend: a memory limit of ${(maxBytes / 1048576).toFixed(1)} MB is below the kernels' own ${(this.top / 1048576).toFixed(1)} MB (static data and GEMM scratch)`);
    }
    this.ensure(this.top, 0);
  }

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
}

// IDX files (the MNIST family's format: big-endian magic 0, 0, type, ndim; ndim uint32 sizes; then
// the values row-major) read as streams, gzip or not, as a BatchSource: images with their labels.
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { InputError, type Batch, type BatchSource } from '../data.js';
import { ioReason } from './csv-stream.js';

const ITEM_BYTES: Record<number, number> = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 };

/** Exact reads from a stream of Buffers. */
class ByteReader {
  private readonly it: AsyncIterator<Buffer>;
  private pending: Buffer[] = [];
  private have = 0;
  /** Bytes handed out so far. */
  offset = 0;

  constructor(stream: Readable) {
    this.it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** The next n bytes, or fewer at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    while (this.have < n) {
      const r = await this.it.next();
      if (r.done) break;
      this.pending.push(r.value);
      this.have += r.value.length;
    }
    const all = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    const out = all.subarray(0, Math.min(n, all.length));
    const rest = all.subarray(out.length);
    this.pending = rest.length > 0 ? [rest] : [];
    this.have = rest.length;
    this.offset += out.length;
    return out;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

async function openStream(path: string, what: string): Promise<{ stream: Readable; failure: () => unknown }> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw new InputError(`${path}: cannot read ${what} (${ioReason(e)})`);
  }
  if ((await fh.stat()).isDirectory()) {
    await fh.close();
    throw new InputError(`${path}: cannot read ${what} (is a directory)`);
  }
  const magic = Buffer.alloc(2);
  const { bytesRead } = await fh.read(magic, 0, 2, 0);
  const file = fh.createReadStream({ start: 0, highWaterMark: 1 << 20 });
  let failure: unknown = null;
  file.on('error', (e) => (failure ??= new InputError(`${path}: cannot read ${what} (${ioReason(e)})`)));
  if (bytesRead === 2 && magic[0] === 0x1f && magic[1] === 0x8b) {
    const unzip = createGunzip({ chunkSize: 1 << 20 });
    unzip.on('error', (e) => (failure ??= new InputError(`${path}: corrupt gzip data (${e.message})`)));
    return { stream: file.pipe(unzip), failure: () => failure };
  }
  return { stream: file, failure: () => failure };
}

interface IdxHeader {
  type: number;
  dims: number[];
  itemBytes: number;
  headerBytes: number;
}

async function readHeader(r: ByteReader, path: string): Promise<IdxHeader> {
  const m = await r.read(4);
  if (m.length < 4 || m[0] !== 0 || m[1] !== 0 || !ITEM_BYTES[m[2]] || m[3] === 0) throw new InputError(`${path}: not an IDX file (bad magic number)`);
  const type = m[2], ndim = m[3];
  const d = await r.read(4 * ndim);
  if (d.length < 4 * ndim) throw new InputError(`${path}: truncated IDX header`);
  const dims = Array.from({ length: ndim }, (_, i) => d.readUInt32BE(4 * i));
  return { type, dims, itemBytes: ITEM_BYTES[type], headerBytes: 4 + 4 * ndim };
}

/** Item values of `type` into a float32 row store (ubyte pixels scaled to [0, 1]). */
function decode(b: Buffer, type: number, into: Float32Array, count: number, path: string, first: number): void {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < count; i++) {
    let v: number;
    switch (type) {
      case 0x08: v = b[i] / 255; break;
      case 0x09: v = view.getInt8(i); break;
      case 0x0b: v = view.getInt16(2 * i); break;
      case 0x0c: v = view.getInt32(4 * i); break;
      case 0x0d: v = view.getFloat32(4 * i); break;
      default: v = view.getFloat64(8 * i);
    }
    const f = into[i] = v;
    if (f - f !== 0) throw new InputError(`${path}: value ${first + i} is ${v}, not a finite float32`);
  }
}

export interface IdxSourceOptions {
  /** Rows per batch handed to fit (default 4096). */
  batchRows?: number;
}

/** An IDX pair as a BatchSource: what its headers say. */
export interface IdxSource extends BatchSource {
  readonly rows: number;
  /** Values per item (the product of the dimensions after the first). */
  readonly inputs: number;
  readonly dims: number[];
}

/**
 * An IDX images file and its labels file (1-dimensional, integers: class indices as `fit` takes
 * them) as a source of batches, both read as streams, a batch at a time. ubyte pixels are scaled
 * to [0, 1]. A truncated file, or one longer than its header says, stops the pass naming it.
 */
export async function idxSource(imagesPath: string, labelsPath: string, opts: IdxSourceOptions = {}): Promise<IdxSource> {
  const batchRows = opts.batchRows ?? 4096;
  if (!Number.isInteger(batchRows) || batchRows < 1) throw new InputError(`batchRows: must be a positive integer, got ${String(opts.batchRows)}`);
  const headers = async (): Promise<{ ir: ByteReader; lr: ByteReader; ih: IdxHeader; lh: IdxHeader; fails: (() => unknown)[] }> => {
    const is = await openStream(imagesPath, 'IDX images file'), ls = await openStream(labelsPath, 'IDX labels file');
    const ir = new ByteReader(is.stream), lr = new ByteReader(ls.stream);
    try {
      const ih = await readHeader(ir, imagesPath), lh = await readHeader(lr, labelsPath);
      if (ih.dims.length < 2) throw new InputError(`${imagesPath}: a 1-dimensional IDX file (labels?); give the images file first and the labels second`);
      if (lh.dims.length !== 1) throw new InputError(`${labelsPath}: labels must be a 1-dimensional IDX file, got ${lh.dims.join('×')}`);
      if (lh.type === 0x0d || lh.type === 0x0e) throw new InputError(`${labelsPath}: labels must be integers`);
      if (lh.dims[0] !== ih.dims[0]) throw new InputError(`${labelsPath}: ${lh.dims[0]} labels for ${ih.dims[0]} images in ${imagesPath}; they must match`);
      return { ir, lr, ih, lh, fails: [is.failure, ls.failure] };
    } catch (e) {
      await ir.close();
      await lr.close();
      throw e;
    }
  };
  const first = await headers();
  await first.ir.close();
  await first.lr.close();
  const rows = first.ih.dims[0], inputs = first.ih.dims.slice(1).reduce((a, b) => a * b, 1);
  if (rows === 0) throw new InputError(`${imagesPath}: no data rows (the IDX file holds 0 items)`);

  async function* pass(): AsyncGenerator<Batch> {
    const { ir, lr, ih, lh, fails } = await headers();
    try {
      for (let at = 0; at < rows; at += batchRows) {
        const m = Math.min(batchRows, rows - at);
        const xb = await ir.read(m * inputs * ih.itemBytes), yb = await lr.read(m * lh.itemBytes);
        for (const f of fails) if (f()) throw f();
        if (xb.length < m * inputs * ih.itemBytes) {
          throw new InputError(`${imagesPath}: IDX size mismatch: the header (${ih.dims.join('×')}) needs ${ih.headerBytes + rows * inputs * ih.itemBytes} bytes, the file ends after ${ir.offset} (truncated?)`);
        }
        if (yb.length < m * lh.itemBytes) {
          throw new InputError(`${labelsPath}: IDX size mismatch: the header (${lh.dims.join('×')}) needs ${lh.headerBytes + rows * lh.itemBytes} bytes, the file ends after ${lr.offset} (truncated?)`);
        }
        const x = new Float32Array(m * inputs), yf = new Float32Array(m);
        decode(xb, ih.type, x, m * inputs, imagesPath, at * inputs);
        decode(yb, lh.type, yf, m, labelsPath, at);
        // ubyte labels were scaled like pixels by decode; undo that exactly
        const y = Int32Array.from(yf, (v) => (lh.type === 0x08 ? Math.round(v * 255) : v));
        yield { x: { data: x, shape: [m, inputs] }, y };
      }
      if ((await ir.read(1)).length > 0) throw new InputError(`${imagesPath}: IDX size mismatch: bytes after the ${rows} items the header announces`);
      if ((await lr.read(1)).length > 0) throw new InputError(`${labelsPath}: IDX size mismatch: bytes after the ${rows} labels the header announces`);
    } finally {
      await ir.close();
      await lr.close();
    }
  }

  return { rows, inputs, dims: first.ih.dims, [Symbol.asyncIterator]: () => pass() };
}

// Fashion-MNIST from its IDX files (gzip), looked for in a given folder, Debian's
// dataset-fashion-mnist package, or the shared datasets folder beside the repository.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { FashionData } from './systems/types.js';

export const FASHION_FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;

/** Folders searched, in order: the option, Debian's package, ../shared/datasets beside the repo. */
export function fashionCandidates(option: string | undefined, root: string): string[] {
  const c = [];
  if (option) c.push(resolve(option));
  c.push('/usr/share/datasets/fashion-mnist', resolve(root, '..', 'shared', 'datasets', 'fashion-mnist'));
  return c;
}

export class DatasetMissingError extends Error {
  override name = 'DatasetMissingError';
}

/** The first folder that holds all four files, or an error naming every folder looked in. */
export function findFashion(option: string | undefined, root: string): string {
  const tried = fashionCandidates(option, root);
  for (const dir of tried) {
    if (Object.values(FASHION_FILES).every((f) => existsSync(join(dir, f)))) return dir;
    if (option && dir === resolve(option)) {
      const missing = Object.values(FASHION_FILES).filter((f) => !existsSync(join(dir, f)));
      throw new DatasetMissingError(`Fashion-MNIST: --fashion ${option}: missing ${missing.join(', ')} in ${dir}`);
    }
  }
  throw new DatasetMissingError(`Fashion-MNIST not found: looked for ${Object.values(FASHION_FILES).join(', ')} in ${tried.join(', ')}; `
    + 'install Debian\'s dataset-fashion-mnist or pass --fashion PATH');
}

/** Reads one IDX file: big-endian magic (0x0000, type 0x08 = ubyte, dims), dims, then the bytes. */
export function readIdx(path: string): { dims: number[]; data: Uint8Array } {
  const buf = gunzipSync(readFileSync(path));
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08) {
    throw new Error(`${path}: not an IDX file of unsigned bytes (magic ${buf.subarray(0, 4).toString('hex')})`);
  }
  const nd = buf[3];
  const dims: number[] = [];
  for (let i = 0; i < nd; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const off = 4 + 4 * nd, count = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== off + count) throw new Error(`${path}: ${buf.length - off} data bytes, dims ${dims.join('x')} need ${count}`);
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + off, count) };
}

/** Pixels / 255 as float32 rows, labels as class indices; `limit` keeps the first rows (quick runs). */
export function loadFashion(dir: string, limit?: { train: number; test: number }): FashionData {
  const images = (f: string, max: number): [Float32Array, number] => {
    const { dims, data } = readIdx(join(dir, f));
    if (dims.length !== 3 || dims[1] !== 28 || dims[2] !== 28) throw new Error(`${f}: expected n×28×28 images, got ${dims.join('x')}`);
    const rows = Math.min(dims[0], max), x = new Float32Array(rows * 784);
    for (let i = 0; i < x.length; i++) x[i] = data[i] / 255;
    return [x, rows];
  };
  const labels = (f: string, rows: number): Int32Array => {
    const { dims, data } = readIdx(join(dir, f));
    if (dims.length !== 1 || dims[0] < rows) throw new Error(`${f}: expected at least ${rows} labels, got ${dims.join('x')}`);
    const y = Int32Array.from(data.subarray(0, rows));
    if (y.some((v) => v > 9)) throw new Error(`${f}: labels must be 0..9`);
    return y;
  };
  const [trainX, trainRows] = images(FASHION_FILES.trainImages, limit?.train ?? Infinity);
  const [testX, testRows] = images(FASHION_FILES.testImages, limit?.test ?? Infinity);
  return { trainX, trainY: labels(FASHION_FILES.trainLabels, trainRows), testX, testY: labels(FASHION_FILES.testLabels, testRows), trainRows, testRows, dir };
}

// Copying a batch's rows (in a shuffled order, normalized if the model normalizes) from the
// caller's arrays into a plan's staging buffer in backend memory.
import type { Backend, Buf } from '../backends/backend.js';
import type { Matrix } from '../data.js';
import type { Normalization } from '../spec.js';

/** Staging copies of at least this many floats go through the backend's gatherRows, if it has one. */
const GATHER_MIN = 1024;

/** Rows order[start + i] (start + i without an order), i < m, of src into dst; normalized if asked. */
export function stageRows(backend: Backend, dst: Buf, src: Matrix, cols: number, start: number, m: number, order?: Uint32Array,
  norm?: Normalization): void {
  // A backend's gather is a call of a few hundred nanoseconds: worth it for real batches, not
  // for tiny-xor's 4 × 2 (a whole compiled step there is about 150 ns).
  const gather = backend.gatherRows;
  if (gather && !norm && m * cols >= GATHER_MIN) {
    gather.call(backend, dst, src.data, order ?? null, start, m, cols);
    return;
  }
  const d = dst.data, s = src.data;
  if (!order && !norm) {
    // rows in order: one contiguous run, one loop (not a subarray and set: an object a step)
    const from = start * cols, n = m * cols;
    for (let k = 0; k < n; k++) d[k] = s[from + k];
    return;
  }
  for (let i = 0; i < m; i++) {
    const from = (order ? order[start + i] : start + i) * cols, to = i * cols;
    if (norm) {
      for (let j = 0; j < cols; j++) d[to + j] = (s[from + j] - norm.mean[j]) / norm.std[j];
    } else {
      for (let j = 0; j < cols; j++) d[to + j] = s[from + j];
    }
  }
}

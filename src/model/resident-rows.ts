// A fit's training rows copied once into backend memory, for off-thread steps that gather their
// own batches (the gatherRows op) instead of the event loop staging each one.
import type { Backend, Buf } from '../backends/backend.js';
import { GATHER_MAX_ROWS } from '../backends/program.js';
import type { Matrix } from '../data.js';
import { MAX_BUFFER_FLOATS, type Normalization } from '../spec.js';
import type { ResidentRows } from './plan.js';

/**
 * The rows of X (normalized, as stage() normalizes them), Y and W (or none) copied into backend
 * memory, for trainStepAsync to gather its batches on the backend's threads: rows·(inputs +
 * outputs + 1 if weighted) floats more, for as long as the caller keeps them (a fit: until it
 * ends). Null where a gatherRows op cannot address them (more than 2^24 rows: the row numbers
 * are floats) or the backend has no room; the batches are then staged on the thread.
 */
export function residentRows(backend: Backend, X: Matrix, Y: Matrix, W: Float32Array | null, norm: Normalization | undefined): ResidentRows | null {
  const rows = X.shape[0], inp = X.shape[1], outs = Y.shape[1];
  if (rows > GATHER_MAX_ROWS || rows * inp > MAX_BUFFER_FLOATS || rows * outs > MAX_BUFFER_FLOATS) return null;
  let x: Buf, y: Buf, w: Buf | null;
  try {
    x = backend.alloc(rows * inp);
    y = backend.alloc(rows * outs);
    w = W ? backend.alloc(rows) : null;
  } catch {
    return null; // no room for a copy: staging on the thread needs none
  }
  // views after the last alloc (a wasm memory may have grown)
  const xd = x.data, src = X.data;
  if (norm) {
    // the expression of stageRows, so that a gathered row has the bits of a staged one
    for (let r = 0; r < rows; r++) {
      const at = r * inp;
      for (let j = 0; j < inp; j++) xd[at + j] = (src[at + j] - norm.mean[j]) / norm.std[j];
    }
  } else {
    xd.set(src.length === rows * inp ? src : src.subarray(0, rows * inp));
  }
  y.data.set(Y.data.length === rows * outs ? Y.data : Y.data.subarray(0, rows * outs));
  if (w && W) w.data.set(W.subarray(0, rows));
  return { x, y, w, rows };
}

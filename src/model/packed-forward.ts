// Model.predict's forward pass on weights packed once, as the serving Predictor
// (src/infer/predictor.ts) runs it: where the backend packs weights (WeightPacker), a batch of more
// than a few rows reads each dense layer's w from a copy in the blocked GEMM's layout, instead of
// the GEMM packing w again on every call. A copy is only as good as the weights it was packed
// from, so it is tagged with the version of the params it holds: the network counts every change
// of its params (Network.paramsChanged), and the first predict after a change packs again, into
// the same buffers. denseForwardPacked has denseForward's bits, so predictions are those of the
// forward program.
import type { Backend, PackedWeights, WeightPacker } from '../backends/backend.js';
import type { LayerInfo, Plan } from './plan.js';

/** Up to this many rows, the backends' few-row (GEMV) path reads w as it is: no packed copy is read. */
export const GEMV_ROWS = 4;

export class PackedForward {
  private readonly packed: PackedWeights[] = [];
  /** The params version the copies were packed from (−1: not packed yet). */
  private packedVersion = -1;

  private constructor(private readonly backend: Backend & WeightPacker, private readonly layers: readonly LayerInfo[]) {}

  /** A packed forward pass of these dense layers, or null where the backend does not pack weights. */
  static of(backend: Backend, layers: readonly LayerInfo[]): PackedForward | null {
    return backend.packWeights && backend.denseForwardPacked ? new PackedForward(backend as Backend & WeightPacker, layers) : null;
  }

  /** Whether it is packed from params version `version` (for tests). */
  holds(version: number): boolean {
    return this.packedVersion === version;
  }

  /** The forward pass of the rows in p.x into p.acts, packing first unless the copies hold params `version`. */
  run(p: Plan, version: number): void {
    const b = this.backend, layers = this.layers;
    if (this.packedVersion !== version) {
      for (let l = 0; l < layers.length; l++) {
        const L = layers[l];
        this.packed[l] = b.packWeights(L.w, L.inp, L.out, this.packed[l]);
      }
      this.packedVersion = version;
    }
    let x = p.x;
    for (let l = 0; l < layers.length; l++) {
      const L = layers[l], y = p.acts[l];
      b.denseForwardPacked(y, x, L.w, this.packed[l], L.b, p.m, L.inp, L.out, L.act, L.alpha);
      x = y;
    }
  }
}

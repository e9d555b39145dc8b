// Correct predictions among a batch's rows, counted (or, with row weights, weighed) by the rule of
// the loss: argmax for softmax outputs, the 0.5 threshold otherwise. One function per rule and
// case: V8 compiled two rules in one loop, the unused one included, into code that boxed a number
// on every call.

/** Rows (of m) where the largest output and the largest target are in the same column. */
export function argmaxMatches(a: Float32Array, y: Float32Array, m: number, outs: number): number {
  let c = 0;
  for (let i = 0; i < m; i++) {
    let best = 0, target = 0;
    for (let j = 1; j < outs; j++) {
      if (a[i * outs + j] > a[i * outs + best]) best = j;
      if (y[i * outs + j] > y[i * outs + target]) target = j;
    }
    if (best === target) c++;
  }
  return c;
}

/** Rows (of m) where every output is on the same side of 0.5 as its target. */
export function thresholdMatches(a: Float32Array, y: Float32Array, m: number, outs: number): number {
  let c = 0;
  for (let i = 0; i < m; i++) {
    let all = true;
    for (let j = 0; j < outs; j++) if ((a[i * outs + j] >= 0.5) !== (y[i * outs + j] >= 0.5)) all = false;
    if (all) c++;
  }
  return c;
}

/** The weights w of the rows (of m) whose largest output and largest target share a column, summed. */
export function argmaxMatchesWeighted(a: Float32Array, y: Float32Array, w: Float32Array, m: number, outs: number): number {
  let c = 0;
  for (let i = 0; i < m; i++) {
    let best = 0, target = 0;
    for (let j = 1; j < outs; j++) {
      if (a[i * outs + j] > a[i * outs + best]) best = j;
      if (y[i * outs + j] > y[i * outs + target]) target = j;
    }
    if (best === target) c += w[i];
  }
  return c;
}

/** The weights w of the rows (of m) with every output on its target's side of 0.5, summed. */
export function thresholdMatchesWeighted(a: Float32Array, y: Float32Array, w: Float32Array, m: number, outs: number): number {
  let c = 0;
  for (let i = 0; i < m; i++) {
    let all = true;
    for (let j = 0; j < outs; j++) if ((a[i * outs + j] >= 0.5) !== (y[i * outs + j] >= 0.5)) all = false;
    if (all) c += w[i];
  }
  return c;
}

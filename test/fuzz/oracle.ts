// The oracle shared by the kernel fuzzer and its tests: what a clear boundary error looks like,
// and how a backend's results are compared with the js reference.

/**
 * A clear boundary error is a TypeError or RangeError whose message starts with the kernel's name
 * and then names the argument that is wrong:
 *
 *     /^<kernel>: <argument>\b/             e.g. "gemm: c has 11 floats, fewer than m*n = 12"
 *
 * or, for arguments whose name has 3 or more letters (so that it cannot be an ordinary word such
 * as "a"), names it later in the message:
 *
 *     /^<kernel>: .*\b<argument>\b/         e.g. "gatherRows: rows [3, 6) are not all in src (5 rows of 4)"
 *
 * A compiled step's run() is named "run" or "compiled step". When a mutation can be blamed on more
 * than one argument (a size one too large makes a buffer too short; two buffers overlap), any of
 * them may be named.
 */
export function errorProblem(e: unknown, kernel: string, names: readonly string[]): string | null {
  if (!(e instanceof TypeError || e instanceof RangeError)) {
    const what = e instanceof Error ? `${e.name}: ${e.message}` : `a non-Error ${typeof e} ${String(e)}`;
    return `threw ${what} (expected a TypeError or RangeError)`;
  }
  const msg = e.message;
  if (!clearMessage(msg, kernel, names)) {
    return `message ${JSON.stringify(msg.slice(0, 300))} does not name the kernel and the argument (${expectedPattern(kernel, names)})`;
  }
  return null;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const kernelAlt = (kernel: string): string => (kernel === 'run' ? '(?:run|compiled step)' : escape(kernel));

export function expectedPattern(kernel: string, names: readonly string[]): string {
  return `/^${kernelAlt(kernel)}: (?:${names.map(escape).join('|')})\\b/`;
}

export function clearMessage(msg: string, kernel: string, names: readonly string[]): boolean {
  const k = kernelAlt(kernel);
  if (new RegExp(`^${k}: (?:${names.map(escape).join('|')})\\b`).test(msg)) return true;
  const long = names.filter((n) => n.length >= 3);
  return long.length > 0 && new RegExp(`^${k}: .*\\b(?:${long.map(escape).join('|')})\\b`).test(msg);
}

/** Float32 results against the float64-accumulating reference: |x − ref| ≤ 1e-4 + 1e-3·|ref|. */
export const close = (x: number, ref: number): boolean =>
  Object.is(x, ref) || Math.abs(x - ref) <= 1e-4 + 1e-3 * Math.abs(ref);

/** The first index where two arrays differ beyond `close` (NaN matches only NaN), or -1. */
export function firstMismatch(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (got.length !== ref.length) return Math.min(got.length, ref.length);
  for (let i = 0; i < got.length; i++) {
    if (Number.isNaN(ref[i]) ? !Number.isNaN(got[i]) : !close(got[i], ref[i])) return i;
  }
  return -1;
}

/** Bit-exact copy and comparison, for "wrote nothing" (NaN payloads included). */
export const snapshot = (a: Float32Array): Uint32Array => new Uint32Array(Float32Array.from(a).buffer);
export function sameBits(a: Float32Array, before: Uint32Array): boolean {
  const now = new Uint32Array(a.buffer, a.byteOffset, a.length);
  if (now.length !== before.length) return false;
  for (let i = 0; i < now.length; i++) if (now[i] !== before[i]) return false;
  return true;
}

// The gatherRows op (src/backends/abi.ts OPS.gatherRows): a batch staged inside a program. Row
// idx[i] of src (rows, cols) into row i of dst (m, cols), i < m; idx holds the row numbers as
// floats (exact integers below 2^24). Every row number is checked before anything is copied.

/**
 * Copies the rows and returns -1, or returns the first i whose idx[i] is not an integer in
 * [0, rows) having copied nothing. dst, src, idx are byte addresses.
 */
export function gatherRows(dst: usize, src: usize, idx: usize, m: i32, rows: i32, cols: i32): i32 {
  for (let i = 0; i < m; i++) {
    const r = <f64>load<f32>(idx + (<usize>i << 2)); // exact; NaN fails every test
    if (!(r >= 0 && r < <f64>rows && Math.floor(r) == r)) return i;
  }
  const bytes = <usize>cols << 2;
  for (let i = 0; i < m; i++) {
    const r = <usize><u32>load<f32>(idx + (<usize>i << 2));
    memory.copy(dst + <usize>i * bytes, src + r * bytes, bytes);
  }
  return -1;
}

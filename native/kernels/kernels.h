// The per-ISA kernel table. Each ISA file (f32-gemm-<MR>x<NR>-<isa>.cc) is compiled with its own target flags
// and fills one KernelTable; dispatch.cc picks the newest one the CPU runs. Everything outside
// native/kernels/ is portable C++ that only calls through this table.
#pragma once
#include <cstddef>
#include <cassert>
#include <cstdint>

#include "../abi.h"  // the activation and loss codes, EPS_PROB

namespace deltaprop {

// What to do with a finished tile of C (after the last k block), while it is still in L1.
enum EpiKind : int { EPI_NONE = 0, EPI_BIAS_ACT = 1, EPI_MUL_DERIV = 2 };
struct Epilogue {
  EpiKind kind = EPI_NONE;
  const float* bias = nullptr;  // EPI_BIAS_ACT: c[i][j] = act(c[i][j] + bias[j]); softmax adds bias only
  int act = ACT_LINEAR;
  float alpha = 0.f;            // leaky-ReLU slope
  const float* aux = nullptr;   // EPI_MUL_DERIV: c[i][j] *= g'(aux[i][j]) (aux is the saved output)
  std::ptrdiff_t ldaux = 0;
};

// Micro-kernel contract (BLIS): c (mr,nr) tile with row stride ldc, mr <= MR, nr <= NR;
// a is packed (kc, MR): MR values per k step; b is packed (kc, NR): NR values per k step;
// both padded with zeros past the edge. c = alpha·a·b + beta·c over the valid mr×nr part only.
// When beta == 0, c is not read (it may hold NaN). kc may be 0 (then c = beta·c, or 0).
// Debug builds (no NDEBUG) check this contract on entry to every micro-kernel, with ALIGN the
// byte alignment its packed-b loads need; release builds compile the checks out (NDEBUG).
#define DP_UKR_CONTRACT(MR, NR, ALIGN, kc, a, b, c, ldc, mr, nr)                                      \
  assert((kc) >= 0 && (mr) >= 0 && (mr) <= (MR) && (nr) >= 0 && (nr) <= (NR) && (ldc) >= (nr));   \
  assert((c) != nullptr && ((kc) == 0 || ((a) != nullptr && (b) != nullptr)));                    \
  assert((kc) == 0 || reinterpret_cast<std::uintptr_t>(b) % (ALIGN) == 0)
using UkrFn = void (*)(std::ptrdiff_t kc, const float* a, const float* b, float* c, std::ptrdiff_t ldc,
                       int mr, int nr, float alpha, float beta);

struct KernelTable {
  const char* isa;
  int mr, nr;      // register tile
  int mc, kc, nc;  // cache blocks: a (mc,kc) block in L2, b (kc,nr) sliver in L1, b (kc,nc) in L3
  UkrFn ukr;
  // Unpacked GEMM for small problems, where packing costs more than it saves. Same semantics as
  // the public gemm, with a's leading dimension lda (k, or m when ta, for a whole matrix);
  // single-threaded. Rows of c do not depend on each other or on m.
  void (*gemm_small)(bool ta, bool tb, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, float alpha,
                     const float* a, std::ptrdiff_t lda, const float* b, float beta, float* c);
  // c (m,n) = alpha·a·b + beta·c for m <= gemv_rows, neither operand transposed, unpacked (gemv.inc):
  // a (m,k) row stride lda, b (k,n) row stride ldb, c row stride ldc; beta == 0 never reads c.
  // Single-threaded; an element's bits do not depend on n or on which columns a call covers.
  void (*gemv)(std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k, float alpha, const float* a, std::ptrdiff_t lda,
               const float* b, std::ptrdiff_t ldb, float beta, float* c, std::ptrdiff_t ldc);
  int gemv_rows;
  // Packing of rows stored side by side (op(a) rows when !ta, op(b) columns when tb): for p < kc
  // and r < lanes, dst[p·W + r] = r < rows ? src[r·ld + p] : 0, with rows <= lanes <= 16. A
  // transpose in registers; nullptr where the portable loop in gemm.cc does it.
  void (*pack_rows)(const float* src, std::ptrdiff_t ld, int rows, std::ptrdiff_t kc, int W, int lanes, float* dst);
  // Widest n (0: none) for which gemm_small beats the packed path at any size when !tb: the
  // packed tile is NR wide, so a 10-wide output would waste most of it.
  int narrow_n;
  // Epilogue over rows [0,mr) × cols [0,nr) of a tile at c (row stride ldc); col0/row0 locate
  // the tile in the whole matrix for bias and aux.
  void (*epilogue)(const Epilogue& e, float* c, std::ptrdiff_t ldc, std::ptrdiff_t row0,
                   std::ptrdiff_t col0, int mr, int nr);
  void (*softmax_rows)(float* y, std::ptrdiff_t m, std::ptrdiff_t n);
  void (*col_sums)(float* db, const float* dz, std::ptrdiff_t m, std::ptrdiff_t n, float scale);
  double (*loss_delta)(float* dz, const float* a, const float* y, std::ptrdiff_t m, std::ptrdiff_t n,
                       int loss, int act, float alpha, float delta, const float* weights);
  double (*sum_squares)(const float* g, std::ptrdiff_t n);
  void (*sgd_step)(float* p, const float* g, std::ptrdiff_t n, float lr, float gs, float wd, std::ptrdiff_t dc);
  void (*momentum_step)(float* p, const float* g, float* v, std::ptrdiff_t n, float lr, float gs, float mu,
                        bool nesterov, float wd, std::ptrdiff_t dc);
  void (*adam_step)(float* p, const float* g, float* m, float* v, std::ptrdiff_t n, float lr, float gs,
                    float b1, float b2, float eps, float bc1, float bc2, float wd, bool decoupled,
                    std::ptrdiff_t dc);
  // Vector exp/tanh/sigmoid over arrays (exposed for the accuracy tests).
  void (*vexp)(float* y, const float* x, std::ptrdiff_t n);
  void (*vact)(float* y, const float* x, std::ptrdiff_t n, int act, float alpha);
  // The layers beyond dense (dropout.inc, normalization.inc; backend.ts documents them).
  void (*dropout_forward)(float* y, const float* x, std::ptrdiff_t n, float rate, uint32_t seed, uint32_t step,
                          uint32_t layer);
  void (*dropout_backward)(float* dx, const float* dy, const float* x, std::ptrdiff_t n, float rate, uint32_t seed,
                           uint32_t step, uint32_t layer, int prev_act, float alpha);
  void (*batch_norm_forward)(float* y, const float* x, const float* gamma, const float* beta, float* run_mean,
                             float* run_var, float* mean, float* inv_std, std::ptrdiff_t m, std::ptrdiff_t n,
                             bool update, float momentum, float eps, int act, float alpha);
  void (*batch_norm_inference)(float* y, const float* x, const float* gamma, const float* beta, const float* run_mean,
                               const float* run_var, std::ptrdiff_t m, std::ptrdiff_t n, float eps, int act, float alpha);
  void (*batch_norm_backward)(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                              const float* gamma, const float* mean, const float* inv_std, std::ptrdiff_t m,
                              std::ptrdiff_t n, float scale, int prev_act, float alpha);
  void (*layer_norm_forward)(float* y, const float* x, const float* gamma, const float* beta, float* mean,
                             float* inv_std, std::ptrdiff_t m, std::ptrdiff_t n, float eps, int act, float alpha);
  void (*layer_norm_backward)(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                              const float* gamma, const float* mean, const float* inv_std, std::ptrdiff_t m,
                              std::ptrdiff_t n, float scale, int prev_act, float alpha);
};

// Filled by each ISA file; nullptr when that ISA was not compiled into this binary.
const KernelTable* table_avx512();
const KernelTable* table_avx2_fma();
const KernelTable* table_neon();
const KernelTable* table_scalar();

}  // namespace deltaprop

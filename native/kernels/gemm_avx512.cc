// AVX-512 kernels. Micro-kernel shape: c (14,32) = alpha·a (14,kc)·b (kc,32) + beta·c, with
// a packed 14 per k step and b packed 32 per k step (two zmm). 28 zmm accumulators + 2 for b +
// broadcasts fill the 32 registers; one broadcast feeds two FMAs. Edges in n use masks; edges in
// m skip rows at the store. This file alone is compiled with -mavx512f (binding.gyp).
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace deltaprop {
namespace {

#include "activation.inc"
#include "loss.inc"
#include "optim.inc"
#include "gemm_small.inc"

constexpr int MR = 14, NR = 32;

// ROWS <= MR rows of the tile: the full kernel, and narrower ones for the last rows of a matrix
// whose m is not a multiple of MR (m = 64 = 4·14 + 8 would otherwise compute 6 rows of zeros).
// a keeps the MR-wide packing either way.
template <int ROWS>
void ukr_rows(idx kc, const float* a, const float* b, float* c, idx ldc, int mr, int nr, float alpha,
              float beta) {
  __m512 acc[ROWS][2];
#pragma GCC unroll 14
  for (int i = 0; i < ROWS; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  // c rows are far apart (ldc): start fetching them while the k loop runs
  for (int i = 0; i < mr; i++) {
    _mm_prefetch((const char*)(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch((const char*)(c + i * ldc + 16), _MM_HINT_T0);
  }
  for (idx p = 0; p < kc; p++) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
    for (int i = 0; i < ROWS; i++) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += MR;
    b += NR;
  }
  const __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr <= 16 ? (__mmask16)0 : (__mmask16)((1u << (nr - 16)) - 1);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 14
  for (int i = 0; i < ROWS; i++) {
    if (i >= mr) break;
    float* r = c + i * ldc;
    __m512 x0 = _mm512_mul_ps(va, acc[i][0]), x1 = _mm512_mul_ps(va, acc[i][1]);
    if (beta != 0.f) {
      x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, r), x0);
      x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, r + 16), x1);
    }
    _mm512_mask_storeu_ps(r, m0, x0);
    _mm512_mask_storeu_ps(r + 16, m1, x1);
  }
}

void ukr(idx kc, const float* a, const float* b, float* c, idx ldc, int mr, int nr, float alpha,
         float beta) {
  if (mr > 8) ukr_rows<MR>(kc, a, b, c, ldc, mr, nr, alpha, beta);
  else if (mr > 4) ukr_rows<8>(kc, a, b, c, ldc, mr, nr, alpha, beta);
  else ukr_rows<4>(kc, a, b, c, ldc, mr, nr, alpha, beta);
}

#define DP_ISA_NAME "avx512"
#define DP_MR MR
#define DP_NR NR
#define DP_MC 168
#define DP_KC 512  // measured: 512 beats 256 for n >= 512 (half the passes over c)
#define DP_NC 4096
#include "table.inc"

}  // namespace
const KernelTable* table_avx512() { return &kTable; }
}  // namespace deltaprop

#else
namespace deltaprop { const KernelTable* table_avx512() { return nullptr; } }
#endif

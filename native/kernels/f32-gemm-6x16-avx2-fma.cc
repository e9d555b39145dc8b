// AVX2+FMA kernels. Micro-kernel shape: c (6,16) = alpha·a (6,kc)·b (kc,16) + beta·c, a packed
// 6 per k step, b packed 16 per k step (two ymm): 12 ymm accumulators, 2 for b, 1 broadcast.
// Only the edges in n use maskload/maskstore. Compiled with -mavx2 -mfma (binding.gyp).
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace deltaprop {
namespace {

#include "activation.inc"
#include "loss.inc"
#include "optim.inc"
#include "gemm_small.inc"
#include "gemv.inc"
#include "dropout.inc"
#include "normalization.inc"

constexpr int MR = 6, NR = 16;

inline __m256i lane_mask(int n) {  // first n of 8 lanes on (n may be <= 0 or >= 8)
  const __m256i idx8 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx8);
}

void f32_gemm_ukernel_6x16__avx2_fma(idx kc, const float* a, const float* b, float* c, idx ldc, int mr, int nr,
    float alpha, float beta) {
  DP_UKR_CONTRACT(MR, NR, 32, kc, a, b, c, ldc, mr, nr);
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (idx p = 0; p < kc; p++) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += MR;
    b += NR;
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  if (nr == NR) {
    // full width: plain loads and stores; AMD's masked store is microcoded, a dozen cycles each
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      if (i >= mr) break;
      float* r = c + i * ldc;
      __m256 x0 = _mm256_mul_ps(va, acc[i][0]), x1 = _mm256_mul_ps(va, acc[i][1]);
      if (beta != 0.f) {
        x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(r), x0);
        x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(r + 8), x1);
      }
      _mm256_storeu_ps(r, x0);
      _mm256_storeu_ps(r + 8, x1);
    }
    return;
  }
  const __m256i m0 = lane_mask(nr), m1 = lane_mask(nr - 8);
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) {
    if (i >= mr) break;
    float* r = c + i * ldc;
    __m256 x0 = _mm256_mul_ps(va, acc[i][0]), x1 = _mm256_mul_ps(va, acc[i][1]);
    if (beta != 0.f) {
      x0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(r, m0), x0);
      x1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(r + 8, m1), x1);
    }
    _mm256_maskstore_ps(r, m0, x0);
    _mm256_maskstore_ps(r + 8, m1, x1);
  }
}

#define PACK_ROWS nullptr
#define DP_ISA_NAME "avx2-fma"
#define DP_MR MR
#define DP_NR NR
#define DP_MC 144
#define DP_KC 256
#define DP_NC 4096
#define DP_UKR f32_gemm_ukernel_6x16__avx2_fma
#include "table.inc"

}  // namespace
const KernelTable* table_avx2_fma() { return &kTable; }
}  // namespace deltaprop

#else
namespace deltaprop { const KernelTable* table_avx2_fma() { return nullptr; } }
#endif

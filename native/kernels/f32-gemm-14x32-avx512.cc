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
#include "gemv.inc"
#include "dropout.inc"
#include "normalization.inc"

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

void f32_gemm_ukernel_14x32__avx512(idx kc, const float* a, const float* b, float* c, idx ldc, int mr, int nr,
    float alpha, float beta) {
  DP_UKR_CONTRACT(MR, NR, 64, kc, a, b, c, ldc, mr, nr);
  if (mr > 8) ukr_rows<MR>(kc, a, b, c, ldc, mr, nr, alpha, beta);
  else if (mr > 4) ukr_rows<8>(kc, a, b, c, ldc, mr, nr, alpha, beta);
  else ukr_rows<4>(kc, a, b, c, ldc, mr, nr, alpha, beta);
}

// Packing of rows stored side by side (kernels.h pack_rows), 16 k steps at a time: one masked
// load per row, a 16×16 transpose in registers (4 rounds of 16 shuffles), one masked store per k
// step. The portable loop reads one float per row at a time.
static inline __m512 lo64(__m512 a, __m512 b) { return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b))); }
static inline __m512 hi64(__m512 a, __m512 b) { return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b))); }

// GCC 12 takes the undefined pass-through vector inside the shuffle intrinsics for an uninitialized read.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// r[i] lane j → r[j] lane i
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    r[4 * i] = lo64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = hi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = lo64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = hi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int i = 0; i < 2; i++) {
    for (int j = 0; j < 4; j++) {
      t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0x88);
      t[8 * i + 4 + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0xdd);
    }
  }
  for (int j = 0; j < 8; j++) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
  }
}

void pack_rows(const float* src, idx ld, int rows, idx kc, int W, int lanes, float* dst) {
  const __mmask16 out = (__mmask16)((1u << lanes) - 1);
  for (idx p = 0; p < kc; p += 16) {
    const int pn = (int)(kc - p < 16 ? kc - p : 16);
    const __mmask16 in = (__mmask16)((1u << pn) - 1);
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)  // rows past `rows` load nothing (a masked-off load never faults)
      r[i] = _mm512_maskz_loadu_ps(i < rows ? in : (__mmask16)0, src + (i < rows ? i * ld + p : 0));
    transpose16(r);
    for (int q = 0; q < pn; q++) _mm512_mask_storeu_ps(dst + (p + q) * W, out, r[q]);
  }
}
#pragma GCC diagnostic pop
#define PACK_ROWS pack_rows

#define DP_ISA_NAME "avx512"
#define DP_MR MR
#define DP_NR NR
#define DP_MC 168
#define DP_KC 512  // measured: 512 beats 256 for n >= 512 (half the passes over c)
#define DP_NC 4096
#define DP_UKR f32_gemm_ukernel_14x32__avx512
#include "table.inc"

}  // namespace
const KernelTable* table_avx512() { return &kTable; }
}  // namespace deltaprop

#else
namespace deltaprop { const KernelTable* table_avx512() { return nullptr; } }
#endif

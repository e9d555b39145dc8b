// NEON kernels (arm64). Micro-kernel shape: c (8,8) = alpha·a (8,kc)·b (kc,8) + beta·c: a packed
// 8 per k step (two q registers), b packed 8 per k step (two q): 16 accumulators, FMA by lane.
// Edges in n go through a small stack tile. NEON is baseline on arm64: no extra flags.
#include "kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

namespace deltaprop {
namespace {

#include "activation.inc"
#include "loss.inc"
#include "optim.inc"
#include "gemm_small.inc"
#include "gemv.inc"
#include "dropout.inc"
#include "normalization.inc"

constexpr int MR = 8, NR = 8;

void f32_gemm_ukernel_8x8__neon(idx kc, const float* a, const float* b, float* c, idx ldc, int mr, int nr,
    float alpha, float beta) {
  DP_UKR_CONTRACT(MR, NR, alignof(float), kc, a, b, c, ldc, mr, nr);
  float32x4_t acc[MR][2];
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = vdupq_n_f32(0.f);
  for (idx p = 0; p < kc; p++) {
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4);
    const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
    acc[0][0] = vfmaq_laneq_f32(acc[0][0], b0, a0, 0); acc[0][1] = vfmaq_laneq_f32(acc[0][1], b1, a0, 0);
    acc[1][0] = vfmaq_laneq_f32(acc[1][0], b0, a0, 1); acc[1][1] = vfmaq_laneq_f32(acc[1][1], b1, a0, 1);
    acc[2][0] = vfmaq_laneq_f32(acc[2][0], b0, a0, 2); acc[2][1] = vfmaq_laneq_f32(acc[2][1], b1, a0, 2);
    acc[3][0] = vfmaq_laneq_f32(acc[3][0], b0, a0, 3); acc[3][1] = vfmaq_laneq_f32(acc[3][1], b1, a0, 3);
    acc[4][0] = vfmaq_laneq_f32(acc[4][0], b0, a1, 0); acc[4][1] = vfmaq_laneq_f32(acc[4][1], b1, a1, 0);
    acc[5][0] = vfmaq_laneq_f32(acc[5][0], b0, a1, 1); acc[5][1] = vfmaq_laneq_f32(acc[5][1], b1, a1, 1);
    acc[6][0] = vfmaq_laneq_f32(acc[6][0], b0, a1, 2); acc[6][1] = vfmaq_laneq_f32(acc[6][1], b1, a1, 2);
    acc[7][0] = vfmaq_laneq_f32(acc[7][0], b0, a1, 3); acc[7][1] = vfmaq_laneq_f32(acc[7][1], b1, a1, 3);
    a += MR;
    b += NR;
  }
  const float32x4_t va = vdupq_n_f32(alpha), vb = vdupq_n_f32(beta);
  for (int i = 0; i < mr; i++) {
    float* r = c + i * ldc;
    float32x4_t x0 = vmulq_f32(va, acc[i][0]), x1 = vmulq_f32(va, acc[i][1]);
    if (nr == NR) {
      if (beta != 0.f) {
        x0 = vfmaq_f32(x0, vb, vld1q_f32(r));
        x1 = vfmaq_f32(x1, vb, vld1q_f32(r + 4));
      }
      vst1q_f32(r, x0);
      vst1q_f32(r + 4, x1);
    } else {
      float t[NR];
      vst1q_f32(t, x0);
      vst1q_f32(t + 4, x1);
      for (int j = 0; j < nr; j++) r[j] = beta == 0.f ? t[j] : t[j] + beta * r[j];
    }
  }
}

#define PACK_ROWS nullptr
#define DP_ISA_NAME "neon"
#define DP_MR MR
#define DP_NR NR
#define DP_MC 128
#define DP_KC 256
#define DP_NC 2048
#define DP_UKR f32_gemm_ukernel_8x8__neon
#include "table.inc"

}  // namespace
const KernelTable* table_neon() { return &kTable; }
}  // namespace deltaprop

#else
namespace deltaprop { const KernelTable* table_neon() { return nullptr; } }
#endif

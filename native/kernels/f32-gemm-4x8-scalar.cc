// Portable kernels (any CPU; the compiler may use the baseline vector unit, SSE2 on x86-64).
// Micro-kernel shape: c (4,8) = alpha·a (4,kc)·b (kc,8) + beta·c, accumulators in a local array.
// This is also the specification the SIMD micro-kernels are tested against (native/test/).
#include "kernels.h"

namespace deltaprop {
namespace {

#include "activation.inc"
#include "loss.inc"
#include "optim.inc"
#include "gemm_small.inc"
#include "gemv.inc"
#include "dropout.inc"
#include "normalization.inc"

constexpr int MR = 4, NR = 8;

void f32_gemm_ukernel_4x8__scalar(idx kc, const float* a, const float* b, float* c, idx ldc, int mr, int nr,
    float alpha, float beta) {
  DP_UKR_CONTRACT(MR, NR, alignof(float), kc, a, b, c, ldc, mr, nr);
  float acc[MR][NR] = {};
  for (idx p = 0; p < kc; p++) {
    for (int i = 0; i < MR; i++)
      for (int j = 0; j < NR; j++) acc[i][j] += a[i] * b[j];
    a += MR;
    b += NR;
  }
  for (int i = 0; i < mr; i++) {
    float* r = c + i * ldc;
    if (beta == 0.f)
      for (int j = 0; j < nr; j++) r[j] = alpha * acc[i][j];
    else
      for (int j = 0; j < nr; j++) r[j] = alpha * acc[i][j] + beta * r[j];
  }
}

#define PACK_ROWS nullptr
#define DP_ISA_NAME "scalar"
#define DP_MR MR
#define DP_NR NR
#define DP_MC 128
#define DP_KC 256
#define DP_NC 2048
#define DP_UKR f32_gemm_ukernel_4x8__scalar
#include "table.inc"

}  // namespace
const KernelTable* table_scalar() { return &kTable; }
}  // namespace deltaprop

// The portable GEMM driver around the per-ISA micro-kernels (BLIS structure), and the dense-layer
// kernels built on it.
#pragma once
#include <cstddef>
#include <cstdint>
#include "kernels/kernels.h"

namespace deltaprop {

// Below this many multiply-adds (m·n·k) the unpacked kernel wins (tiny nets, batch 4..16).
constexpr double kSmallGemmDefault = 32 * 32 * 32;

struct Ctx {  // one per backend instance: its kernel table, thread count, small-problem cutoff
  const KernelTable* k;
  int threads;
  double small_gemm = kSmallGemmDefault;  // tests set 0 to force the packed path
};

// c (m,n) = alpha·op(a)·op(b) + beta·c, then the epilogue on each finished tile.
// op(a) (m,k): a stored (m,k), or (k,m) when ta; op(b) (k,n): b stored (k,n), or (n,k) when tb.
void gemm(const Ctx& ctx, bool ta, bool tb, std::ptrdiff_t m, std::ptrdiff_t n, std::ptrdiff_t k,
          float alpha, const float* a, const float* b, float beta, float* c,
          const Epilogue& epi = Epilogue());

// y (m,out) = act(x (m,inp)·w (inp,out) + b (out)). With `packed` (w packed by pack_weights with
// the same kernel table), the packed, blocked path reads it instead of packing w again: the same
// values in the same order, so the same bits. Weights that change must be packed again.
void dense_forward(const Ctx& ctx, float* y, const float* x, const float* w, const float* b,
                   std::ptrdiff_t m, std::ptrdiff_t inp, std::ptrdiff_t out, int act, float alpha,
                   const float* packed = nullptr);

// Floats of w (inp,out) packed for this kernel table's blocked path, and the packing itself.
size_t packed_weights_length(const Ctx& ctx, std::ptrdiff_t inp, std::ptrdiff_t out);
void pack_weights(const Ctx& ctx, float* dst, const float* w, std::ptrdiff_t inp, std::ptrdiff_t out);

// dw (inp,out) = scale·xᵀ·dz; db (out) = scale·Σ_rows dz; dx (m,inp) = (dz·wᵀ) ⊙ g'(x) if dx
void dense_backward(const Ctx& ctx, float* dw, float* db, float* dx, const float* dz, const float* x,
                    const float* w, std::ptrdiff_t m, std::ptrdiff_t inp, std::ptrdiff_t out,
                    float scale, int prev_act, float alpha);

// dst row i = src row rows[i] (row start+i when rows is null), i < count, each cols floats. Indices
// are trusted (the boundary checks them). Rows are split over threads when the copy is large.
void gather_rows(const Ctx& ctx, float* dst, const float* src, const uint32_t* rows, std::ptrdiff_t start,
                 std::ptrdiff_t count, std::ptrdiff_t cols);

// The kernel table for an ISA name ("" = the newest this CPU runs); nullptr and a reason if the
// name is unknown, not compiled in, or not supported by this CPU.
const KernelTable* select_isa(const char* name, const char** why);
// Names of the ISAs this CPU runs, newest first, comma-separated.
const char* available_isas();

}  // namespace deltaprop

// Portable packed, blocked GEMM driver (BLIS loop structure):
//   jc over n in NC blocks      b block (kc,nc) packed once, shared by all ic
//    pc over k in KC blocks     k blocks run in order: a result never depends on threads
//     ic over m in MC blocks    a block (mc,kc) packed into MR-row slivers, stays in L2
//      jr over nc in NR         b sliver (kc,NR) stays in L1
//       ir over mc in MR        micro-kernel on one (MR,NR) tile of c
// Transposes are absorbed by the packing routines, so NN, TN and NT run the same micro-kernel.
// Threads split c into a grid of MR/NR-aligned blocks, each computed by one task with its own
// packing buffers, never the reduction over k.
#include "gemm.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "threadpool.h"

namespace deltaprop {

namespace {

typedef std::ptrdiff_t idx;

// Below this many multiply-adds (~25 µs of work) one thread beats splitting: the hand-off costs
// microseconds, and on a busy machine a preempted worker can hold a run back much longer.
constexpr idx kParallelGemm = 1 << 21;
// The narrow path splits without packing, so it pays off sooner.
constexpr idx kParallelNarrow = 1 << 18;
// The few-row path reads all of b for little arithmetic: two cores bring twice the cache
// bandwidth (and each keeps its half of the weights in its own L2 from call to call).
constexpr idx kParallelGemv = 1 << 17;
constexpr idx kGemvCols = 64;

struct PackBuffers {  // per thread, grown on demand, reused by every call, freed when the thread ends
  float* a = nullptr;
  size_t a_len = 0;
  float* b = nullptr;
  size_t b_len = 0;
  // a worker_thread that ran a GEMM ends with its packing buffers (about 1 MB): give them back
  ~PackBuffers() {
    std::free(a);
    std::free(b);
  }
};
thread_local PackBuffers tls_pack;

float* grow(float*& p, size_t& len, size_t want) {
  if (len >= want) return p;
  std::free(p);
  size_t bytes = (want * sizeof(float) + 63) / 64 * 64;
  p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!p) {
    len = 0;
    throw std::bad_alloc();
  }
  len = want;
  return p;
}

// kc runs of W floats, run p at src + p·ld, side by side into dst; returns dst past them. The
// widths the tiles use get a copy of constant size, which the compiler turns into a few vector
// moves: a memcpy call of runtime size per 64-byte run was ~5% of a wide-mlp step.
template <int W>
float* copy_runs_of(const float* src, idx ld, idx kc, float* dst) {
  for (idx p = 0; p < kc; p++, src += ld, dst += W) std::memcpy(dst, src, sizeof(float) * W);
  return dst;
}

float* copy_runs(const float* src, idx ld, idx kc, int w, float* dst) {
  switch (w) {
    case 4: return copy_runs_of<4>(src, ld, kc, dst);
    case 6: return copy_runs_of<6>(src, ld, kc, dst);
    case 8: return copy_runs_of<8>(src, ld, kc, dst);
    case 14: return copy_runs_of<14>(src, ld, kc, dst);
    case 16: return copy_runs_of<16>(src, ld, kc, dst);
    case 32: return copy_runs_of<32>(src, ld, kc, dst);
    default:
      for (idx p = 0; p < kc; p++, src += ld, dst += w) std::memcpy(dst, src, sizeof(float) * (size_t)w);
      return dst;
  }
}

// op(a) rows [i0, i0+mc) × k range [p0, p0+kc) → MR-row slivers: for each sliver, kc steps of MR
// values, rows past m zero-filled.
void pack_a(const KernelTable& T, bool ta, const float* a, idx m, idx k, idx i0, idx mc, idx p0, idx kc, float* dst) {
  const int MR = T.mr;
  for (idx ir = 0; ir < mc; ir += MR) {
    const int mr = (int)(mc - ir < MR ? mc - ir : MR);
    const idx i = i0 + ir;
    if (ta && mr == MR) {  // a stored (k,m): an MR-run of a row of storage is contiguous
      dst = copy_runs(a + p0 * m + i, m, kc, MR, dst);
    } else if (ta) {
      const float* src = a + p0 * m + i;
      for (idx p = 0; p < kc; p++, src += m, dst += MR) {
        int ii = 0;
        for (; ii < mr; ii++) dst[ii] = src[ii];
        for (; ii < MR; ii++) dst[ii] = 0.f;
      }
    } else if (T.pack_rows && MR <= 16) {  // a stored (m,k): MR rows side by side, transposed
      T.pack_rows(a + i * k + p0, k, mr, kc, MR, MR, dst);
      dst += kc * MR;
    } else {  // a stored (m,k): one row at a time, so reads stay sequential even when k is a
              // power of two (reading MR rows side by side would collide in the same L1 sets)
      for (int ii = 0; ii < MR; ii++) {
        float* d = dst + ii;
        if (ii < mr) {
          const float* src = a + (i + ii) * k + p0;
          for (idx p = 0; p < kc; p++) d[p * MR] = src[p];
        } else {
          for (idx p = 0; p < kc; p++) d[p * MR] = 0.f;
        }
      }
      dst += kc * MR;
    }
  }
}

// op(b) k range [p0, p0+kc) × cols [j0, j0+nc) → NR-column slivers: for each sliver, kc steps of
// NR values, columns past n zero-filled.
void pack_b(const KernelTable& T, bool tb, const float* b, idx n, idx k, idx p0, idx kc, idx j0, idx nc, float* dst) {
  const int NR = T.nr;
  for (idx jr = 0; jr < nc; jr += NR) {
    const int nr = (int)(nc - jr < NR ? nc - jr : NR);
    const idx j = j0 + jr;
    if (!tb) {  // b stored (k,n): each k step is a contiguous run
      const float* src = b + p0 * n + j;
      if (nr == NR) {
        dst = copy_runs(src, n, kc, NR, dst);
      } else {
        for (idx p = 0; p < kc; p++, src += n, dst += NR) {
          int jj = 0;
          for (; jj < nr; jj++) dst[jj] = src[jj];
          for (; jj < NR; jj++) dst[jj] = 0.f;
        }
      }
    } else if (T.pack_rows) {  // b stored (n,k): sliver column jj is row j+jj, 16 rows at a time
      for (int jj0 = 0; jj0 < NR; jj0 += 16) {
        const int rows = nr - jj0 < 0 ? 0 : nr - jj0 < 16 ? nr - jj0 : 16;
        T.pack_rows(rows ? b + (j + jj0) * k + p0 : b, k, rows, kc, NR, NR - jj0 < 16 ? NR - jj0 : 16, dst + jj0);
      }
      dst += kc * NR;
    } else {  // b stored (n,k): sliver column jj is row j+jj of storage. Read 8 rows side by side
              // so that each k step writes 8 adjacent floats (a small transpose), not 1 per line.
      for (int jj0 = 0; jj0 < NR; jj0 += 8) {
        const float* rows[8];
        int live = 0;
        for (int u = 0; u < 8; u++) {
          rows[u] = jj0 + u < nr ? b + (j + jj0 + u) * k + p0 : nullptr;
          live += rows[u] != nullptr;
        }
        float* d = dst + jj0;
        if (live == 8) {
          for (idx p = 0; p < kc; p++, d += NR)
            for (int u = 0; u < 8; u++) d[u] = rows[u][p];
        } else {
          for (idx p = 0; p < kc; p++, d += NR)
            for (int u = 0; u < 8; u++) d[u] = rows[u] ? rows[u][p] : 0.f;
        }
      }
      dst += kc * NR;
    }
  }
}

// k in equal blocks of at most KC (784 = 4·196, not 3·256 + 16: no thin last block)
idx kc_even_of(idx k, idx KC) {
  const idx kblocks = (k + KC - 1) / KC;
  return ((k + kblocks - 1) / kblocks + 7) / 8 * 8;
}

// One task: c rows [i0,i1) × cols [j0,j1), every k. With `shared_a` (all of op(a) packed once by
// pack_all_a), a is read from there instead of being packed again by every task of a row of blocks.
void gemm_block(const KernelTable& T, bool ta, bool tb, idx m, idx n, idx k, float alpha,
                const float* a, const float* b, float beta, float* c, const Epilogue& epi,
                idx i0, idx i1, idx j0, idx j1, const float* shared_a = nullptr, const float* pre_b = nullptr) {
  const int MR = T.mr, NR = T.nr;
  const idx MC = T.mc, KC = T.kc, NC = T.nc;
  PackBuffers& pb = tls_pack;
  float* ap = shared_a ? nullptr : grow(pb.a, pb.a_len, (size_t)((MC + MR - 1) / MR * MR * KC));
  float* bp = pre_b ? nullptr : grow(pb.b, pb.b_len, (size_t)((NC + NR - 1) / NR * NR * KC));
  const idx kc_even = kc_even_of(k, KC);
  const idx mpad = (m + MR - 1) / MR * MR;
  const idx npad = (n + NR - 1) / NR * NR;
  for (idx jc = j0; jc < j1; jc += NC) {
    const idx nc = j1 - jc < NC ? j1 - jc : NC;
    for (idx pc = 0; pc < k; pc += kc_even) {
      const idx kc = k - pc < kc_even ? k - pc : kc_even;
      const float bet = pc == 0 ? beta : 1.f;
      const bool last = pc + kc == k;
      if (pre_b) bp = const_cast<float*>(pre_b) + npad * pc + jc * kc;  // layout of pack_all_b
      else pack_b(T, tb, b, n, k, pc, kc, jc, nc, bp);
      for (idx ic = i0; ic < i1; ic += MC) {
        const idx mc = i1 - ic < MC ? i1 - ic : MC;
        const float* apk;
        if (shared_a) {
          apk = shared_a + mpad * pc + ic * kc;  // layout of pack_all_a
        } else {
          pack_a(T, ta, a, m, k, ic, mc, pc, kc, ap);
          apk = ap;
        }
        for (idx jr = 0; jr < nc; jr += NR) {
          const int nr = (int)(nc - jr < NR ? nc - jr : NR);
          for (idx ir = 0; ir < mc; ir += MR) {
            const int mr = (int)(mc - ir < MR ? mc - ir : MR);
            float* ct = c + (ic + ir) * n + jc + jr;
            T.ukr(kc, apk + ir * kc, bp + jr * kc, ct, n, mr, nr, alpha, bet);
            if (last && epi.kind != EPI_NONE) T.epilogue(epi, ct, n, ic + ir, jc + jr, mr, nr);
          }
        }
      }
    }
  }
}

// Rows [i0,i1) (MR-aligned i0) of all of op(a), every k block, into the layout gemm_block reads
// with shared_a: k block at pc starts at mpad·pc, and in it row i's sliver at i·kc.
void pack_all_a(const KernelTable& T, bool ta, const float* a, idx m, idx k, idx i0, idx i1, float* dst) {
  const int MR = T.mr;
  const idx kc_even = kc_even_of(k, T.kc);
  const idx mpad = (m + MR - 1) / MR * MR;
  for (idx pc = 0; pc < k; pc += kc_even) {
    const idx kc = k - pc < kc_even ? k - pc : kc_even;
    pack_a(T, ta, a, m, k, i0, i1 - i0, pc, kc, dst + mpad * pc + i0 * kc);
  }
}

// All of b (k,n), not transposed, in the layout gemm_block reads with pre_b: k block at pc starts
// at npad·pc, and in it the NR-column sliver of column j (a multiple of NR) at j·kc.
void pack_all_b(const KernelTable& T, const float* b, idx n, idx k, float* dst) {
  const int NR = T.nr;
  const idx kc_even = kc_even_of(k, T.kc);
  const idx npad = (n + NR - 1) / NR * NR;
  for (idx pc = 0; pc < k; pc += kc_even) {
    const idx kc = k - pc < kc_even ? k - pc : kc_even;
    pack_b(T, false, b, n, k, pc, kc, 0, n, dst + npad * pc);
  }
}

struct SharedA {  // per calling thread (JS threads may each run a gemm), grown on demand
  float* p = nullptr;
  size_t len = 0;
  ~SharedA() { std::free(p); }
};
thread_local SharedA tls_shared_a;

}  // namespace

namespace {

// gemm, with b already packed by pack_all_b when pre_b is set (then !tb): only the packed, blocked
// path reads pre_b; the small, narrow and few-row paths read b as it is, so both are given.
void gemm_impl(const Ctx& ctx, bool ta, bool tb, idx m, idx n, idx k, float alpha, const float* a,
               const float* b, float beta, float* c, const Epilogue& epi, const float* pre_b) {
  const KernelTable& T = *ctx.k;
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // empty sum: c = beta·c, without reading c when beta is 0
    for (idx i = 0; i < m * n; i++) c[i] = beta == 0.f ? 0.f : beta * c[i];
    if (epi.kind != EPI_NONE) T.epilogue(epi, c, n, 0, 0, (int)m, (int)n);
    return;
  }
  const double work = (double)m * (double)n * (double)k;  // may exceed int64 for hostile sizes
  const idx lda = ta ? m : k;
  if (work <= ctx.small_gemm) {
    T.gemm_small(ta, tb, m, n, k, alpha, a, lda, b, beta, c);
    if (epi.kind != EPI_NONE) T.epilogue(epi, c, n, 0, 0, (int)m, (int)n);
    return;
  }
  if (n <= T.narrow_n && !tb && ctx.small_gemm > 0) {
    // A narrow output (a 10-class layer): unpacked, rows split over threads in blocks of 8
    // (a row's sum does not depend on its block, so neither do the bits).
    const idx blocks = (m + 7) / 8;
    int parts = work >= (double)kParallelNarrow ? ctx.threads : 1;
    if ((idx)parts > blocks) parts = (int)blocks;
    auto part = [&](int t) {
      const idx i0 = blocks * t / parts * 8, i1t = blocks * (t + 1) / parts * 8, i1 = i1t < m ? i1t : m;
      if (i0 >= i1) return;
      T.gemm_small(ta, false, i1 - i0, n, k, alpha, ta ? a + i0 : a + i0 * k, lda, b, beta, c + i0 * n);
      if (epi.kind != EPI_NONE) T.epilogue(epi, c + i0 * n, n, i0, 0, (int)(i1 - i0), (int)n);
    };
    if (parts <= 1) part(0);
    else ThreadPool::instance().run(parts, ctx.threads, part);
    return;
  }
  if (m <= T.gemv_rows && !ta && !tb && ctx.small_gemm > 0) {
    // Batch 1..4 (inference): b read once from its rows, no packing; columns split over threads
    // in blocks of 64 (an element's sum does not depend on its block, so neither do the bits).
    const idx blocks = (n + kGemvCols - 1) / kGemvCols;
    int parts = work >= (double)kParallelGemv ? ctx.threads : 1;
    if ((idx)parts > blocks) parts = (int)blocks;
    auto part = [&](int t) {
      const idx j0 = blocks * t / parts * kGemvCols, j1t = blocks * (t + 1) / parts * kGemvCols, j1 = j1t < n ? j1t : n;
      if (j0 >= j1) return;
      T.gemv(m, j1 - j0, k, alpha, a, k, b + j0, n, beta, c + j0, n);
      if (epi.kind != EPI_NONE) T.epilogue(epi, c + j0, n, 0, j0, (int)m, (int)(j1 - j0));
    };
    if (parts <= 1) part(0);
    else ThreadPool::instance().run(parts, ctx.threads, part);
    return;
  }
  const int MR = T.mr, NR = T.nr;
  const idx mt = (m + MR - 1) / MR, nt = (n + NR - 1) / NR;  // register tiles per dimension
  int threads = work >= (double)kParallelGemm ? ctx.threads : 1;
  if ((idx)threads > mt * nt) threads = (int)(mt * nt);
  // Grid tm × tn = threads minimizing the largest block (in tiles); ties split n, so that each
  // task packs all of a (cheap, m small in training) and its own part of b.
  // Four tasks per thread when there are tiles enough (else two), so that a thread the OS or a
  // neighbouring VM holds back does not hold back the run: whoever is free takes the next block.
  // Measured against two per thread (min of 9, three alternating rounds): the fashion and
  // wide-mlp GEMMs of a step 7-11% faster in sum, n = 1024 about 4%.
  const int per = (idx)(4 * threads) <= mt * nt ? 4 : 2;
  const int tasks = threads > 1 && (idx)(per * threads) <= mt * nt ? per * threads : threads;
  int tm = 1, tn = tasks;
  idx best = -1;
  for (int d = 1; d <= tasks; d++) {
    if (tasks % d) continue;
    const int gm = d, gn = tasks / d;
    const idx cost = ((mt + gm - 1) / gm) * ((nt + gn - 1) / gn);
    if (best < 0 || cost < best || (cost == best && gn > tn)) { best = cost; tm = gm; tn = gn; }
  }
  // Tasks in one row of the grid need the same packed a: pack it once, in parallel over row
  // tiles, rather than once per task (a is re-packed tn times otherwise: ~20% of a wide-mlp step).
  const float* shared_a = nullptr;
  if (threads > 1 && tn > 1) {
    SharedA& sa = tls_shared_a;
    shared_a = grow(sa.p, sa.len, (size_t)(mt * MR * k));
    float* dst = sa.p;
    const int pt = (idx)tasks <= mt ? tasks : (int)mt;
    ThreadPool::instance().run(pt, threads, [&](int t) {
      const idx i0 = mt * t / pt * MR, i1t = mt * (t + 1) / pt * MR;
      const idx i1 = i1t < m ? i1t : m;
      if (i0 < i1) pack_all_a(T, ta, a, m, k, i0, i1, dst);
    });
  }
  auto task = [&](int t) {
    const idx bi = t / tn, bj = t % tn;
    const idx i0 = mt * bi / tm * MR, i1t = mt * (bi + 1) / tm * MR;
    const idx j0 = nt * bj / tn * NR, j1t = nt * (bj + 1) / tn * NR;
    const idx i1 = i1t < m ? i1t : m, j1 = j1t < n ? j1t : n;
    if (i0 < i1 && j0 < j1) gemm_block(T, ta, tb, m, n, k, alpha, a, b, beta, c, epi, i0, i1, j0, j1, shared_a, pre_b);
  };
  if (threads <= 1) {
    task(0);
    return;
  }
  ThreadPool::instance().run(tm * tn, threads, task);
}

}  // namespace

void gemm(const Ctx& ctx, bool ta, bool tb, idx m, idx n, idx k, float alpha, const float* a,
          const float* b, float beta, float* c, const Epilogue& epi) {
  gemm_impl(ctx, ta, tb, m, n, k, alpha, a, b, beta, c, epi, nullptr);
}

size_t packed_weights_length(const Ctx& ctx, idx inp, idx out) {
  const idx NR = ctx.k->nr;
  return (size_t)((out + NR - 1) / NR * NR) * (size_t)inp;
}

void pack_weights(const Ctx& ctx, float* dst, const float* w, idx inp, idx out) {
  if (inp > 0 && out > 0) pack_all_b(*ctx.k, w, out, inp, dst);
}

void dense_forward(const Ctx& ctx, float* y, const float* x, const float* w, const float* b, idx m,
                   idx inp, idx out, int act, float alpha, const float* packed) {
  Epilogue e;
  e.kind = EPI_BIAS_ACT;
  e.bias = b;
  e.act = act;
  e.alpha = alpha;
  gemm_impl(ctx, false, false, m, out, inp, 1.f, x, w, 0.f, y, e, packed);
  if (act == ACT_SOFTMAX && out > 0) ctx.k->softmax_rows(y, m, out);
}

void dense_backward(const Ctx& ctx, float* dw, float* db, float* dx, const float* dz, const float* x,
                    const float* w, idx m, idx inp, idx out, float scale, int prev_act, float alpha) {
  gemm(ctx, true, false, inp, out, m, scale, x, dz, 0.f, dw);  // dw = scale·xᵀ·dz
  ctx.k->col_sums(db, dz, m, out, scale);
  if (dx) {
    Epilogue e;
    e.kind = EPI_MUL_DERIV;
    e.act = prev_act;
    e.alpha = alpha;
    e.aux = x;
    e.ldaux = inp;
    gemm(ctx, false, true, m, inp, out, 1.f, dz, w, 0.f, dx, e);  // dx = (dz·wᵀ) ⊙ g'(x)
  }
}

void gather_rows(const Ctx& ctx, float* dst, const float* src, const uint32_t* rows, idx start, idx count, idx cols) {
  if (count <= 0 || cols <= 0) return;
  // The source rows are scattered over a data set far larger than the caches and each copy waits
  // on memory, so a large batch is split over the pool (fashion: 128 rows of 784 floats).
  const int parts = ctx.threads > 1 && count * cols >= (1 << 16) ? ctx.threads : 1;
  auto part = [&](int t) {
    const idx lo = count * t / parts, hi = count * (t + 1) / parts;
    for (idx i = lo; i < hi; i++) {
      const idx r = rows ? (idx)rows[i] : start + i;
      std::memcpy(dst + i * cols, src + r * cols, sizeof(float) * (size_t)cols);
    }
  };
  if (parts == 1) part(0);
  else ThreadPool::instance().run(parts, ctx.threads, part);
}

}  // namespace deltaprop

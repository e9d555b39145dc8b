// Standalone kernel test (no Node): every micro-kernel this CPU runs against a plain triple loop,
// over edge tiles (mr, nr below/at the register tile, kc = 0, 1, odd, large), beta = 0 with NaN in
// c, general alpha/beta; then the whole blocked driver (NN, TN, NT, threads 1 and 2, bitwise equal)
// the few-row (GEMV) path and weights packed once, and the vector exp/tanh/sigmoid. Built for the host and for arm64 (run under qemu-aarch64), so
// the NEON kernel is exercised here. Exit status 0 when everything passes.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../gemm.h"

using namespace deltaprop;

static int failures = 0;
static unsigned long long seed = 88172645463325252ull;
static float frand() {  // xorshift64, uniform in [-1, 1)
  seed ^= seed << 13;
  seed ^= seed >> 7;
  seed ^= seed << 17;
  return (float)((seed >> 40) / 8388608.0 - 1.0);
}

static bool close(float got, double want, double tol) {
  return std::fabs(got - want) <= tol * std::fmax(1.0, std::fabs(want));
}

// The micro-kernel contract of kernels.h, tile by tile.
static void test_ukr(const KernelTable& T) {
  const int MR = T.mr, NR = T.nr;
  const int kcs[] = {0, 1, 2, 7, 64, 257};
  for (int kc : kcs) {
    std::vector<float> a((size_t)MR * (kc + 1)), b((size_t)NR * (kc + 1));
    for (float& v : a) v = frand();
    for (float& v : b) v = frand();
    // packed b must be 64-byte aligned (kernels may use aligned loads)
    float* bp = static_cast<float*>(std::aligned_alloc(64, ((size_t)NR * (kc + 1) * 4 + 63) / 64 * 64));
    std::memcpy(bp, b.data(), b.size() * 4);
    for (int mr = 1; mr <= MR; mr++) {
      for (int nr = 1; nr <= NR; nr++) {
        for (int variant = 0; variant < 2; variant++) {
          const float alpha = variant ? 0.75f : 1.f, beta = variant ? -0.5f : 0.f;
          const int ldc = NR + 3;
          std::vector<float> c((size_t)(MR + 1) * ldc), c0;
          for (float& v : c) v = variant ? frand() : NAN;
          c0 = c;
          T.ukr(kc, a.data(), bp, c.data(), ldc, mr, nr, alpha, beta);
          for (int i = 0; i < MR + 1; i++) {
            for (int j = 0; j < ldc; j++) {
              const size_t at = (size_t)i * ldc + j;
              if (i >= mr || j >= nr) {  // outside the tile: untouched
                if (std::memcmp(&c[at], &c0[at], 4) != 0) {
                  if (failures++ < 10) std::printf("FAIL %s ukr wrote outside mr=%d nr=%d kc=%d at (%d,%d)\n", T.isa, mr, nr, kc, i, j);
                }
                continue;
              }
              double s = 0;
              for (int p = 0; p < kc; p++) s += (double)a[(size_t)p * MR + i] * b[(size_t)p * NR + j];
              const double want = alpha * s + (beta == 0.f ? 0.0 : beta * (double)c0[at]);
              if (!close(c[at], want, 1e-5 * std::sqrt(kc + 1.0))) {
                if (failures++ < 10)
                  std::printf("FAIL %s ukr mr=%d nr=%d kc=%d beta=%g (%d,%d): %g vs %g\n", T.isa, mr, nr, kc, beta, i, j, c[at], want);
              }
            }
          }
        }
      }
    }
    std::free(bp);
  }
}

// The blocked driver around the kernel: transposes, edges, blocking, threads.
static void test_driver(const KernelTable& T) {
  struct Shape { long m, n, k; } shapes[] = {{1, 1, 1}, {T.mr + 1, T.nr - 1, 5}, {37, 45, 600}, {200, 3, 70}, {3, 300, 129}, {130, 140, 1100}};
  for (const Shape& s : shapes) {
    for (int tcase = 0; tcase < 3; tcase++) {
      const bool ta = tcase == 1, tb = tcase == 2;
      std::vector<float> a((size_t)s.m * s.k), b((size_t)s.k * s.n), c1((size_t)s.m * s.n, NAN), c2 = c1;
      for (float& v : a) v = frand();
      for (float& v : b) v = frand();
      Ctx one{&T, 1, 0}, two{&T, 2, 0};  // small_gemm = 0: always the packed path
      gemm(one, ta, tb, s.m, s.n, s.k, 1.f, a.data(), b.data(), 0.f, c1.data());
      gemm(two, ta, tb, s.m, s.n, s.k, 1.f, a.data(), b.data(), 0.f, c2.data());
      if (std::memcmp(c1.data(), c2.data(), c1.size() * 4) != 0) {
        failures++;
        std::printf("FAIL %s gemm %ldx%ldx%ld case %d: 1 and 2 threads differ\n", T.isa, s.m, s.n, s.k, tcase);
      }
      for (long i = 0; i < s.m; i++) {
        for (long j = 0; j < s.n; j++) {
          double r = 0;
          for (long p = 0; p < s.k; p++) r += (double)a[ta ? p * s.m + i : i * s.k + p] * b[tb ? j * s.k + p : p * s.n + j];
          if (!close(c1[i * s.n + j], r, 1e-5 * std::sqrt((double)s.k))) {
            if (failures++ < 10) std::printf("FAIL %s gemm %ldx%ldx%ld case %d (%ld,%ld): %g vs %g\n", T.isa, s.m, s.n, s.k, tcase, i, j, c1[i * s.n + j], r);
          }
        }
      }
    }
  }
}

// The few-row path (T.gemv, and gemm at m <= gemv_rows with the default cutoff): m = 1..gemv_rows,
// odd widths and depths, k = 1, a column range of a wider b and c (ldb, ldc > n), beta = 0 with NaN
// in c, general alpha/beta; 1 and 2 threads bitwise equal. And weights packed once: dense_forward
// with the packed copy has the bits of dense_forward without it.
static void test_gemv(const KernelTable& T) {
  const long ns[] = {1, 7, 9, 17, 31, 33, 63, 65, 129, 193, 300};
  const long ks[] = {1, 2, 7, 33, 300};
  for (long m = 1; m <= T.gemv_rows; m++) {
    for (long n : ns) {
      for (long k : ks) {
        for (int variant = 0; variant < 2; variant++) {
          const float alpha = variant ? 0.75f : 1.f, beta = variant ? -0.5f : 0.f;
          const long ldb = n + 5, ldc = n + 3;
          std::vector<float> a((size_t)m * k), b((size_t)k * ldb), c((size_t)m * ldc);
          for (float& v : a) v = frand();
          for (float& v : b) v = frand();
          for (float& v : c) v = variant ? frand() : NAN;
          std::vector<float> c0 = c;
          T.gemv(m, n, k, alpha, a.data(), k, b.data(), ldb, beta, c.data(), ldc);
          for (long i = 0; i < m; i++) {
            for (long j = 0; j < ldc; j++) {
              const size_t at = (size_t)(i * ldc + j);
              if (j >= n) {
                if (std::memcmp(&c[at], &c0[at], 4) != 0 && failures++ < 10) std::printf("FAIL %s gemv wrote outside m=%ld n=%ld k=%ld at (%ld,%ld)\n", T.isa, m, n, k, i, j);
                continue;
              }
              double sum = 0;
              for (long p = 0; p < k; p++) sum += (double)a[(size_t)(i * k + p)] * b[(size_t)(p * ldb + j)];
              const double want = alpha * sum + (beta == 0.f ? 0.0 : beta * (double)c0[at]);
              if (!close(c[at], want, 1e-5 * std::sqrt(k + 1.0)) && failures++ < 10)
                std::printf("FAIL %s gemv m=%ld n=%ld k=%ld beta=%g (%ld,%ld): %g vs %g\n", T.isa, m, n, k, beta, i, j, c[at], want);
            }
          }
        }
      }
    }
  }
  // through the driver: the few-row path split over threads, and packed weights on the blocked path
  struct Shape { long m, inp, out; } shapes[] = {{1, 784, 512}, {3, 1000, 777}, {4, 65, 300}, {5, 784, 128}, {64, 300, 129}, {200, 33, 70}};
  for (const Shape& s : shapes) {
    std::vector<float> x((size_t)(s.m * s.inp)), w((size_t)(s.inp * s.out)), bias((size_t)s.out);
    for (float& v : x) v = frand();
    for (float& v : w) v = 0.1f * frand();
    for (float& v : bias) v = frand();
    Ctx one{&T, 1}, two{&T, 2};
    std::vector<float> y1((size_t)(s.m * s.out), NAN), y2 = y1;
    dense_forward(one, y1.data(), x.data(), w.data(), bias.data(), s.m, s.inp, s.out, ACT_RELU, 0.f);
    dense_forward(two, y2.data(), x.data(), w.data(), bias.data(), s.m, s.inp, s.out, ACT_RELU, 0.f);
    if (std::memcmp(y1.data(), y2.data(), y1.size() * 4) != 0 && failures++ < 10)
      std::printf("FAIL %s dense_forward %ldx%ldx%ld: 1 and 2 threads differ\n", T.isa, s.m, s.inp, s.out);
    const size_t len = packed_weights_length(one, s.inp, s.out);
    float* packed = static_cast<float*>(std::aligned_alloc(64, (len * 4 + 63) / 64 * 64));
    pack_weights(one, packed, w.data(), s.inp, s.out);
    for (const Ctx* ctx : {&one, &two}) {
      Ctx blocked = *ctx;
      blocked.small_gemm = 0;  // the blocked path at every size, where the packed copy is read
      for (const Ctx* c : {ctx, (const Ctx*)&blocked}) {
        std::vector<float> got((size_t)(s.m * s.out), NAN);
        std::vector<float> plain = got;
        dense_forward(*c, plain.data(), x.data(), w.data(), bias.data(), s.m, s.inp, s.out, ACT_RELU, 0.f);
        dense_forward(*c, got.data(), x.data(), w.data(), bias.data(), s.m, s.inp, s.out, ACT_RELU, 0.f, packed);
        if (std::memcmp(got.data(), plain.data(), got.size() * 4) != 0 && failures++ < 10)
          std::printf("FAIL %s dense_forward packed %ldx%ldx%ld (%d threads, small_gemm %g): bits differ\n", T.isa, s.m, s.inp, s.out, c->threads, c->small_gemm);
      }
    }
    std::free(packed);
  }
}

static void test_math(const KernelTable& T) {
  const int n = 4001;
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; i++) x[i] = -87.f + 175.f * i / (n - 1);
  T.vexp(y.data(), x.data(), n);
  for (int i = 0; i < n; i++) {
    double want = std::exp((double)x[i]);
    if (std::fabs(y[i] - want) > 1e-6 * want && failures++ < 10) std::printf("FAIL %s exp(%g) = %g vs %g\n", T.isa, x[i], y[i], want);
  }
  for (int i = 0; i < n; i++) x[i] = -10.f + 20.f * i / (n - 1);
  T.vact(y.data(), x.data(), n, ACT_TANH, 0.f);
  for (int i = 0; i < n; i++) {
    double want = std::tanh((double)x[i]);
    if (std::fabs(y[i] - want) > 1e-6 * std::fabs(want) + 1e-30 && failures++ < 10) std::printf("FAIL %s tanh(%g) = %g vs %g\n", T.isa, x[i], y[i], want);
  }
  T.vact(y.data(), x.data(), n, ACT_SIGMOID, 0.f);
  for (int i = 0; i < n; i++) {
    double want = 1 / (1 + std::exp(-(double)x[i]));
    if (std::fabs(y[i] - want) > 1e-6 * want && failures++ < 10) std::printf("FAIL %s sigmoid(%g) = %g vs %g\n", T.isa, x[i], y[i], want);
  }
}

int main() {
  const char* names[] = {"avx512", "avx2-fma", "neon", "scalar"};
  int tested = 0;
  std::printf("ISAs this CPU runs: %s\n", available_isas());
  for (const char* name : names) {
    const char* why = "";
    const KernelTable* T = select_isa(name, &why);
    if (!T) continue;
    const int before = failures;
    test_ukr(*T);
    test_driver(*T);
    test_gemv(*T);
    test_math(*T);
    tested++;
    std::printf("%s %s (micro-kernel %dx%d)\n", failures == before ? "ok  " : "FAIL", T->isa, T->mr, T->nr);
  }
  std::printf("%d ISAs tested, %d failures\n", tested, failures);
  return failures == 0 && tested > 0 ? 0 : 1;
}

// The machine's fp32 FMA peak, the physical limit every GEMM and training figure of the bench is
// reported against: a loop of independent FMAs on registers only (no loads or stores), on the
// widest ISA this CPU has (AVX-512, else AVX2 + FMA), on T threads at once. Compiled by the bench
// with the system g++; the ISA is chosen at run time, so one build serves any x86-64 machine.
//
//   usage: fma-peak T [M]   prints {"isa": ..., "threads": T, "gflops": best of 5 runs, "runs": [...]}
//                           (M million iterations per run and thread, default 20)
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

// Enough independent accumulators to cover FMA latency (4 cycles) times two FMA ports, and more:
// 16 of the 32 zmm registers; 12 of the 16 ymm (two more hold the multiplier and addend).
constexpr int ZMM_ACC = 16, YMM_ACC = 12;

__attribute__((target("avx512f"))) float loop512(long iters) {
  const __m512 b = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-7f);
  __m512 a[ZMM_ACC];
#pragma GCC unroll 16
  for (int i = 0; i < ZMM_ACC; i++) a[i] = _mm512_set1_ps(float(i));
  for (long it = 0; it < iters; it++) {
    // fully unrolled, so that the array lives in registers
#pragma GCC unroll 16
    for (int i = 0; i < ZMM_ACC; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    // keep the accumulators in registers, and the loop from being folded away
#pragma GCC unroll 16
    for (int i = 0; i < ZMM_ACC; i++) __asm__ volatile("" : "+v"(a[i]));
  }
  __m512 s = a[0];
#pragma GCC unroll 16
  for (int i = 1; i < ZMM_ACC; i++) s = _mm512_add_ps(s, a[i]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) float loop256(long iters) {
  const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-7f);
  __m256 a[YMM_ACC];
#pragma GCC unroll 16
  for (int i = 0; i < YMM_ACC; i++) a[i] = _mm256_set1_ps(float(i));
  for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
    for (int i = 0; i < YMM_ACC; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
#pragma GCC unroll 16
    for (int i = 0; i < YMM_ACC; i++) __asm__ volatile("" : "+x"(a[i]));
  }
  __m256 s = a[0];
#pragma GCC unroll 16
  for (int i = 1; i < YMM_ACC; i++) s = _mm256_add_ps(s, a[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const long iters = (argc > 2 ? std::atol(argv[2]) : 20) * 1'000'000L;
  if (threads < 1 || threads > 1024 || iters < 1) {
    std::fprintf(stderr, "usage: fma-peak THREADS (1..1024) [MILLIONS of iterations, default 20]\n");
    return 2;
  }
  __builtin_cpu_init();
  const bool z = __builtin_cpu_supports("avx512f");
  if (!z && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    std::printf("{\"error\": \"this CPU has neither AVX-512 nor AVX2 + FMA\"}\n");
    return 1;
  }
  const double flopsPerIter = z ? ZMM_ACC * 16 * 2 : YMM_ACC * 8 * 2;
  std::vector<float> sink(threads);
  std::vector<double> runs;
  for (int r = 0; r < 5; r++) {
    std::vector<std::thread> pool;
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; t++) pool.emplace_back([&, t] { sink[t] = z ? loop512(iters) : loop256(iters); });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    runs.push_back(threads * iters * flopsPerIter / s / 1e9);
  }
  std::printf("{\"isa\": \"%s\", \"threads\": %d, \"gflops\": %.2f, \"runs\": [", z ? "avx512f" : "avx2-fma", threads,
              *std::max_element(runs.begin(), runs.end()));
  for (size_t i = 0; i < runs.size(); i++) std::printf("%s%.2f", i ? ", " : "", runs[i]);
  std::printf("], \"sink\": %g}\n", double(sink[0]));
  return 0;
}

// oneDNN's dnnl_sgemm (Debian's libdnnl-dev: the JIT GEMM inside PyTorch and TensorFlow on CPU) as a
// peer of deltaprop's sgemm. Compiled by the bench with the system g++ (-ldnnl) and run as a child
// process that times on request, so that paired rounds can alternate it with deltaprop's own GEMM.
//
//   usage: OMP_NUM_THREADS=T onednn-sgemm NN:m:n:k [TN:m:n:k ...]
//
// c (m,n) = op(a) (m,k) · op(b) (k,n), row-major, as the bench's shapes mean it. For each shape it
// prints one JSON line with its check (64 sampled entries against a float64 dot product, c filled
// with NaN first since beta = 0 must not read it), then {"ready": true, ...} with oneDNN's version,
// ISA and threads, then answers every stdin line "i units" with {"seconds": s}, the time of `units`
// calls on shape i.
#include <dnnl.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

struct Shape {
  bool ta = false, tb = false;
  long m = 0, n = 0, k = 0;
  std::string label;
  std::vector<float> a, b, c;
};

const char* isaName(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "all";
  }
}

bool parse(const char* arg, Shape& s) {
  char t[3] = {0};
  if (std::sscanf(arg, "%2[NT]:%ld:%ld:%ld", t, &s.m, &s.n, &s.k) != 4 || std::strlen(t) != 2) return false;
  if (s.m < 1 || s.n < 1 || s.k < 1) return false;
  s.ta = t[0] == 'T';
  s.tb = t[1] == 'T';
  s.label = std::string(t) + " " + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k);
  return true;
}

dnnl_status_t call(Shape& s) {
  // row-major leading dimensions of the stored arrays: a is (k,m) when transposed, b is (n,k)
  const long lda = s.ta ? s.m : s.k, ldb = s.tb ? s.k : s.n;
  return dnnl_sgemm(s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', s.m, s.n, s.k, 1.0f, s.a.data(), lda, s.b.data(), ldb, 0.0f,
                    s.c.data(), s.n);
}

// Largest error of 64 sampled entries against float64, relative to sum |a*b| (as the bench's own check).
double check(Shape& s, std::mt19937& rng) {
  std::fill(s.c.begin(), s.c.end(), std::numeric_limits<float>::quiet_NaN());
  if (call(s) != dnnl_success) return INFINITY;
  double worst = 0;
  for (int t = 0; t < 64; t++) {
    const long i = rng() % s.m, j = rng() % s.n;
    double ref = 0, mag = 0;
    for (long p = 0; p < s.k; p++) {
      const double av = s.ta ? s.a[p * s.m + i] : s.a[i * s.k + p];
      const double bv = s.tb ? s.b[j * s.k + p] : s.b[p * s.n + j];
      ref += av * bv;
      mag += std::fabs(av * bv);
    }
    const double err = std::fabs(s.c[i * s.n + j] - ref) / std::fmax(mag, 1e-30);
    worst = std::isnan(err) ? INFINITY : std::fmax(worst, err);
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: onednn-sgemm NN:m:n:k [TN:m:n:k ...]\n");
    return 2;
  }
  std::vector<Shape> shapes(argc - 1);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int i = 1; i < argc; i++) {
    Shape& s = shapes[i - 1];
    if (!parse(argv[i], s)) {
      std::fprintf(stderr, "onednn-sgemm: bad shape '%s' (expected e.g. NT:256:512:784)\n", argv[i]);
      return 2;
    }
    s.a.resize(s.m * s.k);
    s.b.resize(s.k * s.n);
    s.c.resize(s.m * s.n);
    for (float& v : s.a) v = u(rng);
    for (float& v : s.b) v = u(rng);
  }
  for (Shape& s : shapes) {
    const double err = check(s, rng);
    std::printf("{\"shape\": \"%s\", \"check\": {\"max_rel_err\": %.3e, \"ok\": %s}}\n", s.label.c_str(),
                std::isinf(err) ? 1e308 : err, err < 1e-4 ? "true" : "false");
  }
  const dnnl_version_t* v = dnnl_version();
  std::printf("{\"ready\": true, \"version\": \"%d.%d.%d\", \"kernel\": \"jit, max ISA %s\", \"threads\": %d}\n", v->major, v->minor,
              v->patch, isaName(dnnl_get_effective_cpu_isa()), omp_get_max_threads());
  std::fflush(stdout);
  long i = 0, units = 0;
  while (std::scanf("%ld %ld", &i, &units) == 2) {
    if (i < 0 || i >= (long)shapes.size() || units < 1) {
      std::printf("{\"error\": \"bad request %ld %ld\"}\n", i, units);
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      dnnl_status_t st = dnnl_success;
      for (long r = 0; r < units && st == dnnl_success; r++) st = call(shapes[i]);
      const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (st == dnnl_success) std::printf("{\"seconds\": %.9f}\n", sec);
      else std::printf("{\"error\": \"dnnl_sgemm returned status %d\"}\n", (int)st);
    }
    std::fflush(stdout);
  }
  return 0;
}

// The Node-API entry points: kernel calls (checked by native/args.h, the C++ half of
// src/backends/contract.ts), buffer allocation, compiled steps and module init. No C++ exception
// crosses into V8: every entry point catches everything. Hot paths use raw napi_* calls (one
// napi_get_typedarray_info per buffer, or none through the argument block) to keep a call well
// under a microsecond.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "gemm.h"
#include "threadpool.h"

namespace deltaprop {
namespace {

using namespace boundary;
constexpr int kMaxThreads = abi::MAX_THREADS;

napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

napi_value number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

// Runs a kernel body, turning any C++ exception into a JS Error.
template <typename F>
napi_value guarded(napi_env env, const char* fn, F&& body) {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, nullptr, (std::string(fn) + ": out of memory").c_str());
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, (std::string(fn) + ": " + e.what()).c_str());
  } catch (...) {
    napi_throw_error(env, nullptr, (std::string(fn) + ": unknown native error").c_str());
  }
  return nullptr;
}

template <class ArgsT>
Ctx& ctx_of(ArgsT& a) { return static_cast<CtxBox*>(a.data())->ctx; }

// Every kernel reads its arguments in the contract's order (contract.ts): the non-buffer arguments
// in positional order, then the buffers in positional order (outputs flagged), then the overlap
// check. Shapes are in the comment above each.

// gemm(transA, transB, m, n, k, alpha, a, b, beta, c): op(a) (m,k), op(b) (k,n), c (m,n) written
template <class ArgsT>
napi_value Gemm(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "gemm");
  using P = abi::arg::gemm;
  bool ta = A.boolean(P::transA, "transA"), tb = A.boolean(P::transB, "transB");
  idx m = A.size(P::m, "m"), n = A.size(P::n, "n"), k = A.size(P::k, "k");
  float alpha = A.real(P::alpha, "alpha");
  float beta = A.real(P::beta, "beta");
  const float* a = A.f32(P::a, "a", m * k, "m*k");
  const float* b = A.f32(P::b, "b", k * n, "k*n");
  float* c = A.f32(P::c, "c", m * n, "m*n", false, true);
  A.no_overlap();
  if (!A.ok()) return nullptr;
  return guarded(env, "gemm", [&] {
    gemm(ctx_of(A), ta, tb, m, n, k, alpha, a, b, beta, c);
    return undefined(env);
  });
}

// denseForward(y, x, w, b, m, inp, out, act, alpha): y (m,out) written, x (m,inp), w (inp,out), b (out)
template <class ArgsT>
napi_value DenseForward(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "denseForward");
  using P = abi::arg::denseForward;
  idx m = A.size(P::m, "m"), inp = A.size(P::inp, "inp"), out = A.size(P::out, "out");
  int act = (int)A.integer(P::act, "act", 0, abi::ACT_MAX);
  float alpha = A.real(P::alpha, "alpha");
  float* y = A.f32(P::y, "y", m * out, "m*out", false, true);
  const float* x = A.f32(P::x, "x", m * inp, "m*inp");
  const float* w = A.f32(P::w, "w", inp * out, "inp*out");
  const float* b = A.f32(P::b, "b", out, "out");
  A.no_overlap();
  if (!A.ok()) return nullptr;
  return guarded(env, "denseForward", [&] {
    dense_forward(ctx_of(A), y, x, w, b, m, inp, out, act, alpha);
    return undefined(env);
  });
}

// denseBackward(dw, db, dx|null, dz, x, w, m, inp, out, scale, prevAct, alpha):
// dw (inp,out), db (out), dx (m,inp) written; dz (m,out), x (m,inp), w (inp,out)
template <class ArgsT>
napi_value DenseBackward(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "denseBackward");
  using P = abi::arg::denseBackward;
  idx m = A.size(P::m, "m"), inp = A.size(P::inp, "inp"), out = A.size(P::out, "out");
  float scale = A.real(P::scale, "scale");
  int prev = (int)A.integer(P::prevAct, "prevAct", 0, abi::PREV_ACT_MAX);  // never softmax
  float alpha = A.real(P::alpha, "alpha");
  float* dw = A.f32(P::dw, "dw", inp * out, "inp*out", false, true);
  float* db = A.f32(P::db, "db", out, "out", false, true);
  float* dx = A.f32(P::dx, "dx", m * inp, "m*inp", true, true);
  const float* dz = A.f32(P::dz, "dz", m * out, "m*out");
  const float* x = A.f32(P::x, "x", m * inp, "m*inp");
  const float* w = A.f32(P::w, "w", inp * out, "inp*out");
  A.no_overlap();
  if (!A.ok()) return nullptr;
  return guarded(env, "denseBackward", [&] {
    dense_backward(ctx_of(A), dw, db, dx, dz, x, w, m, inp, out, scale, prev, alpha);
    return undefined(env);
  });
}

// lossDelta(dz, a, y, m, n, loss, act, alpha) -> summed loss; dz (m,n) written, a (m,n), y (m,n)
template <class ArgsT>
napi_value LossDelta(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "lossDelta");
  using P = abi::arg::lossDelta;
  idx m = A.size(P::m, "m"), n = A.size(P::n, "n");
  int loss = (int)A.integer(P::loss, "loss", 0, abi::LOSS_MAX);
  int act = (int)A.integer(P::act, "act", 0, abi::ACT_MAX);
  float alpha = A.real(P::alpha, "alpha");
  float* dz = A.f32(P::dz, "dz", m * n, "m*n", false, true);
  const float* a = A.f32(P::a, "a", m * n, "m*n");
  const float* y = A.f32(P::y, "y", m * n, "m*n");
  A.no_overlap();
  if (!A.ok()) return nullptr;
  if (n == 0) return number(env, 0);
  return guarded(env, "lossDelta", [&] {
    return number(env, ctx_of(A).k->loss_delta(dz, a, y, m, n, loss, act, alpha));
  });
}

// sumSquares(g, n)
template <class ArgsT>
napi_value SumSquares(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "sumSquares");
  using P = abi::arg::sumSquares;
  idx n = A.size(P::n, "n");
  const float* g = A.f32(P::g, "g", n, "n");
  if (!A.ok()) return nullptr;
  return number(env, ctx_of(A).k->sum_squares(g, n));
}

// sgdStep(p, g, n, lr, gradScale, weightDecay, decayCount): p (n) updated, g (n); decayCount <= n
template <class ArgsT>
napi_value SgdStep(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "sgdStep");
  using P = abi::arg::sgdStep;
  idx n = A.size(P::n, "n");
  float lr = A.real(P::lr, "lr"), gs = A.real(P::gradScale, "gradScale"), wd = A.real(P::weightDecay, "weightDecay");
  idx dc = A.integer(P::decayCount, "decayCount", 0, (double)n);
  float* p = A.f32(P::p, "p", n, "n", false, true);
  const float* g = A.f32(P::g, "g", n, "n");
  A.no_overlap();
  if (!A.ok()) return nullptr;
  ctx_of(A).k->sgd_step(p, g, n, lr, gs, wd, dc);
  return undefined(env);
}

// momentumStep(p, g, v, n, lr, gradScale, mu, nesterov, weightDecay, decayCount): p, v (n) updated
template <class ArgsT>
napi_value MomentumStep(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "momentumStep");
  using P = abi::arg::momentumStep;
  idx n = A.size(P::n, "n");
  float lr = A.real(P::lr, "lr"), gs = A.real(P::gradScale, "gradScale"), mu = A.real(P::mu, "mu");
  bool nest = A.boolean(P::nesterov, "nesterov");
  float wd = A.real(P::weightDecay, "weightDecay");
  idx dc = A.integer(P::decayCount, "decayCount", 0, (double)n);
  float* p = A.f32(P::p, "p", n, "n", false, true);
  const float* g = A.f32(P::g, "g", n, "n");
  float* v = A.f32(P::v, "v", n, "n", false, true);
  A.no_overlap();
  if (!A.ok()) return nullptr;
  ctx_of(A).k->momentum_step(p, g, v, n, lr, gs, mu, nest, wd, dc);
  return undefined(env);
}

// adamStep(p, g, m, v, n, lr, gradScale, beta1, beta2, eps, bc1, bc2, weightDecay, decoupled,
// decayCount): p, m, v (n) updated; bc1, bc2 divide, so nonzero
template <class ArgsT>
napi_value AdamStep(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "adamStep");
  using P = abi::arg::adamStep;
  idx n = A.size(P::n, "n");
  float lr = A.real(P::lr, "lr"), gs = A.real(P::gradScale, "gradScale"), b1 = A.real(P::beta1, "beta1"),
        b2 = A.real(P::beta2, "beta2"), eps = A.real(P::eps, "eps"), bc1 = A.nonzero(P::bc1, "bc1"), bc2 = A.nonzero(P::bc2, "bc2"),
        wd = A.real(P::weightDecay, "weightDecay");
  bool dec = A.boolean(P::decoupled, "decoupled");
  idx dc = A.integer(P::decayCount, "decayCount", 0, (double)n);
  float* p = A.f32(P::p, "p", n, "n", false, true);
  const float* g = A.f32(P::g, "g", n, "n");
  float* m = A.f32(P::m, "m", n, "n", false, true);
  float* v = A.f32(P::v, "v", n, "n", false, true);
  A.no_overlap();
  if (!A.ok()) return nullptr;
  ctx_of(A).k->adam_step(p, g, m, v, n, lr, gs, b1, b2, eps, bc1, bc2, wd, dec, dc);
  return undefined(env);
}

// gatherRows(dst, src, order|null, start, count, cols): row i of dst (count rows of cols floats) is
// row order[start+i] of src (row start+i without an order): the staging of a shuffled batch.
// Every index is checked against src before anything is copied.
napi_value GatherRows(napi_env env, napi_callback_info info) {
  Args A(env, info, "gatherRows");
  idx start = A.size(3, "start"), count = A.size(4, "count"), cols = A.size(5, "cols");
  float* dst = A.f32(0, "dst", count * cols, "count*cols");
  size_t src_len = 0, order_len = 0;
  const float* src = A.f32(1, "src", 0, "0", false, false, &src_len);
  const uint32_t* order = A.u32(2, "order", &order_len, true);
  if (!A.ok()) return nullptr;
  const idx src_rows = cols == 0 ? 0 : (idx)(src_len / (size_t)cols);
  if (order) {
    if ((double)start + (double)count > (double)order_len) {
      A.fail(true, "start + count = " + std::to_string((long long)(start + count)) + " is past the end of order (" +
                       std::to_string(order_len) + " entries)");
      return nullptr;
    }
    if (cols > 0) {
      for (idx i = 0; i < count; i++) {
        if ((idx)order[start + i] >= src_rows) {
          A.fail(true, "order[" + std::to_string((long long)(start + i)) + "] = " + std::to_string(order[start + i]) +
                           " is not a row of src (" + std::to_string((long long)src_rows) + " rows of " +
                           std::to_string((long long)cols) + ")");
          return nullptr;
        }
      }
    }
  } else if (cols > 0 && start + count > src_rows) {
    A.fail(true, "rows [" + std::to_string((long long)start) + ", " + std::to_string((long long)(start + count)) +
                     ") are not all in src (" + std::to_string((long long)src_rows) + " rows of " +
                     std::to_string((long long)cols) + ")");
    return nullptr;
  }
  gather_rows(ctx_of(A), dst, src, order ? order + start : nullptr, start, count, cols);
  return undefined(env);
}

// vexp(y, x, n) and vact(y, x, n, act, alpha): the vector exp/activations alone, for tests.
napi_value VExp(napi_env env, napi_callback_info info) {
  Args A(env, info, "vexp");
  idx n = A.size(2, "n");
  float* y = A.f32(0, "y", n, "n");
  const float* x = A.f32(1, "x", n, "n");
  if (!A.ok()) return nullptr;
  ctx_of(A).k->vexp(y, x, n);
  return undefined(env);
}

napi_value VAct(napi_env env, napi_callback_info info) {
  Args A(env, info, "vact");
  idx n = A.size(2, "n");
  int act = (int)A.integer(3, "act", 0, abi::PREV_ACT_MAX);  // softmax is not elementwise
  float alpha = A.real(4, "alpha");
  float* y = A.f32(0, "y", n, "n");
  const float* x = A.f32(1, "x", n, "n");
  if (!A.ok()) return nullptr;
  ctx_of(A).k->vact(y, x, n, act, alpha);
  return undefined(env);
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  Args A(env, info, "setThreads");
  double d = A.number(0, "n");
  if (!A.ok()) return nullptr;
  if (std::isnan(d)) {
    A.fail(true, "n must be a number of threads, got NaN");
    return nullptr;
  }
  int t = d < 1 ? 1 : d > kMaxThreads ? kMaxThreads : (int)d;
  ctx_of(A).threads = t;
  return number(env, t);
}

napi_value GetThreads(napi_env env, napi_callback_info info) {
  Args A(env, info, "threads");
  return number(env, ctx_of(A).threads);
}

// ---------------------------------------------------------------------------------------------
// Compiled training steps (backend.ts StepCompiler): a whole forward/loss/backward/update of one
// network at one batch size in one call, for tiny nets where a call per kernel costs more than
// the arithmetic. The same functions run in the same order as the kernel-by-kernel path, so the
// bits are the same. Everything is checked once at compile time; each run re-checks that every
// buffer is still the live allocation it was (a pointer compare per buffer), so a step can never
// touch freed memory.

struct StepLayer {
  idx inp, out;
  int act;
  float alpha;
  float *w, *b, *dw, *db, *y, *dz;
};

struct StepPlan {
  CtxBox* box = nullptr;  // one reference of the box, held as long as the step
  idx m = 0, n = 0, dc = 0;
  int loss = 0, opt = 0;
  float *x = nullptr, *y = nullptr, *params = nullptr, *grads = nullptr, *backup = nullptr, *s1 = nullptr,
        *s2 = nullptr;
  std::vector<StepLayer> layers;
  struct Held { int id; const float* base; size_t end; };
  std::vector<Held> held;
};

// run(): hyperparameters from the argument block (abi::HYPER_* slots); the summed loss goes back
// in slot HYPER_LOSS, because a returned double would be a new heap number every step.
napi_value StepRun(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data);
  StepPlan& P = *static_cast<StepPlan*>(data);
  const Registry& reg = *P.box->inst.reg;
  for (const StepPlan::Held& h : P.held) {
    if ((size_t)h.id >= reg.slots.size() || reg.slots[(size_t)h.id].data != h.base || reg.slots[(size_t)h.id].length < h.end) {
      napi_throw_error(env, nullptr, "compiled step: one of its buffers was freed; compile the step again");
      return nullptr;
    }
  }
  // The same checks and words as contract.ts checkHyper (which the JavaScript side runs first).
  const double* H = P.box->inst.args;
  const char* const* names = abi::HYPER_NAMES;
  for (int i = 0; i < abi::HYPER_INPUTS; i++) {
    const bool nesterov = i == abi::HYPER_NESTEROV;
    const bool bad = nesterov ? !(H[i] == 0 || H[i] == 1) : !finite_f32(H[i]);
    if (bad) {
      napi_throw_range_error(env, nullptr, (std::string("compiled step: ") + names[i] +
                                            (nesterov ? " must be a boolean (0 or 1 in the argument block), got "
                                                    : " must be a finite float32, got ") + js_number(H[i])).c_str());
      return nullptr;
    }
  }
  for (int i : {abi::HYPER_BC1, abi::HYPER_BC2}) {
    if (P.opt != OPT_ADAM && P.opt != OPT_ADAMW) break;
    if ((float)H[i] == 0.f) {
      napi_throw_range_error(env, nullptr, (std::string("compiled step: ") + names[i] +
                                            " must be a nonzero finite float32, got " + js_number(H[i])).c_str());
      return nullptr;
    }
  }
  return guarded(env, "compiled step", [&]() -> napi_value {
    const Ctx& ctx = P.box->ctx;
    const KernelTable& T = *ctx.k;
    const idx L = (idx)P.layers.size();
    const float* in = P.x;
    for (idx l = 0; l < L; l++) {
      const StepLayer& s = P.layers[(size_t)l];
      dense_forward(ctx, s.y, in, s.w, s.b, P.m, s.inp, s.out, s.act, s.alpha);
      in = s.y;
    }
    const StepLayer& last = P.layers[(size_t)L - 1];
    const double loss = last.out == 0 ? 0.0 : T.loss_delta(last.dz, last.y, P.y, P.m, last.out, P.loss, last.act, last.alpha);
    P.box->inst.args[abi::HYPER_LOSS] = loss;
    if (!std::isfinite(loss)) return undefined(env);
    const float scale = (float)(1.0 / (double)P.m);
    for (idx l = L - 1; l >= 0; l--) {
      const StepLayer& s = P.layers[(size_t)l];
      const float* x = l == 0 ? P.x : P.layers[(size_t)l - 1].y;
      float* dx = l == 0 ? nullptr : P.layers[(size_t)l - 1].dz;
      const int prev = l == 0 ? ACT_LINEAR : P.layers[(size_t)l - 1].act;
      const float prev_alpha = l == 0 ? 0.f : P.layers[(size_t)l - 1].alpha;
      dense_backward(ctx, s.dw, s.db, dx, s.dz, x, s.w, P.m, s.inp, s.out, scale, prev, prev_alpha);
    }
    double gs = 1.0;
    const double clip = H[abi::HYPER_CLIP_NORM];
    if (clip > 0) {
      const double norm = std::sqrt(T.sum_squares(P.grads, P.n));
      if (norm > clip) gs = clip / norm;
    }
    const float lr = (float)H[abi::HYPER_LR], wd = (float)H[abi::HYPER_WEIGHT_DECAY], g = (float)gs;
    // The backup copy and the update are elementwise: split over threads in ranges (the update of
    // wide-mlp's 670k parameters is ~7% of a 2-thread step). Range starts are multiples of 1024
    // floats, so each element takes the same (vector or scalar) path whatever the thread count.
    const idx n = P.n;
    const int parts = ctx.threads > 1 && n >= (1 << 16) ? 2 * ctx.threads : 1;
    auto update = [&](int t) {
      const idx lo = t == 0 ? 0 : (n * t / parts) & ~(idx)1023, hi = t == parts - 1 ? n : (n * (t + 1) / parts) & ~(idx)1023;
      if (lo >= hi) return;
      const idx len = hi - lo, dc = P.dc - lo < 0 ? 0 : P.dc - lo;
      std::memcpy(P.backup + lo, P.params + lo, (size_t)len * sizeof(float));
      switch (P.opt) {
        case OPT_SGD: T.sgd_step(P.params + lo, P.grads + lo, len, lr, g, wd, dc); break;
        case OPT_MOMENTUM: T.momentum_step(P.params + lo, P.grads + lo, P.s1 + lo, len, lr, g, (float)H[abi::HYPER_MU], H[abi::HYPER_NESTEROV] != 0, wd, dc); break;
        default:
          T.adam_step(P.params + lo, P.grads + lo, P.s1 + lo, P.s2 + lo, len, lr, g, (float)H[abi::HYPER_BETA1],
                      (float)H[abi::HYPER_BETA2], (float)H[abi::HYPER_EPS], (float)H[abi::HYPER_BC1],
                      (float)H[abi::HYPER_BC2], wd, P.opt == OPT_ADAMW, dc);
      }
    };
    if (parts == 1) update(0);
    else ThreadPool::instance().run(parts, ctx.threads, update);
    return undefined(env);
  });
}

void free_step(napi_env env, void* data, void*) {
  StepPlan* p = static_cast<StepPlan*>(data);
  p->box->unref(env);
  delete p;
}

// compileStep(desc: Float64Array) -> { run(): void }. desc layout (all numbers): the header at the
// abi::STEP_* slots (sizes, codes, then the buffers as id, offset, length; id -1 for null), then
// per layer abi::STEP_LAYER_SIZE slots at the abi::STEP_LAYER_* offsets.
napi_value CompileStep(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc, argv, &self, &data);
  CtxBox* box = static_cast<CtxBox*>(data);
  void* wrapped = nullptr;
  if (!self || napi_unwrap(env, self, &wrapped) != napi_ok || wrapped != box) {
    napi_throw_type_error(env, nullptr, "compileStep: must be called as a method of its kernel object");
    return nullptr;
  }
  const Registry& reg = *box->inst.reg;
  napi_typedarray_type tt;
  size_t len = 0;
  void* ptr = nullptr;
  if (argc < 1 || napi_get_typedarray_info(env, argv[0], &tt, &len, &ptr, nullptr, nullptr) != napi_ok ||
      tt != napi_float64_array) {
    napi_throw_type_error(env, nullptr, "compileStep: desc must be a Float64Array");
    return nullptr;
  }
  const double* d = static_cast<const double*>(ptr);
  std::string err;
  auto fail = [&](const std::string& m) { if (err.empty()) err = m; };
  auto integer = [&](size_t at, const char* name, double lo, double hi) -> idx {
    if (at >= len) { fail(std::string(name) + " is missing"); return 0; }
    const double v = d[at];
    if (!(v >= lo && v <= hi) || (double)(int64_t)v != v) { fail(std::string(name) + " must be an integer in range"); return 0; }
    return (idx)v;
  };
  auto p = std::make_unique<StepPlan>();
  // buffer triple at `at`, at least `need` floats; nullptr for id -1 when allowed
  auto buffer = [&](size_t at, const std::string& name, idx need, bool nullable) -> float* {
    if (at + abi::BUF_SLOTS - 1 >= len) { fail(name + " is missing"); return nullptr; }
    const double id = d[at], off = d[at + 1], n = d[at + 2];
    if (nullable && id == -1) return nullptr;
    if (!(id >= 0 && id < (double)reg.slots.size()) || (double)(int64_t)id != id || !reg.slots[(size_t)id].data) {
      fail(name + ": not a live buffer of this backend"); return nullptr;
    }
    const Registry::Slot& s = reg.slots[(size_t)id];
    if (!(off >= 0 && n >= 0 && off + n <= (double)s.length) || (double)(int64_t)off != off || (double)(int64_t)n != n) {
      fail(name + ": view outside its buffer"); return nullptr;
    }
    if (n < (double)need) { fail(name + " has " + std::to_string((long long)n) + " floats, fewer than " + std::to_string((long long)need)); return nullptr; }
    p->held.push_back({(int)id, s.data, (size_t)(off + (double)need)});
    return s.data + (size_t)off;
  };
  using namespace abi;
  p->m = integer(STEP_M, "m", 1, kMaxSize);
  // no fixed limit: the plan's layers are a vector, and the descriptor length must match L
  const idx L = integer(STEP_LAYERS, "layers", 1, (double)(len > STEP_SIZE ? (len - STEP_SIZE) / STEP_LAYER_SIZE : 1));
  p->loss = (int)integer(STEP_LOSS, "loss", 0, LOSS_MAX);
  p->opt = (int)integer(STEP_OPTIMIZER, "optimizer", 0, OPT_MAX);
  p->n = integer(STEP_N, "n", 0, kMaxSize);
  p->dc = integer(STEP_DECAY_COUNT, "decayCount", 0, kMaxSize);
  if (err.empty() && len != STEP_SIZE + (size_t)L * STEP_LAYER_SIZE) fail("desc length does not match its layer count");
  if (err.empty() && p->dc > p->n) fail("decayCount exceeds n");
  if (err.empty()) {
    p->params = buffer(STEP_PARAMS, "params", p->n, false);
    p->grads = buffer(STEP_GRADS, "grads", p->n, false);
    p->backup = buffer(STEP_BACKUP, "backup", p->n, false);
    p->s1 = buffer(STEP_STATE1, "state1", p->n, true);
    p->s2 = buffer(STEP_STATE2, "state2", p->n, true);
    if (p->opt != OPT_SGD && !p->s1) fail("state1 is required by this optimizer");
    if ((p->opt == OPT_ADAM || p->opt == OPT_ADAMW) && !p->s2) fail("state2 is required by adam");
  }
  idx prev_out = -1, first_in = 0;
  for (idx l = 0; err.empty() && l < L; l++) {
    const size_t at = STEP_SIZE + (size_t)l * STEP_LAYER_SIZE;
    const std::string nm = "layer " + std::to_string((long long)l) + " ";
    StepLayer s{};
    s.inp = integer(at + STEP_LAYER_INP, "inp", 0, kMaxSize);
    s.out = integer(at + STEP_LAYER_OUT, "out", 0, kMaxSize);
    s.act = (int)integer(at + STEP_LAYER_ACT, "act", 0, ACT_MAX);
    s.alpha = (float)d[at + STEP_LAYER_ALPHA];
    if (!std::isfinite(d[at + STEP_LAYER_ALPHA])) fail(nm + "alpha must be finite");
    const idx wo = integer(at + STEP_LAYER_W_OFFSET, "wOffset", 0, kMaxSize), bo = integer(at + STEP_LAYER_B_OFFSET, "bOffset", 0, kMaxSize);
    if (!err.empty()) break;
    if (l == 0) first_in = s.inp;
    else if (s.inp != prev_out) fail(nm + "inputs do not match the previous layer's units");
    if (s.act == ACT_SOFTMAX && l != L - 1) fail(nm + "softmax is only allowed on the output layer");
    if (wo + s.inp * s.out > p->n || bo + s.out > p->n) fail(nm + "weights or biases outside the n params");
    if (!err.empty()) break;
    s.w = p->params + wo; s.b = p->params + bo; s.dw = p->grads + wo; s.db = p->grads + bo;
    s.y = buffer(at + STEP_LAYER_OUTPUT, nm + "output", p->m * s.out, false);
    s.dz = buffer(at + STEP_LAYER_DELTA, nm + "delta", p->m * s.out, false);
    prev_out = s.out;
    p->layers.push_back(s);
  }
  if (err.empty()) {
    p->x = buffer(STEP_X, "x", p->m * first_in, false);
    p->y = buffer(STEP_Y, "y", p->m * prev_out, false);
  }
  if (!err.empty()) {
    napi_throw_range_error(env, nullptr, ("compileStep: " + err).c_str());
    return nullptr;
  }
  StepPlan* plan = p.release();
  plan->box = box;
  box->ref();
  napi_value obj, run;
  napi_create_object(env, &obj);
  napi_create_function(env, "run", NAPI_AUTO_LENGTH, StepRun, plan, &run);
  napi_add_finalizer(env, run, plan, free_step, nullptr, nullptr);  // the plan lives as long as run()
  napi_set_named_property(env, obj, "run", run);
  return obj;
}

// The kernel object and each of its functions hold one reference of the box.
void unref_box(napi_env env, void* data, void*) { static_cast<CtxBox*>(data)->unref(env); }

void free_plain(napi_env, void* data, void*) { std::free(data); }

// create(isa: string, threads: number, smallGemm?: number) -> kernel object bound to that ISA's
// table; smallGemm is the m·n·k at or below which GEMM runs unpacked (tests pass 0 and 1e30).
napi_value Create(napi_env env, napi_callback_info info) {
  Args A(env, info, "create");
  napi_value isa_v = A.arg(0);
  napi_valuetype t = napi_undefined;
  if (!isa_v || napi_typeof(env, isa_v, &t) != napi_ok || t != napi_string) {
    A.type_error("isa must be a string ('' for the best available)");
    return nullptr;
  }
  char name[32] = {0};
  size_t len = 0;
  napi_get_value_string_utf8(env, isa_v, name, sizeof name, &len);
  idx threads = A.integer(1, "threads", 1, kMaxThreads);
  double small = kSmallGemmDefault;
  napi_valuetype st = napi_undefined;
  if (A.arg(2) && napi_typeof(env, A.arg(2), &st) == napi_ok && st != napi_undefined) {
    small = A.number(2, "smallGemm");
    if (A.ok() && !(small >= 0)) A.fail(true, "smallGemm must be >= 0");
  }
  if (!A.ok()) return nullptr;
  const char* why = "";
  const KernelTable* table = select_isa(name, &why);
  if (!table) {
    std::string msg = std::string("create: ISA '") + name + "' is not available: " + why +
                      " (this CPU runs: " + available_isas() + ")";
    napi_throw_error(env, "ERR_DELTAPROP_ISA", msg.c_str());
    return nullptr;
  }
  Registry* reg = static_cast<Registry*>(A.data());
  double* block = static_cast<double*>(std::calloc(kArgSlots, sizeof(double)));
  if (!block) {
    napi_throw_error(env, nullptr, "create: out of memory");
    return nullptr;
  }
  napi_value block_ab, block_arr;
  if (napi_create_external_arraybuffer(env, block, kArgSlots * sizeof(double), free_plain, nullptr, &block_ab) != napi_ok) {
    std::free(block);
    napi_throw_error(env, nullptr, "create: cannot create the argument block");
    return nullptr;
  }
  napi_create_typedarray(env, napi_float64_array, kArgSlots, block_ab, 0, &block_arr);
  CtxBox* box = new CtxBox{Ctx{table, (int)threads, small}, Instance{reg, block, nullptr}};
  reg->refs++;  // the box's, dropped when the box goes
  napi_create_reference(env, block_arr, 1, &box->inst.args_ref);
  napi_value obj;
  napi_create_object(env, &obj);
  box->ref();
  napi_wrap(env, obj, box, unref_box, nullptr, nullptr);
  napi_set_named_property(env, obj, "args", block_arr);
  struct Fn { const char* name; napi_callback cb; };
  const Fn fns[] = {{"gemm", Gemm<Args>}, {"denseForward", DenseForward<Args>},
                    {"denseBackward", DenseBackward<Args>}, {"lossDelta", LossDelta<Args>},
                    {"sumSquares", SumSquares<Args>}, {"sgdStep", SgdStep<Args>},
                    {"momentumStep", MomentumStep<Args>}, {"adamStep", AdamStep<Args>},
                    {"gemmFast", Gemm<FastArgs>}, {"denseForwardFast", DenseForward<FastArgs>},
                    {"denseBackwardFast", DenseBackward<FastArgs>}, {"lossDeltaFast", LossDelta<FastArgs>},
                    {"sumSquaresFast", SumSquares<FastArgs>}, {"sgdStepFast", SgdStep<FastArgs>},
                    {"momentumStepFast", MomentumStep<FastArgs>}, {"adamStepFast", AdamStep<FastArgs>},
                    {"compileStep", CompileStep}, {"gatherRows", GatherRows},
                    {"vexp", VExp}, {"vact", VAct}, {"setThreads", SetThreads}, {"getThreads", GetThreads}};
  for (const Fn& f : fns) {
    napi_value fv;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, box, &fv);
    // a function kept after its kernel object is collected keeps the context it runs on
    box->ref();
    napi_add_finalizer(env, fv, box, unref_box, nullptr, nullptr);
    napi_set_named_property(env, obj, f.name, fv);
  }
  napi_value s;
  napi_create_string_utf8(env, table->isa, NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, obj, "isa", s);
  napi_set_named_property(env, obj, "mr", number(env, table->mr));
  napi_set_named_property(env, obj, "nr", number(env, table->nr));
  return obj;
}

struct AllocHint {
  Registry* reg;
  int id;
  size_t bytes;
};

void free_aligned(napi_env env, void* data, void* hint) {
  AllocHint* h = static_cast<AllocHint*>(hint);
  std::free(data);
  h->reg->release(h->id);
  int64_t ignored;
  napi_adjust_external_memory(env, -(int64_t)h->bytes, &ignored);
  delete h;
}

// A zero-filled Float32Array of n floats over 64-byte-aligned memory, registered under an id.
napi_value alloc_array(napi_env env, Args& A, int* id_out) {
  idx n = A.integer(0, "length", 0, 1073741823.0);  // 4 GiB of floats at most
  if (!A.ok()) return nullptr;
  Registry* reg = static_cast<Registry*>(A.data());
  size_t bytes = ((size_t)n * sizeof(float) + 63) / 64 * 64;
  if (bytes == 0) bytes = 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) {
    napi_throw_range_error(env, nullptr, ("alloc: cannot allocate " + std::to_string(bytes) + " bytes").c_str());
    return nullptr;
  }
  std::memset(p, 0, bytes);
  AllocHint* hint = new AllocHint{reg, -1, bytes};
  napi_value ab, ta;
  if (napi_create_external_arraybuffer(env, p, bytes, free_aligned, hint, &ab) != napi_ok) {
    std::free(p);
    delete hint;
    napi_throw_error(env, nullptr, "alloc: cannot create an external ArrayBuffer");
    return nullptr;
  }
  hint->id = reg->add(static_cast<float*>(p), (size_t)n);
  *id_out = hint->id;
  int64_t ignored;
  napi_adjust_external_memory(env, (int64_t)bytes, &ignored);
  napi_create_typedarray(env, napi_float32_array, (size_t)n, ab, 0, &ta);
  return ta;
}

// alloc(n) -> Float32Array
napi_value Alloc(napi_env env, napi_callback_info info) {
  Args A(env, info, "alloc");
  int id;
  return alloc_array(env, A, &id);
}

// allocBuf(n) -> [Float32Array, id]: the id names the buffer in the argument block
napi_value AllocBuf(napi_env env, napi_callback_info info) {
  Args A(env, info, "allocBuf");
  int id = -1;
  napi_value ta = alloc_array(env, A, &id);
  if (!ta) return nullptr;
  napi_value pair;
  napi_create_array_with_length(env, 2, &pair);
  napi_set_element(env, pair, 0, ta);
  napi_set_element(env, pair, 1, number(env, id));
  return pair;
}

// addressOf(f32array) % 64, for the alignment test
napi_value Misalignment(napi_env env, napi_callback_info info) {
  Args A(env, info, "misalignment");
  float* p = A.f32(0, "array", 0, "0");
  if (!A.ok()) return nullptr;
  return number(env, (double)((uintptr_t)p % 64));
}

napi_value Init(napi_env env, napi_value exports) {
  struct Fn { const char* name; napi_callback cb; };
  const Fn fns[] = {{"create", Create}, {"alloc", Alloc}, {"allocBuf", AllocBuf}, {"misalignment", Misalignment}};
  // One registry per JS environment; the environment's reference is dropped when it exits, the
  // buffers' when they are freed (their finalizers may run after the environment's cleanup).
  Registry* reg = new Registry();
  napi_set_instance_data(env, reg, [](napi_env, void* data, void*) { static_cast<Registry*>(data)->unref(); }, nullptr);
  for (const Fn& f : fns) {
    napi_value fv;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, reg, &fv);
    napi_set_named_property(env, exports, f.name, fv);
  }
  napi_value s;
  napi_create_string_utf8(env, available_isas(), NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, exports, "availableIsas", s);
  napi_set_named_property(env, exports, "hardwareThreads", number(env, ThreadPool::hardware_threads()));
  return exports;
}

}  // namespace
}  // namespace deltaprop

NAPI_MODULE_INIT() { return deltaprop::Init(env, exports); }

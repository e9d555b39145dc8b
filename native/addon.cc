// The Node-API boundary. Every argument is checked here, once (types, integer sizes in range,
// Float32Array lengths against the shapes), and a bad call throws a JS TypeError/RangeError naming
// the function and the argument; the kernels behind it trust their inputs. No C++ exception crosses
// into V8: every entry point catches everything. Hot paths use raw napi_* calls (one
// napi_get_typedarray_info per buffer) to keep a call well under a microsecond.
#define NAPI_VERSION 8
#include <napi.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <memory>
#include <vector>

#include "gemm.h"
#include "threadpool.h"

namespace deltaprop {
namespace {

typedef std::ptrdiff_t idx;
constexpr double kMaxSize = 2147483647.0;  // sizes are int32 on the JS side
constexpr int kMaxThreads = 256;

// What both argument readers share: the first failure throws a JS error naming the function and
// the argument, and turns every later read into a no-op.
class ArgErrors {
 public:
  bool ok() const { return ok_; }
  void* data() const { return data_; }
  void type_error(const char* name, const char* expected) {
    fail(false, std::string(name) + " must be " + expected);
  }
  void fail(bool range, const std::string& msg) {
    if (!ok_) return;
    ok_ = false;
    std::string full = std::string(fn_) + ": " + msg;
    if (range) napi_throw_range_error(env_, nullptr, full.c_str());
    else napi_throw_type_error(env_, nullptr, full.c_str());
  }

 protected:
  ArgErrors(napi_env env, const char* fn) : env_(env), fn_(fn) {}
  static std::string fmt(double d) {
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", d);
    return b;
  }
  napi_env env_;
  const char* fn_;
  void* data_ = nullptr;
  bool ok_ = true;
};

// Reads arguments in order; the first failure throws and turns every later read into a no-op.
class Args : public ArgErrors {
 public:
  Args(napi_env env, napi_callback_info info, const char* fn) : ArgErrors(env, fn) {
    napi_get_cb_info(env, info, &argc_, argv_, nullptr, &data_);
    if (argc_ > kMax) argc_ = kMax;
  }
  napi_value arg(size_t i) const {
    return i < argc_ ? argv_[i] : nullptr;
  }

  double number(size_t i, const char* name) {
    if (!ok_) return 0;
    double d = 0;
    napi_value v = arg(i);
    // napi_get_value_double checks the type itself: one call per argument on the hot path
    if (!v || napi_get_value_double(env_, v, &d) != napi_ok) {
      type_error(name, "a number");
      return 0;
    }
    return d;
  }

  // A finite real number (hyperparameters, alpha/beta).
  float real(size_t i, const char* name) {
    double d = number(i, name);
    if (ok_ && !std::isfinite(d)) fail(true, std::string(name) + " must be finite, got " + fmt(d));
    return (float)d;
  }

  // An integer in [lo, hi].
  idx integer(size_t i, const char* name, double lo, double hi) {
    double d = number(i, name);
    if (!ok_) return 0;
    if (!(d >= lo && d <= hi) || (double)(idx)d != d) {  // NaN fails the range test; no libm call
      fail(true, std::string(name) + " must be an integer in [" + fmt(lo) + ", " + fmt(hi) + "], got " + fmt(d));
      return 0;
    }
    return (idx)d;
  }
  idx size(size_t i, const char* name) { return integer(i, name, 0, kMaxSize); }

  bool boolean(size_t i, const char* name) {
    if (!ok_) return false;
    bool b = false;
    napi_value v = arg(i);
    if (!v || napi_get_value_bool(env_, v, &b) != napi_ok) {
      type_error(name, "a boolean");
      return false;
    }
    return b;
  }

  // A Float32Array holding at least `need` floats (need computed from sizes already checked,
  // each < 2^31, so products of two cannot overflow int64). null is accepted when `nullable`.
  // Its length goes to *len_out when given.
  float* f32(size_t i, const char* name, idx need, const char* shape, bool nullable = false,
             size_t* len_out = nullptr) {
    size_t len = 0;
    void* ptr = typed(i, name, napi_float32_array, nullable ? "a Float32Array or null" : "a Float32Array", nullable, &len);
    if (!ptr) return nullptr;
    if ((double)len < (double)need) {
      fail(true, std::string(name) + " has " + std::to_string(len) + " floats, fewer than " + shape +
                     " = " + std::to_string((long long)need));
      return nullptr;
    }
    if (len_out) *len_out = len;
    return static_cast<float*>(ptr);
  }

  // A Uint32Array (or null when `nullable`), with its length.
  const uint32_t* u32(size_t i, const char* name, size_t* len_out, bool nullable = false) {
    return static_cast<const uint32_t*>(
        typed(i, name, napi_uint32_array, nullable ? "a Uint32Array or null" : "a Uint32Array", nullable, len_out));
  }

 private:
  // The data of a typed array of type `want` (nullptr for null when nullable, or on failure).
  void* typed(size_t i, const char* name, napi_typedarray_type want, const char* expected, bool nullable,
              size_t* len_out) {
    if (!ok_) return nullptr;
    napi_value v = arg(i);
    napi_typedarray_type tt = napi_int8_array;
    size_t len = 0;
    void* ptr = nullptr;
    // napi_get_typedarray_info fails (without throwing) on anything but a typed array
    if (!v || napi_get_typedarray_info(env_, v, &tt, &len, &ptr, nullptr, nullptr) != napi_ok) {
      napi_valuetype t = napi_undefined;
      if (nullable && v && napi_typeof(env_, v, &t) == napi_ok && t == napi_null) return nullptr;
      type_error(name, expected);
      return nullptr;
    }
    if (tt != want) {
      type_error(name, expected);
      return nullptr;
    }
    if (len_out) *len_out = len;
    // an empty array may have no storage at all: hand back a valid pointer anyway
    static float empty;
    return ptr ? ptr : &empty;
  }

  static constexpr size_t kMax = 16;
  size_t argc_ = kMax;
  napi_value argv_[kMax];
};


// Buffers allocated by alloc(), by id, so that the hot path can name them with numbers: a call
// through the "fast" entry points reads all its arguments from a per-instance Float64Array
// (the argument block) and makes no napi call per argument. One registry per JS environment
// (main thread, each worker); ids are reused after the buffer is garbage-collected.
struct Registry {
  struct Slot { float* data; size_t length; };
  std::vector<Slot> slots;
  std::vector<int> free_ids;
  int add(float* p, size_t n) {
    if (!free_ids.empty()) {
      int id = free_ids.back();
      free_ids.pop_back();
      slots[(size_t)id] = {p, n};
      return id;
    }
    slots.push_back({p, n});
    return (int)slots.size() - 1;
  }
  void release(int id) {
    if (id < 0 || (size_t)id >= slots.size()) return;
    slots[(size_t)id] = {nullptr, 0};
    free_ids.push_back(id);
  }
};

struct Instance {  // the per-Ctx JS-side state of the fast path
  Registry* reg;
  double* args;       // the argument block: kArgSlots doubles
  napi_ref args_ref;  // keeps the block's Float64Array alive as long as the kernel object
};
constexpr int kArgSlots = 48;  // argument position p uses slots 3p (number) or 3p..3p+2 (buffer)

struct CtxBox {  // the data of every function of one kernel object
  Ctx ctx;
  Instance inst;
};

// Reads arguments from the argument block: a number at slot 3p; a buffer as (id, offset, length)
// at slots 3p..3p+2, id -1 for null. Same checks and messages as Args.
class FastArgs : public ArgErrors {
 public:
  FastArgs(napi_env env, napi_callback_info info, const char* fn) : ArgErrors(env, fn) {
    size_t argc = 0;
    napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data_);
    const Instance* in = &static_cast<const CtxBox*>(data_)->inst;
    a_ = in->args;
    reg_ = in->reg;
  }
  double number(size_t p, const char*) { return ok_ ? a_[3 * p] : 0; }
  float real(size_t p, const char* name) {
    double d = number(p, name);
    if (ok_ && !std::isfinite(d)) fail(true, std::string(name) + " must be finite, got " + fmt(d));
    return (float)d;
  }
  idx integer(size_t p, const char* name, double lo, double hi) {
    const double d = a_[3 * p];
    if (ok_ && d >= lo && d <= hi && (double)(int64_t)d == d) return (idx)d;  // NaN fails the range test
    bad_integer(name, d, lo, hi);
    return 0;
  }
  __attribute__((noinline, cold)) void bad_integer(const char* name, double d, double lo, double hi) {
    if (!ok_) return;
    fail(true, std::string(name) + " must be an integer in [" + fmt(lo) + ", " + fmt(hi) + "], got " + fmt(d));
  }
  idx size(size_t p, const char* name) { return integer(p, name, 0, kMaxSize); }
  bool boolean(size_t p, const char* name) {
    double d = number(p, name);
    if (ok_ && d != 0 && d != 1) type_error(name, "a boolean (0 or 1 in the argument block)");
    return d == 1;
  }
  float* f32(size_t p, const char* name, idx need, const char* shape, bool nullable = false) {
    const double id = a_[3 * p], off = a_[3 * p + 1], len = a_[3 * p + 2];
    // The common case in a few compares: a live id, an integral view inside it, long enough.
    if (ok_ && id >= 0 && id < (double)reg_->slots.size() && (double)(int64_t)id == id) {
      const Registry::Slot& s = reg_->slots[(size_t)id];
      if (s.data && off >= 0 && len >= (double)need && off + len <= (double)s.length &&
          (double)(int64_t)off == off && (double)(int64_t)len == len)
        return s.data + (size_t)off;
    }
    if (ok_ && nullable && id == -1) return nullptr;
    bad_f32(name, need, shape, id, off, len);
    return nullptr;
  }
  __attribute__((noinline, cold)) void bad_f32(const char* name, idx need, const char* shape, double id, double off,
                                               double len) {
    if (!ok_) return;
    if (!(id >= 0 && id < (double)reg_->slots.size()) || (double)(int64_t)id != id || !reg_->slots[(size_t)id].data) {
      fail(true, std::string(name) + ": no live buffer with id " + fmt(id));
      return;
    }
    const Registry::Slot& s = reg_->slots[(size_t)id];
    if (!(off >= 0 && len >= 0 && off + len <= (double)s.length) || (double)(int64_t)off != off ||
        (double)(int64_t)len != len) {
      fail(true, std::string(name) + ": view [" + fmt(off) + ", " + fmt(off + len) + ") is outside its buffer of " +
                     std::to_string(s.length) + " floats");
      return;
    }
    fail(true, std::string(name) + " has " + fmt(len) + " floats, fewer than " + shape + " = " +
                   std::to_string((long long)need));
  }

 private:
  const double* a_ = nullptr;
  Registry* reg_ = nullptr;
};

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

// gemm(transA, transB, m, n, k, alpha, a, b, beta, c)
template <class ArgsT>
napi_value Gemm(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "gemm");
  bool ta = A.boolean(0, "transA"), tb = A.boolean(1, "transB");
  idx m = A.size(2, "m"), n = A.size(3, "n"), k = A.size(4, "k");
  float alpha = A.real(5, "alpha");
  const float* a = A.f32(6, "a", m * k, "m*k");
  const float* b = A.f32(7, "b", k * n, "k*n");
  float beta = A.real(8, "beta");
  float* c = A.f32(9, "c", m * n, "m*n");
  if (!A.ok()) return nullptr;
  return guarded(env, "gemm", [&] {
    gemm(ctx_of(A), ta, tb, m, n, k, alpha, a, b, beta, c);
    return undefined(env);
  });
}

// denseForward(y, x, w, b, m, inp, out, act, alpha)
template <class ArgsT>
napi_value DenseForward(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "denseForward");
  idx m = A.size(4, "m"), inp = A.size(5, "inp"), out = A.size(6, "out");
  int act = (int)A.integer(7, "act", 0, 5);
  float alpha = A.real(8, "alpha");
  float* y = A.f32(0, "y", m * out, "m*out");
  const float* x = A.f32(1, "x", m * inp, "m*inp");
  const float* w = A.f32(2, "w", inp * out, "inp*out");
  const float* b = A.f32(3, "b", out, "out");
  if (!A.ok()) return nullptr;
  return guarded(env, "denseForward", [&] {
    dense_forward(ctx_of(A), y, x, w, b, m, inp, out, act, alpha);
    return undefined(env);
  });
}

// denseBackward(dw, db, dx|null, dz, x, w, m, inp, out, scale, prevAct, alpha)
template <class ArgsT>
napi_value DenseBackward(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "denseBackward");
  idx m = A.size(6, "m"), inp = A.size(7, "inp"), out = A.size(8, "out");
  float scale = A.real(9, "scale");
  int prev = (int)A.integer(10, "prevAct", 0, 4);  // never softmax
  float alpha = A.real(11, "alpha");
  float* dw = A.f32(0, "dw", inp * out, "inp*out");
  float* db = A.f32(1, "db", out, "out");
  float* dx = A.f32(2, "dx", m * inp, "m*inp", true);
  const float* dz = A.f32(3, "dz", m * out, "m*out");
  const float* x = A.f32(4, "x", m * inp, "m*inp");
  const float* w = A.f32(5, "w", inp * out, "inp*out");
  if (!A.ok()) return nullptr;
  return guarded(env, "denseBackward", [&] {
    dense_backward(ctx_of(A), dw, db, dx, dz, x, w, m, inp, out, scale, prev, alpha);
    return undefined(env);
  });
}

// lossDelta(dz, a, y, m, n, loss, act, alpha) -> summed loss
template <class ArgsT>
napi_value LossDelta(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "lossDelta");
  idx m = A.size(3, "m"), n = A.size(4, "n");
  int loss = (int)A.integer(5, "loss", 0, 2);
  int act = (int)A.integer(6, "act", 0, 5);
  float alpha = A.real(7, "alpha");
  float* dz = A.f32(0, "dz", m * n, "m*n");
  const float* a = A.f32(1, "a", m * n, "m*n");
  const float* y = A.f32(2, "y", m * n, "m*n");
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
  idx n = A.size(1, "n");
  const float* g = A.f32(0, "g", n, "n");
  if (!A.ok()) return nullptr;
  return number(env, ctx_of(A).k->sum_squares(g, n));
}

// sgdStep(p, g, n, lr, gradScale, weightDecay, decayCount)
template <class ArgsT>
napi_value SgdStep(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "sgdStep");
  idx n = A.size(2, "n");
  float lr = A.real(3, "lr"), gs = A.real(4, "gradScale"), wd = A.real(5, "weightDecay");
  idx dc = A.size(6, "decayCount");
  float* p = A.f32(0, "p", n, "n");
  const float* g = A.f32(1, "g", n, "n");
  if (!A.ok()) return nullptr;
  ctx_of(A).k->sgd_step(p, g, n, lr, gs, wd, dc);
  return undefined(env);
}

// momentumStep(p, g, v, n, lr, gradScale, mu, nesterov, weightDecay, decayCount)
template <class ArgsT>
napi_value MomentumStep(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "momentumStep");
  idx n = A.size(3, "n");
  float lr = A.real(4, "lr"), gs = A.real(5, "gradScale"), mu = A.real(6, "mu");
  bool nest = A.boolean(7, "nesterov");
  float wd = A.real(8, "weightDecay");
  idx dc = A.size(9, "decayCount");
  float* p = A.f32(0, "p", n, "n");
  const float* g = A.f32(1, "g", n, "n");
  float* v = A.f32(2, "v", n, "n");
  if (!A.ok()) return nullptr;
  ctx_of(A).k->momentum_step(p, g, v, n, lr, gs, mu, nest, wd, dc);
  return undefined(env);
}

// adamStep(p, g, m, v, n, lr, gradScale, beta1, beta2, eps, bc1, bc2, weightDecay, decoupled, decayCount)
template <class ArgsT>
napi_value AdamStep(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "adamStep");
  idx n = A.size(4, "n");
  float lr = A.real(5, "lr"), gs = A.real(6, "gradScale"), b1 = A.real(7, "beta1"),
        b2 = A.real(8, "beta2"), eps = A.real(9, "eps"), bc1 = A.real(10, "bc1"), bc2 = A.real(11, "bc2"),
        wd = A.real(12, "weightDecay");
  bool dec = A.boolean(13, "decoupled");
  idx dc = A.size(14, "decayCount");
  if (A.ok() && (bc1 == 0.f || bc2 == 0.f)) A.fail(true, "bc1 and bc2 must be nonzero");
  float* p = A.f32(0, "p", n, "n");
  const float* g = A.f32(1, "g", n, "n");
  float* m = A.f32(2, "m", n, "n");
  float* v = A.f32(3, "v", n, "n");
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
  const float* src = A.f32(1, "src", 0, "0", false, &src_len);
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
  int act = (int)A.integer(3, "act", 0, 4);
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
  CtxBox* box;
  napi_ref kernels_ref;  // keeps the kernel object (and box) alive as long as the step
  idx m = 0, n = 0, dc = 0;
  int loss = 0, opt = 0;
  float *x = nullptr, *y = nullptr, *params = nullptr, *grads = nullptr, *backup = nullptr, *s1 = nullptr,
        *s2 = nullptr;
  std::vector<StepLayer> layers;
  struct Held { int id; const float* base; size_t end; };
  std::vector<Held> held;
};

constexpr int kStepLoss = 10;  // argument-block slot of a compiled step's loss

enum StepOpt { OPT_SGD = 0, OPT_MOMENTUM = 1, OPT_ADAM = 2, OPT_ADAMW = 3 };

// run(): hyperparameters from the argument block (lr, clipNorm, weightDecay, mu, nesterov, beta1,
// beta2, eps, bc1, bc2 at slots 0..9); the summed loss goes back in slot kStepLoss, because a
// returned double would be a new heap number every step.
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
  const double* H = P.box->inst.args;
  for (int i = 0; i < 10; i++) {
    if (!std::isfinite(H[i])) {
      static const char* names[] = {"lr", "clipNorm", "weightDecay", "mu", "nesterov", "beta1", "beta2", "eps", "bc1", "bc2"};
      napi_throw_range_error(env, nullptr, (std::string("compiled step: ") + names[i] + " must be finite").c_str());
      return nullptr;
    }
  }
  if ((P.opt == OPT_ADAM || P.opt == OPT_ADAMW) && ((float)H[8] == 0.f || (float)H[9] == 0.f)) {
    napi_throw_range_error(env, nullptr, "compiled step: bc1 and bc2 must be nonzero");
    return nullptr;
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
    P.box->inst.args[kStepLoss] = loss;
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
    const double clip = H[1];
    if (clip > 0) {
      const double norm = std::sqrt(T.sum_squares(P.grads, P.n));
      if (norm > clip) gs = clip / norm;
    }
    const float lr = (float)H[0], wd = (float)H[2], g = (float)gs;
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
        case OPT_MOMENTUM: T.momentum_step(P.params + lo, P.grads + lo, P.s1 + lo, len, lr, g, (float)H[3], H[4] != 0, wd, dc); break;
        default:
          T.adam_step(P.params + lo, P.grads + lo, P.s1 + lo, P.s2 + lo, len, lr, g, (float)H[5], (float)H[6], (float)H[7],
                      (float)H[8], (float)H[9], wd, P.opt == OPT_ADAMW, dc);
      }
    };
    if (parts == 1) update(0);
    else ThreadPool::instance().run(parts, ctx.threads, update);
    return undefined(env);
  });
}

void free_step(napi_env env, void* data, void*) {
  StepPlan* p = static_cast<StepPlan*>(data);
  napi_delete_reference(env, p->kernels_ref);
  delete p;
}

// compileStep(desc: Float64Array) -> { run(): void }. desc layout (all numbers):
//   [m, L, loss, optimizer, n, decayCount,
//    x, y, params, grads, backup, state1, state2   (each id, offset, length; id -1 for null)
//    then per layer: inp, out, act, alpha, wOffset, bOffset, out buffer (3), delta buffer (3)]
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
    if (at + 2 >= len) { fail(name + " is missing"); return nullptr; }
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
  p->box = box;
  p->m = integer(0, "m", 1, kMaxSize);
  const idx L = integer(1, "layers", 1, 4096);
  p->loss = (int)integer(2, "loss", 0, 2);
  p->opt = (int)integer(3, "optimizer", 0, 3);
  p->n = integer(4, "n", 0, kMaxSize);
  p->dc = integer(5, "decayCount", 0, kMaxSize);
  if (err.empty() && len != 6 + 7 * 3 + (size_t)L * 12) fail("desc length does not match its layer count");
  if (err.empty() && p->dc > p->n) fail("decayCount exceeds n");
  if (err.empty()) {
    p->params = buffer(12, "params", p->n, false);
    p->grads = buffer(15, "grads", p->n, false);
    p->backup = buffer(18, "backup", p->n, false);
    p->s1 = buffer(21, "state1", p->n, true);
    p->s2 = buffer(24, "state2", p->n, true);
    if (p->opt != OPT_SGD && !p->s1) fail("state1 is required by this optimizer");
    if ((p->opt == OPT_ADAM || p->opt == OPT_ADAMW) && !p->s2) fail("state2 is required by adam");
  }
  idx prev_out = -1, first_in = 0;
  for (idx l = 0; err.empty() && l < L; l++) {
    const size_t at = 27 + (size_t)l * 12;
    const std::string nm = "layer " + std::to_string((long long)l) + " ";
    StepLayer s{};
    s.inp = integer(at, "inp", 0, kMaxSize);
    s.out = integer(at + 1, "out", 0, kMaxSize);
    s.act = (int)integer(at + 2, "act", 0, 5);
    s.alpha = (float)d[at + 3];
    if (!std::isfinite(d[at + 3])) fail(nm + "alpha must be finite");
    const idx wo = integer(at + 4, "wOffset", 0, kMaxSize), bo = integer(at + 5, "bOffset", 0, kMaxSize);
    if (!err.empty()) break;
    if (l == 0) first_in = s.inp;
    else if (s.inp != prev_out) fail(nm + "inputs do not match the previous layer's units");
    if (s.act == ACT_SOFTMAX && l != L - 1) fail(nm + "softmax is only allowed on the output layer");
    if (wo + s.inp * s.out > p->n || bo + s.out > p->n) fail(nm + "weights or biases outside the n params");
    if (!err.empty()) break;
    s.w = p->params + wo; s.b = p->params + bo; s.dw = p->grads + wo; s.db = p->grads + bo;
    s.y = buffer(at + 6, nm + "output", p->m * s.out, false);
    s.dz = buffer(at + 9, nm + "delta", p->m * s.out, false);
    prev_out = s.out;
    p->layers.push_back(s);
  }
  if (err.empty()) {
    p->x = buffer(6, "x", p->m * first_in, false);
    p->y = buffer(9, "y", p->m * prev_out, false);
  }
  if (!err.empty()) {
    napi_throw_range_error(env, nullptr, ("compileStep: " + err).c_str());
    return nullptr;
  }
  StepPlan* plan = p.release();
  napi_create_reference(env, self, 1, &plan->kernels_ref);
  napi_value obj, run;
  napi_create_object(env, &obj);
  napi_create_function(env, "run", NAPI_AUTO_LENGTH, StepRun, plan, &run);
  napi_add_finalizer(env, run, plan, free_step, nullptr, nullptr);  // the plan lives as long as run()
  napi_set_named_property(env, obj, "run", run);
  return obj;
}

void free_ctx(napi_env env, void* data, void*) {
  CtxBox* box = static_cast<CtxBox*>(data);
  napi_delete_reference(env, box->inst.args_ref);
  delete box;
}

void free_plain(napi_env, void* data, void*) { std::free(data); }

// create(isa: string, threads: number, smallGemm?: number) -> kernel object bound to that ISA's
// table; smallGemm is the m·n·k at or below which GEMM runs unpacked (tests pass 0 and 1e30).
napi_value Create(napi_env env, napi_callback_info info) {
  Args A(env, info, "create");
  napi_value isa_v = A.arg(0);
  napi_valuetype t = napi_undefined;
  if (!isa_v || napi_typeof(env, isa_v, &t) != napi_ok || t != napi_string) {
    A.type_error("isa", "a string ('' for the best available)");
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
  napi_create_reference(env, block_arr, 1, &box->inst.args_ref);
  void* ctx = box;
  napi_value obj;
  napi_create_object(env, &obj);
  napi_wrap(env, obj, ctx, free_ctx, nullptr, nullptr);  // frees the box (and the block's ref) with the object
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
  // One registry per JS environment. Deliberately never freed: buffer finalizers may run after the
  // environment's own cleanup, and it is a few bytes per worker.
  Registry* reg = new Registry();
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

// Compiled training steps: compileStep checks a whole step's descriptor once (layout in
// src/backends/abi.ts, generated into native/abi.h) and returns run(), which does forward, loss,
// backward, clip, backup and the update of one network at one batch size in one call.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../threadpool.h"
#include "common.h"

namespace deltaprop {
namespace boundary {
namespace {

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
  float delta = 0;
  const float* weights = nullptr;  // per row, or null
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
    const double loss = last.out == 0 ? 0.0 : T.loss_delta(last.dz, last.y, P.y, P.m, last.out, P.loss, last.act, last.alpha,
                                                                  P.delta, P.weights);
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

}  // namespace

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
  // what each buffer is used for, for the overlap check (order: the contract's list, contract.ts checkStep)
  struct Used { const float* ptr; idx floats; int order; bool output; };
  std::vector<Used> used;
  auto buffer = [&](size_t at, const std::string& name, idx need, bool nullable, int order = -1, bool output = true) -> float* {
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
    if (order >= 0 && need > 0) used.push_back({s.data + (size_t)off, need, order, output});
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
  if (err.empty() && (size_t)STEP_DELTA >= len) fail("delta is missing");
  if (err.empty() && !finite_f32(d[STEP_DELTA])) fail("delta must be a finite float32");
  if (err.empty()) p->delta = (float)d[STEP_DELTA];
  if (err.empty() && len != STEP_SIZE + (size_t)L * STEP_LAYER_SIZE) fail("desc length does not match its layer count");
  if (err.empty() && p->dc > p->n) fail("decayCount exceeds n");
  if (err.empty()) {
    p->params = buffer(STEP_PARAMS, "params", p->n, false, 2);
    p->grads = buffer(STEP_GRADS, "grads", p->n, false, 3);
    p->backup = buffer(STEP_BACKUP, "backup", p->n, false, 4);
    p->s1 = buffer(STEP_STATE1, "state1", p->n, true, p->opt == OPT_SGD ? -1 : 5);
    p->s2 = buffer(STEP_STATE2, "state2", p->n, true, p->opt == OPT_ADAM || p->opt == OPT_ADAMW ? 6 : -1);
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
    s.y = buffer(at + STEP_LAYER_OUTPUT, nm + "output", p->m * s.out, false, 7 + (int)l);
    s.dz = buffer(at + STEP_LAYER_DELTA, nm + "delta", p->m * s.out, false, 7 + (int)(L + l));
    prev_out = s.out;
    p->layers.push_back(s);
  }
  if (err.empty()) {
    p->x = buffer(STEP_X, "x", p->m * first_in, false, 0, false);
    p->y = buffer(STEP_Y, "y", p->m * prev_out, false, 1, false);
    p->weights = buffer(STEP_WEIGHTS, "weights", p->m, true, 7 + 2 * (int)L, false);
  }
  // No buffer the step writes may share a float with another (as contract.ts checkStep): sorted by
  // address, each against the one reaching furthest before it.
  if (err.empty() && used.size() > 1) {
    std::sort(used.begin(), used.end(), [](const Used& a, const Used& b) {
      return a.ptr != b.ptr ? std::less<const float*>()(a.ptr, b.ptr) : a.order < b.order;
    });
    auto name = [&](int order) -> std::string {
      static const char* fixed[] = {"x", "y", "params", "grads", "backup", "state1", "state2"};
      if (order < 7) return fixed[order];
      const idx k = order - 7;
      if (k == 2 * L) return "weights";
      return k < L ? "outs[" + std::to_string((long long)k) + "]" : "deltas[" + std::to_string((long long)(k - L)) + "]";
    };
    const Used* reach = &used[0];
    for (size_t j = 1; j < used.size() && err.empty(); j++) {
      const Used& cur = used[j];
      const uintptr_t end = (uintptr_t)(reach->ptr + reach->floats);
      if ((uintptr_t)cur.ptr < end && (cur.output || reach->output)) {
        const int a = std::min(cur.order, reach->order), b = std::max(cur.order, reach->order);
        fail(name(a) + " and " + name(b) + " overlap (a buffer the step writes must not share memory with another)");
      }
      if ((uintptr_t)(cur.ptr + cur.floats) > end) reach = &cur;
    }
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

}  // namespace boundary
}  // namespace deltaprop

// The kernel entry points of a kernel object: each kernel twice (arguments as JS values, Args, or
// through the argument block, FastArgs; native/boundary/args.h reads and checks both with the
// contract's words), batch staging, the vector functions for tests, the thread count.
#include <cmath>
#include <string>

#include "common.h"

namespace deltaprop {
namespace boundary {
namespace {

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

// lossDelta(dz, a, y, m, n, loss, act, alpha, delta, weights|null) -> summed loss; dz (m,n) written,
// a (m,n), y (m,n), weights (m)
template <class ArgsT>
napi_value LossDelta(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "lossDelta");
  using P = abi::arg::lossDelta;
  idx m = A.size(P::m, "m"), n = A.size(P::n, "n");
  int loss = (int)A.integer(P::loss, "loss", 0, abi::LOSS_MAX);
  int act = (int)A.integer(P::act, "act", 0, abi::ACT_MAX);
  float alpha = A.real(P::alpha, "alpha");
  float delta = A.real(P::delta, "delta");
  float* dz = A.f32(P::dz, "dz", m * n, "m*n", false, true);
  const float* a = A.f32(P::a, "a", m * n, "m*n");
  const float* y = A.f32(P::y, "y", m * n, "m*n");
  const float* w = A.f32(P::weights, "weights", m, "m", true);
  A.no_overlap();
  if (!A.ok()) return nullptr;
  if (n == 0) return number(env, 0);
  return guarded(env, "lossDelta", [&] {
    return number(env, ctx_of(A).k->loss_delta(dz, a, y, m, n, loss, act, alpha, delta, w));
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

// packedWeightsLength(inp, out): floats of w (inp,out) packed for this kernel object's blocked path
napi_value PackedWeightsLength(napi_env env, napi_callback_info info) {
  Args A(env, info, "packedWeightsLength");
  idx inp = A.size(0, "inp"), out = A.size(1, "out");
  if (!A.ok()) return nullptr;
  return number(env, (double)packed_weights_length(ctx_of(A), inp, out));
}

// packWeights(dst, w, inp, out): dst (packedWeightsLength(inp, out)) written, w (inp,out)
napi_value PackWeights(napi_env env, napi_callback_info info) {
  Args A(env, info, "packWeights");
  idx inp = A.size(2, "inp"), out = A.size(3, "out");
  const idx len = A.ok() ? (idx)packed_weights_length(ctx_of(A), inp, out) : 0;
  float* dst = A.f32(0, "dst", len, "packedWeightsLength(inp, out)", false, true);
  const float* w = A.f32(1, "w", inp * out, "inp*out");
  A.no_overlap();
  if (!A.ok()) return nullptr;
  return guarded(env, "packWeights", [&] {
    pack_weights(ctx_of(A), dst, w, inp, out);
    return undefined(env);
  });
}

// denseForwardPacked(y, x, w, packed, b, m, inp, out, act, alpha): denseForward with w also packed
// by packWeights of this kernel object (the caller packs again whenever w changes)
napi_value DenseForwardPacked(napi_env env, napi_callback_info info) {
  Args A(env, info, "denseForwardPacked");
  idx m = A.size(5, "m"), inp = A.size(6, "inp"), out = A.size(7, "out");
  int act = (int)A.integer(8, "act", 0, abi::ACT_MAX);
  float alpha = A.real(9, "alpha");
  const idx plen = A.ok() ? (idx)packed_weights_length(ctx_of(A), inp, out) : 0;
  float* y = A.f32(0, "y", m * out, "m*out", false, true);
  const float* x = A.f32(1, "x", m * inp, "m*inp");
  const float* w = A.f32(2, "w", inp * out, "inp*out");
  const float* packed = A.f32(3, "packed", plen, "packedWeightsLength(inp, out)");
  const float* b = A.f32(4, "b", out, "out");
  A.no_overlap();
  if (!A.ok()) return nullptr;
  return guarded(env, "denseForwardPacked", [&] {
    dense_forward(ctx_of(A), y, x, w, b, m, inp, out, act, alpha, packed);
    return undefined(env);
  });
}

// dropoutForward(y, x, n, rate, seed, step, layer): y (n) written, x (n)
template <class ArgsT>
napi_value DropoutForward(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "dropoutForward");
  using P = abi::arg::dropoutForward;
  idx n = A.size(P::n, "n");
  float rate = A.rate(P::rate, "rate");
  uint32_t seed = (uint32_t)A.integer(P::seed, "seed", 0, abi::MAX_U32);
  uint32_t step = (uint32_t)A.integer(P::step, "step", 0, abi::MAX_U32);
  uint32_t layer = (uint32_t)A.integer(P::layer, "layer", 0, abi::MAX_U32);
  float* y = A.f32(P::y, "y", n, "n", false, true);
  const float* x = A.f32(P::x, "x", n, "n");
  A.no_overlap();
  if (!A.ok()) return nullptr;
  ctx_of(A).k->dropout_forward(y, x, n, rate, seed, step, layer);
  return undefined(env);
}

// dropoutBackward(dx, dy, x, n, rate, seed, step, layer, prevAct, alpha): dx (n) written, dy, x (n)
template <class ArgsT>
napi_value DropoutBackward(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "dropoutBackward");
  using P = abi::arg::dropoutBackward;
  idx n = A.size(P::n, "n");
  float rate = A.rate(P::rate, "rate");
  uint32_t seed = (uint32_t)A.integer(P::seed, "seed", 0, abi::MAX_U32);
  uint32_t step = (uint32_t)A.integer(P::step, "step", 0, abi::MAX_U32);
  uint32_t layer = (uint32_t)A.integer(P::layer, "layer", 0, abi::MAX_U32);
  int prev = (int)A.integer(P::prevAct, "prevAct", 0, abi::PREV_ACT_MAX);
  float alpha = A.real(P::alpha, "alpha");
  float* dx = A.f32(P::dx, "dx", n, "n", false, true);
  const float* dy = A.f32(P::dy, "dy", n, "n");
  const float* x = A.f32(P::x, "x", n, "n");
  A.no_overlap();
  if (!A.ok()) return nullptr;
  ctx_of(A).k->dropout_backward(dx, dy, x, n, rate, seed, step, layer, prev, alpha);
  return undefined(env);
}

// batchNormForward(y, x, gamma, beta, runMean, runVar, mean, invStd, m, n, update, momentum, eps, act, alpha):
// y (m,n), runMean, runVar, mean, invStd (n) written; x (m,n), gamma, beta (n)
template <class ArgsT>
napi_value BatchNormForward(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "batchNormForward");
  using P = abi::arg::batchNormForward;
  idx m = A.size(P::m, "m"), n = A.size(P::n, "n");
  bool update = A.boolean(P::update, "update");
  float momentum = A.real(P::momentum, "momentum");
  float eps = A.nonzero(P::eps, "eps");
  int act = (int)A.integer(P::act, "act", 0, abi::PREV_ACT_MAX);
  float alpha = A.real(P::alpha, "alpha");
  float* y = A.f32(P::y, "y", m * n, "m*n", false, true);
  const float* x = A.f32(P::x, "x", m * n, "m*n");
  const float* gamma = A.f32(P::gamma, "gamma", n, "n");
  const float* beta = A.f32(P::beta, "beta", n, "n");
  float* run_mean = A.f32(P::runMean, "runMean", n, "n", false, true);
  float* run_var = A.f32(P::runVar, "runVar", n, "n", false, true);
  float* mean = A.f32(P::mean, "mean", n, "n", false, true);
  float* inv_std = A.f32(P::invStd, "invStd", n, "n", false, true);
  A.no_overlap();
  if (!A.ok()) return nullptr;
  ctx_of(A).k->batch_norm_forward(y, x, gamma, beta, run_mean, run_var, mean, inv_std, m, n, update, momentum, eps,
                                  act, alpha);
  return undefined(env);
}

// batchNormInference(y, x, gamma, beta, runMean, runVar, m, n, eps, act, alpha): y (m,n) written
template <class ArgsT>
napi_value BatchNormInference(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "batchNormInference");
  using P = abi::arg::batchNormInference;
  idx m = A.size(P::m, "m"), n = A.size(P::n, "n");
  float eps = A.nonzero(P::eps, "eps");
  int act = (int)A.integer(P::act, "act", 0, abi::PREV_ACT_MAX);
  float alpha = A.real(P::alpha, "alpha");
  float* y = A.f32(P::y, "y", m * n, "m*n", false, true);
  const float* x = A.f32(P::x, "x", m * n, "m*n");
  const float* gamma = A.f32(P::gamma, "gamma", n, "n");
  const float* beta = A.f32(P::beta, "beta", n, "n");
  const float* run_mean = A.f32(P::runMean, "runMean", n, "n");
  const float* run_var = A.f32(P::runVar, "runVar", n, "n");
  A.no_overlap();
  if (!A.ok()) return nullptr;
  ctx_of(A).k->batch_norm_inference(y, x, gamma, beta, run_mean, run_var, m, n, eps, act, alpha);
  return undefined(env);
}

// batchNormBackward / layerNormBackward(dx|null, dgamma, dbeta, dy, x, gamma, mean, invStd, m, n, scale,
// prevAct, alpha): dx (m,n), dgamma, dbeta (n) written; the statistics hold n floats (per column,
// batch normalization) or m (per row, layer normalization)
template <class ArgsT, bool PER_ROW>
napi_value NormBackward(napi_env env, napi_callback_info info) {
  const char* fn = PER_ROW ? "layerNormBackward" : "batchNormBackward";
  ArgsT A(env, info, fn);
  using P = abi::arg::batchNormBackward;
  static_assert((int)abi::arg::layerNormBackward::invStd == (int)P::invStd && (int)abi::arg::layerNormBackward::alpha == (int)P::alpha,
                "both backward kernels take the same arguments");
  idx m = A.size(P::m, "m"), n = A.size(P::n, "n");
  float scale = A.real(P::scale, "scale");
  int prev = (int)A.integer(P::prevAct, "prevAct", 0, abi::PREV_ACT_MAX);
  float alpha = A.real(P::alpha, "alpha");
  const idx stats = PER_ROW ? m : n;
  const char* stats_shape = PER_ROW ? "m" : "n";
  float* dx = A.f32(P::dx, "dx", m * n, "m*n", true, true);
  float* dgamma = A.f32(P::dgamma, "dgamma", n, "n", false, true);
  float* dbeta = A.f32(P::dbeta, "dbeta", n, "n", false, true);
  const float* dy = A.f32(P::dy, "dy", m * n, "m*n");
  const float* x = A.f32(P::x, "x", m * n, "m*n");
  const float* gamma = A.f32(P::gamma, "gamma", n, "n");
  const float* mean = A.f32(P::mean, "mean", stats, stats_shape);
  const float* inv_std = A.f32(P::invStd, "invStd", stats, stats_shape);
  A.no_overlap();
  if (!A.ok()) return nullptr;
  if (PER_ROW) ctx_of(A).k->layer_norm_backward(dx, dgamma, dbeta, dy, x, gamma, mean, inv_std, m, n, scale, prev, alpha);
  else ctx_of(A).k->batch_norm_backward(dx, dgamma, dbeta, dy, x, gamma, mean, inv_std, m, n, scale, prev, alpha);
  return undefined(env);
}

// layerNormForward(y, x, gamma, beta, mean, invStd, m, n, eps, act, alpha): y (m,n), mean, invStd (m)
// written; x (m,n), gamma, beta (n)
template <class ArgsT>
napi_value LayerNormForward(napi_env env, napi_callback_info info) {
  ArgsT A(env, info, "layerNormForward");
  using P = abi::arg::layerNormForward;
  idx m = A.size(P::m, "m"), n = A.size(P::n, "n");
  float eps = A.nonzero(P::eps, "eps");
  int act = (int)A.integer(P::act, "act", 0, abi::PREV_ACT_MAX);
  float alpha = A.real(P::alpha, "alpha");
  float* y = A.f32(P::y, "y", m * n, "m*n", false, true);
  const float* x = A.f32(P::x, "x", m * n, "m*n");
  const float* gamma = A.f32(P::gamma, "gamma", n, "n");
  const float* beta = A.f32(P::beta, "beta", n, "n");
  float* mean = A.f32(P::mean, "mean", m, "m", false, true);
  float* inv_std = A.f32(P::invStd, "invStd", m, "m", false, true);
  A.no_overlap();
  if (!A.ok()) return nullptr;
  ctx_of(A).k->layer_norm_forward(y, x, gamma, beta, mean, inv_std, m, n, eps, act, alpha);
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

}  // namespace

// The functions of a kernel object, by name (init.cc sets them on it).
const EntryPoint kKernelEntries[] = {{"gemm", Gemm<Args>}, {"denseForward", DenseForward<Args>},
    {"denseBackward", DenseBackward<Args>}, {"lossDelta", LossDelta<Args>},
    {"sumSquares", SumSquares<Args>}, {"sgdStep", SgdStep<Args>},
    {"momentumStep", MomentumStep<Args>}, {"adamStep", AdamStep<Args>},
    {"gemmFast", Gemm<FastArgs>}, {"denseForwardFast", DenseForward<FastArgs>},
    {"denseBackwardFast", DenseBackward<FastArgs>}, {"lossDeltaFast", LossDelta<FastArgs>},
    {"sumSquaresFast", SumSquares<FastArgs>}, {"sgdStepFast", SgdStep<FastArgs>},
    {"momentumStepFast", MomentumStep<FastArgs>}, {"adamStepFast", AdamStep<FastArgs>},
    {"dropoutForward", DropoutForward<Args>}, {"dropoutBackward", DropoutBackward<Args>},
    {"batchNormForward", BatchNormForward<Args>}, {"batchNormInference", BatchNormInference<Args>},
    {"batchNormBackward", NormBackward<Args, false>}, {"layerNormForward", LayerNormForward<Args>},
    {"layerNormBackward", NormBackward<Args, true>},
    {"dropoutForwardFast", DropoutForward<FastArgs>}, {"dropoutBackwardFast", DropoutBackward<FastArgs>},
    {"batchNormForwardFast", BatchNormForward<FastArgs>}, {"batchNormInferenceFast", BatchNormInference<FastArgs>},
    {"batchNormBackwardFast", NormBackward<FastArgs, false>}, {"layerNormForwardFast", LayerNormForward<FastArgs>},
    {"layerNormBackwardFast", NormBackward<FastArgs, true>},
    {"compileProgram", CompileProgram},
    {"gatherRows", GatherRows},
    {"packedWeightsLength", PackedWeightsLength}, {"packWeights", PackWeights}, {"denseForwardPacked", DenseForwardPacked},
    {"vexp", VExp}, {"vact", VAct}, {"setThreads", SetThreads}, {"getThreads", GetThreads}};
const size_t kKernelEntryCount = sizeof kKernelEntries / sizeof kKernelEntries[0];

}  // namespace boundary
}  // namespace deltaprop

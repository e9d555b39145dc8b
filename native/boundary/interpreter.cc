// The native interpreter of programs (src/backends/program.ts; op table and record layout in
// src/backends/abi.ts, generated into native/abi.h). compileProgram checks every op record once,
// with the same reader and words as the kernel's own entry point (args.h RecordArgs), and resolves
// it into pointers; run() executes the whole list in one call: a training step or a forward pass
// of a tiny net costs one boundary crossing, not one per kernel. The ops call the same functions
// in the same order as the kernel-by-kernel path (src/backends/interpreter.ts), so the bits are
// the same. Each run re-checks that every buffer is still the live allocation it was (one compare
// while no buffer has been released since the last check, a pointer compare per buffer after one
// was), so a program can never touch freed memory.
//
// A new op: its entry in abi.ts OPS (`npm run gen` gives compile_op its operand list, so its checks
// need no code here) and its case in run_program or elementwise_range.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../gemm.h"
#include "../threadpool.h"
#include "common.h"

namespace deltaprop {
#include "../kernels/gather_rows.inc"
}  // namespace deltaprop

namespace deltaprop {
namespace boundary {
namespace {

// One resolved op. Operands in the op table's order, by kind: buffers in b, sizes (and
// decayCount) in s, codes in c, float constants in f, u32 words in u, the boolean in flag (e.g.
// denseForward: b = y, x, w, b; s = m, inp, out; c = act; f = alpha), as compile_op fills them from
// the generated operand lists (abi::OPERANDS).
struct OpRec {
  int code = 0;
  float* b[abi::OP_MAX_BUFFERS] = {};
  idx s[abi::OP_MAX_SIZES] = {};
  int c[abi::OP_MAX_CODES] = {};
  float f[abi::OP_MAX_REALS] = {};
  uint32_t u[abi::OP_MAX_WORDS] = {};  // dropout: seed, layer
  bool flag = false;
  // elementwise ops: one past the last op of the run of elementwise ops this one starts (0 if inside one)
  size_t run_end = 0;
};
static_assert(abi::OP_MAX_FLAGS <= 1, "OpRec keeps one boolean operand");

struct ProgramPlan {
  CtxBox* box = nullptr;  // one reference of the box, held as long as the program
  std::vector<OpRec> ops;
  std::vector<HeldBuffer> held;
  // Registry::releases when `held` last passed check_run (one more than any count: not yet checked)
  mutable uint64_t checked_releases = ~(uint64_t)0;
  bool reads_hyper = false, adam = false;
  // runAsync(): one run at a time on a libuv thread, with its own copy of the argument block (the
  // kernel object stays free for other calls meanwhile). `self` is a weak reference to run(),
  // whose finalizer frees the plan: strong while a run is in flight.
  napi_ref self = nullptr;
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  double async_args[abi::ARG_SLOTS] = {};
  std::string async_error;
  std::mutex mu;
  std::condition_variable idle;
  // `computing`: the libuv thread is in the arithmetic (set and cleared under mu). `async_owns`: seen from
  // JavaScript, a runAsync() owns the buffers, from the call until wait() returns or the promise
  // settles; only the JavaScript thread changes it, so a refusal never depends on thread timing.
  bool computing = false;
  bool async_owns = false;
  // gatherRows: its checked row numbers (as many as the largest m), and whether the async run's
  // error was a bad one (a RangeError, as the synchronous run throws)
  mutable std::vector<uint32_t> rows;
  bool async_range = false;
  // runStepsAsync(): the program is `steps_max` copies of one step's ops (ops_per_step each), run
  // one after another with their own argument blocks (step_args) in one async work item.
  // `steps_done`: the steps that ran (the last one's loss may be the non-finite one that ended it);
  // `step_out`: the caller's blocks, which get each step's loss back; `stop_soon`: stop() asked the
  // run to end after the step it is in.
  bool stepping = false;
  size_t ops_per_step = 0, steps_done = 0;
  std::vector<double> step_args;
  napi_ref step_out = nullptr;
  std::atomic<bool> stop_soon{false};
};

// A gatherRows row number that is not a row of its source: the run stops before the op copies.
struct BadRow : std::range_error {
  using std::range_error::range_error;
};

// Reads and checks op record `rec` (index i) into o; false when it threw. The operands come from
// the generated list of the op (abi::OPERANDS, from abi.ts OPS): first every number in record
// order (the ranges; a decayCount within its n), then every buffer against the product of its
// sizes, then the outputs' overlaps: the order and words of contract.ts checkKernel, through the
// reader of the kernels' own entry points (args.h RecordArgs).
bool compile_op(napi_env env, const Registry& reg, const double* rec, size_t i, OpRec& o, std::vector<HeldBuffer>& held) {
  const double code = rec[0];
  if (!(code >= 1 && code <= abi::OP_MAX) || (double)(int)code != code) {
    napi_throw_range_error(env, nullptr, ("compileProgram: op " + std::to_string(i) + ": unknown op code " + js_number(code) +
                                          " (known: 1 to " + std::to_string(abi::OP_MAX) + ")").c_str());
    return false;
  }
  o.code = (int)code;
  const std::string fn = "compileProgram: op " + std::to_string(i) + ": " + abi::OP_NAMES[o.code];
  RecordArgs A(env, fn.c_str(), &reg, rec, &held);
  const abi::Operand* const first = abi::OPERANDS + abi::OPERANDS_BEGIN[o.code];
  const int count = abi::OPERANDS_BEGIN[o.code + 1] - abi::OPERANDS_BEGIN[o.code];
  idx size[abi::OP_SLOTS] = {};  // the size operands' values, by operand index
  int ns = 0, nc = 0, nf = 0, nu = 0;
  for (int k = 0; k < count; k++) {
    const abi::Operand& a = first[k];
    switch (a.kind) {
      case abi::OPERAND_SIZE: o.s[ns++] = size[k] = A.size(a.slot, a.name); break;
      case abi::OPERAND_DECAY_COUNT: o.s[ns++] = A.integer(a.slot, a.name, 0, (double)size[a.sizes[0]]); break;
      case abi::OPERAND_FLOAT32: o.f[nf++] = A.real(a.slot, a.name); break;
      case abi::OPERAND_NONZERO: o.f[nf++] = A.nonzero(a.slot, a.name); break;
      case abi::OPERAND_RATE: o.f[nf++] = A.rate(a.slot, a.name); break;
      case abi::OPERAND_ACT: o.c[nc++] = (int)A.integer(a.slot, a.name, 0, abi::ACT_MAX); break;
      case abi::OPERAND_PREV_ACT: o.c[nc++] = (int)A.integer(a.slot, a.name, 0, abi::PREV_ACT_MAX); break;  // never softmax
      case abi::OPERAND_LOSS: o.c[nc++] = (int)A.integer(a.slot, a.name, 0, abi::LOSS_MAX); break;
      case abi::OPERAND_U32: o.u[nu++] = (uint32_t)A.integer(a.slot, a.name, 0, abi::MAX_U32); break;
      case abi::OPERAND_BOOL: o.flag = A.boolean(a.slot, a.name); break;
      default: break;  // buffers, below
    }
  }
  int nb = 0;
  for (int k = 0; k < count; k++) {
    const abi::Operand& a = first[k];
    if (a.kind != abi::OPERAND_BUFFER && a.kind != abi::OPERAND_BUFFER_OR_NULL) continue;
    idx need = 1;
    for (int j : a.sizes) if (j >= 0) need *= size[j];
    o.b[nb++] = A.f32(a.slot, a.name, need, a.floats, a.kind == abi::OPERAND_BUFFER_OR_NULL, a.output);
  }
  A.no_overlap();
  return A.ok();
}

// Ops i..j-1, all elementwise over the same n, may run range by range (each thread takes a range
// through all of them) only if every two of their buffers are the same pointer or share no float
// in [0, n): then element k of each op still sees element k of the ops before it, and nothing else.
bool can_join(const std::vector<OpRec>& ops, size_t i, size_t j) {
  const idx n = ops[i].s[0];
  if (!abi::OP_ELEMENTWISE[ops[j].code] || ops[j].s[0] != n) return false;
  for (const float* p : ops[j].b) {
    if (!p) continue;
    for (size_t k = i; k <= j; k++) {
      for (const float* q : ops[k].b) {
        if (!q || q == p) continue;
        if (std::less<const float*>()(p, q + n) && std::less<const float*>()(q, p + n)) return false;
      }
    }
  }
  return true;
}

// Op o over elements [lo, hi) of its n; gs is the run's gradScale (the last clipNorm's).
void elementwise_range(const KernelTable& T, const OpRec& o, idx lo, idx hi, const double* H, float gs) {
  const idx len = hi - lo, dc = o.s[1] - lo < 0 ? 0 : o.s[1] - lo;
  const float lr = (float)H[abi::HYPER_LR], wd = (float)H[abi::HYPER_WEIGHT_DECAY];
  switch (o.code) {
    case OP_COPY: std::memcpy(o.b[0] + lo, o.b[1] + lo, (size_t)len * sizeof(float)); break;
    case OP_SGD_UPDATE: T.sgd_step(o.b[0] + lo, o.b[1] + lo, len, lr, gs, wd, dc); break;
    case OP_MOMENTUM_UPDATE:
      T.momentum_step(o.b[0] + lo, o.b[1] + lo, o.b[2] + lo, len, lr, gs, (float)H[abi::HYPER_MU], H[abi::HYPER_NESTEROV] != 0,
                      wd, dc);
      break;
    case OP_ADAM_UPDATE:
      T.adam_step(o.b[0] + lo, o.b[1] + lo, o.b[2] + lo, o.b[3] + lo, len, lr, gs, (float)H[abi::HYPER_BETA1],
                  (float)H[abi::HYPER_BETA2], (float)H[abi::HYPER_EPS], (float)H[abi::HYPER_BC1], (float)H[abi::HYPER_BC2], wd,
                  o.flag, dc);
      break;
  }
}

// A run of elementwise ops [from, to), split over threads in ranges (the update of wide-mlp's 670k
// parameters is ~7% of a 2-thread step). Range starts are multiples of 1024 floats, so each element
// takes the same (vector or scalar) path whatever the thread count: the same bits for any count.
constexpr idx kElementwiseChunk = 8 * 1024;  // floats: 32 KB of each of Adam's five arrays and the backup
// Ranges up to this many floats go through each op whole: their arrays stay in L2 anyway, and the
// chunked walk cost mnist-mlp's step 5% (paired rounds, 101,770 parameters in 4 ranges).
constexpr idx kChunkedFrom = idx(1) << 16;

void run_elementwise(const Ctx& ctx, const OpRec* ops, size_t from, size_t to, const double* H, float gs) {
  const KernelTable& T = *ctx.k;
  const idx n = ops[from].s[0];
  const int parts = ctx.threads > 1 && n >= (1 << 16) ? 2 * ctx.threads : 1;
  auto body = [&](int t) {
    const idx lo = t == 0 ? 0 : (n * t / parts) & ~(idx)1023, hi = t == parts - 1 ? n : (n * (t + 1) / parts) & ~(idx)1023;
    // Through every op of the run chunk by chunk, so that the chunk an op wrote is still in L2
    // for the next (the backup copy then Adam read the params once from memory, not twice).
    // Chunk starts are multiples of 1024 as well: the same paths per element as before.
    const idx chunk = hi - lo > kChunkedFrom ? kElementwiseChunk : hi - lo;
    for (idx c0 = lo; c0 < hi; c0 += chunk) {
      const idx c1 = hi - c0 < chunk ? hi : c0 + chunk;
      for (size_t j = from; j < to; j++) elementwise_range(T, ops[j], c0, c1, H, gs);
    }
  };
  if (parts == 1) body(0);
  else ThreadPool::instance().run(parts, ctx.threads, body);
}

// Ops [from, to) of the program (the whole of it unless a step of runStepsAsync). H is the argument
// block: the hyper-parameters, and the loss slot a lossDelta fills.
void run_program(const ProgramPlan& P, double* H, size_t from, size_t to) {
  FlushSubnormals flush;  // also on the libuv thread of runAsync (flush_subnormals.h)
  const Ctx& ctx = P.box->ctx;
  const KernelTable& T = *ctx.k;
  const OpRec* ops = P.ops.data();
  const size_t count = to;
  double gs = 1.0;
  for (size_t i = from; i < count; i++) {
    const OpRec& o = ops[i];
    switch (o.code) {
      case OP_DENSE_FORWARD:
        dense_forward(ctx, o.b[0], o.b[1], o.b[2], o.b[3], o.s[0], o.s[1], o.s[2], o.c[0], o.f[0]);
        break;
      case OP_LOSS_DELTA: {
        const double loss = o.s[1] == 0 ? 0.0 : T.loss_delta(o.b[0], o.b[1], o.b[2], o.s[0], o.s[1], o.c[0], o.c[1], o.f[0],
                                                                o.f[1], o.b[3]);
        H[abi::HYPER_LOSS] = loss;
        if (!std::isfinite(loss)) return;
        break;
      }
      case OP_DENSE_BACKWARD:
        dense_backward(ctx, o.b[0], o.b[1], o.b[2], o.b[3], o.b[4], o.b[5], o.s[0], o.s[1], o.s[2], o.f[0], o.c[0], o.f[1]);
        break;
      case OP_CLIP_NORM: {
        gs = 1.0;
        const double clip = H[abi::HYPER_CLIP_NORM];
        if (clip > 0) {
          const double norm = std::sqrt(T.sum_squares(o.b[0], o.s[0]));
          if (norm > clip) gs = clip / norm;
        }
        break;
      }
      case OP_DROPOUT_FORWARD:
        T.dropout_forward(o.b[0], o.b[1], o.s[0], o.f[0], o.u[0], (uint32_t)(int64_t)H[abi::HYPER_STEP], o.u[1]);
        break;
      case OP_DROPOUT_BACKWARD:
        T.dropout_backward(o.b[0], o.b[1], o.b[2], o.s[0], o.f[0], o.u[0], (uint32_t)(int64_t)H[abi::HYPER_STEP], o.u[1], o.c[0],
                           o.f[1]);
        break;
      case OP_BATCH_NORM_FORWARD:
        T.batch_norm_forward(o.b[0], o.b[1], o.b[2], o.b[3], o.b[4], o.b[5], o.b[6], o.b[7], o.s[0], o.s[1], o.flag, o.f[0], o.f[1],
                             o.c[0], o.f[2]);
        break;
      case OP_BATCH_NORM_INFERENCE:
        T.batch_norm_inference(o.b[0], o.b[1], o.b[2], o.b[3], o.b[4], o.b[5], o.s[0], o.s[1], o.f[0], o.c[0], o.f[1]);
        break;
      case OP_LAYER_NORM_FORWARD:
        T.layer_norm_forward(o.b[0], o.b[1], o.b[2], o.b[3], o.b[4], o.b[5], o.s[0], o.s[1], o.f[0], o.c[0], o.f[1]);
        break;
      case OP_BATCH_NORM_BACKWARD:
        T.batch_norm_backward(o.b[0], o.b[1], o.b[2], o.b[3], o.b[4], o.b[5], o.b[6], o.b[7], o.s[0], o.s[1], o.f[0], o.c[0], o.f[1]);
        break;
      case OP_LAYER_NORM_BACKWARD:
        T.layer_norm_backward(o.b[0], o.b[1], o.b[2], o.b[3], o.b[4], o.b[5], o.b[6], o.b[7], o.s[0], o.s[1], o.f[0], o.c[0], o.f[1]);
        break;
      case OP_GATHER_ROWS: {
        uint32_t* rows = P.rows.data();
        const idx bad = dp_row_numbers(rows, o.b[2], o.s[0], o.s[1]);
        if (bad >= 0) {  // the same words as program.ts gatherRowsFault
          throw BadRow("op " + std::to_string(i) + " (gatherRows): idx[" + std::to_string((long long)bad) + "] = " +
                       js_number(o.b[2][bad]) + " is not a row of src (an integer in [0, " + std::to_string((long long)o.s[1]) + "))");
        }
        gather_rows(ctx, o.b[0], o.b[1], rows, 0, o.s[0], o.s[2]);
        break;
      }
      default:  // elementwise: the run of them this op starts
        run_elementwise(ctx, ops, i, o.run_end, H, (float)gs);
        i = o.run_end - 1;
    }
  }
}

// Throws (and returns false) unless every buffer of the program is still the live allocation it
// was compiled against and the hyper-parameters in H pass contract.ts checkHyper. The buffers are
// compared one by one only when a buffer was released since they last passed (Registry::releases):
// a step of a tiny net then pays one compare for them, not three per allocation.
bool check_run(napi_env env, const ProgramPlan& P, const double* H) {
  const Registry& reg = *P.box->inst.reg;
  if (reg.releases != P.checked_releases) {
    for (const HeldBuffer& h : P.held) {
      if ((size_t)h.id >= reg.slots.size() || reg.slots[(size_t)h.id].data != h.base || reg.slots[(size_t)h.id].length < h.end) {
        napi_throw_error(env, nullptr, "compiled program: one of its buffers was freed; compile the program again");
        return false;
      }
    }
    P.checked_releases = reg.releases;
  }
  if (!P.reads_hyper) return true;
  // The same checks and words as contract.ts checkHyper (which the JavaScript side runs first):
  // one pass without branches over the slots, and the message from the slow path below.
  bool bad = !(H[abi::HYPER_NESTEROV] == 0 || H[abi::HYPER_NESTEROV] == 1);
  for (int i = 0; i < abi::HYPER_INPUTS; i++) bad |= i != abi::HYPER_NESTEROV && !finite_f32(H[i]);
  if (P.adam) bad |= (float)H[abi::HYPER_BC1] == 0.f || (float)H[abi::HYPER_BC2] == 0.f;
  if (!bad) return true;
  const char* const* names = abi::HYPER_NAMES;
  for (int i = 0; i < abi::HYPER_INPUTS; i++) {
    const bool nesterov = i == abi::HYPER_NESTEROV;
    if (nesterov ? !(H[i] == 0 || H[i] == 1) : !finite_f32(H[i])) {
      napi_throw_range_error(env, nullptr, (std::string("compiled step: ") + names[i] +
                                            (nesterov ? " must be a boolean (0 or 1 in the argument block), got "
                                                    : " must be a finite float32, got ") + js_number(H[i])).c_str());
      return false;
    }
  }
  for (int i : {abi::HYPER_BC1, abi::HYPER_BC2}) {
    if ((float)H[i] == 0.f) {
      napi_throw_range_error(env, nullptr, (std::string("compiled step: ") + names[i] +
                                            " must be a nonzero finite float32, got " + js_number(H[i])).c_str());
      return false;
    }
  }
  return true;
}

// Refuses a synchronous run or a second async run while one is in flight: both would share its
// buffers. A second runAsync() also waits for the first one's promise (its work and deferred are
// the plan's, one at a time), even after wait().
bool check_idle(napi_env env, ProgramPlan& P, const char* what, bool async) {
  if (P.async_owns) {
    napi_throw_error(env, nullptr, (std::string("compiled program: ") + what +
                                    " while a runAsync() of it is in flight; call wait() or await its promise first").c_str());
    return false;
  }
  if (async && P.work) {
    napi_throw_error(env, nullptr, (std::string("compiled program: ") + what +
                                    " before the promise of the previous runAsync() has settled; await it first").c_str());
    return false;
  }
  return true;
}

// run(): hyper-parameters from the argument block (abi::HYPER_* slots); the summed loss goes back
// in slot HYPER_LOSS, because a returned double would be a new heap number every step.
napi_value ProgramRun(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data);
  ProgramPlan& P = *static_cast<ProgramPlan*>(data);
  double* H = P.box->inst.args;
  if (!check_idle(env, P, "run()", false) || !check_run(env, P, H)) return nullptr;
  return guarded(env, "compiled program", [&]() -> napi_value {
    try {
      run_program(P, H, 0, P.ops.size());
    } catch (const BadRow& e) {
      napi_throw_range_error(env, nullptr, (std::string("compiled program: ") + e.what()).c_str());
      return nullptr;
    }
    return undefined(env);
  });
}

// runStepsAsync's steps, one after another: each with its own argument block, ending after the
// first whose loss is not finite (its backward pass and update did not run, as in run()) or after
// the one running when stop() was called.
void run_steps(ProgramPlan& P) {
  const size_t L = P.ops_per_step, steps = P.step_args.size() / abi::HYPER_SIZE;
  for (size_t s = 0; s < steps; s++) {
    double* H = P.step_args.data() + s * abi::HYPER_SIZE;
    run_program(P, H, s * L, (s + 1) * L);
    P.steps_done = s + 1;
    if (!std::isfinite(H[abi::HYPER_LOSS]) || P.stop_soon.load(std::memory_order_relaxed)) break;
  }
}

// The async run's body, on a libuv thread: no N-API calls here.
void execute_async(napi_env, void* data) {
  ProgramPlan& P = *static_cast<ProgramPlan*>(data);
  try {
    if (P.stepping) run_steps(P);
    else run_program(P, P.async_args, 0, P.ops.size());
  } catch (const BadRow& e) {
    P.async_error = e.what();
    P.async_range = true;
  } catch (const std::bad_alloc&) {
    P.async_error = "out of memory";
  } catch (const std::exception& e) {
    P.async_error = e.what();
  } catch (...) {
    P.async_error = "unknown native error";
  }
  std::lock_guard<std::mutex> lock(P.mu);
  P.computing = false;
  P.idle.notify_all();
}

// runStepsAsync's losses back into the caller's blocks (their loss slots), for the steps that ran.
void write_step_losses(napi_env env, const ProgramPlan& P) {
  napi_value arr;
  void* ptr = nullptr;
  size_t len = 0;
  napi_typedarray_type tt;
  if (napi_get_reference_value(env, P.step_out, &arr) != napi_ok || !arr ||
      napi_get_typedarray_info(env, arr, &tt, &len, &ptr, nullptr, nullptr) != napi_ok || tt != napi_float64_array || !ptr) {
    return;  // gone (detached): nothing to write into
  }
  double* out = static_cast<double*>(ptr);
  for (size_t s = 0; s < P.steps_done && (s + 1) * abi::HYPER_SIZE <= len; s++) {
    out[s * abi::HYPER_SIZE + abi::HYPER_LOSS] = P.step_args[s * abi::HYPER_SIZE + abi::HYPER_LOSS];
  }
}

// Forgets a runStepsAsync's state (after it settles, or when it could not be queued).
void end_steps(napi_env env, ProgramPlan& P) {
  if (P.step_out) napi_delete_reference(env, P.step_out);
  P.step_out = nullptr;
  P.stepping = false;
  P.steps_done = 0;
}

// Back on the JavaScript thread: settles the promise with the summed loss, or the error.
void complete_async(napi_env env, napi_status status, void* data) {
  ProgramPlan& P = *static_cast<ProgramPlan*>(data);
  napi_deferred deferred = P.deferred;
  P.deferred = nullptr;
  napi_delete_async_work(env, P.work);
  P.work = nullptr;
  {  // a cancelled work never ran execute_async
    std::lock_guard<std::mutex> lock(P.mu);
    P.computing = false;
  }
  P.async_owns = false;
  napi_value result;
  if (status != napi_ok || !P.async_error.empty()) {
    napi_value msg;
    const std::string text = "compiled program: " + (P.async_error.empty() ? std::string("the run was cancelled") : P.async_error);
    P.async_error.clear();
    napi_create_string_utf8(env, text.c_str(), NAPI_AUTO_LENGTH, &msg);
    if (P.async_range) napi_create_range_error(env, nullptr, msg, &result);
    else napi_create_error(env, nullptr, msg, &result);
    P.async_range = false;
    napi_reject_deferred(env, deferred, result);
  } else if (P.stepping) {
    write_step_losses(env, P);
    napi_create_double(env, (double)P.steps_done, &result);
    napi_resolve_deferred(env, deferred, result);
  } else {
    napi_create_double(env, P.async_args[abi::HYPER_LOSS], &result);
    napi_resolve_deferred(env, deferred, result);
  }
  end_steps(env, P);
  napi_reference_unref(env, P.self, nullptr);  // the plan may be freed from here on
}

napi_value queue_run(napi_env env, ProgramPlan& P);

// runAsync(): the same run on a libuv thread, so that the event loop stays free; the hyper-
// parameters are read from the argument block now (it may be reused at once). Returns a promise
// of the summed loss (NaN or Infinity when the loss was not finite: the run then stopped before
// the backward pass, as run() does).
napi_value ProgramRunAsync(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data);
  ProgramPlan& P = *static_cast<ProgramPlan*>(data);
  const double* H = P.box->inst.args;
  if (!check_idle(env, P, "runAsync()", true) || !check_run(env, P, H)) return nullptr;
  std::memcpy(P.async_args, H, sizeof P.async_args);
  return queue_run(env, P);
}

// Queues the plan's async run (runAsync's or runStepsAsync's, as P says): its promise, or null
// after throwing.
napi_value queue_run(napi_env env, ProgramPlan& P) {
  napi_value promise, name;
  napi_create_promise(env, &P.deferred, &promise);
  napi_create_string_utf8(env, "deltaprop.program", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, nullptr, name, execute_async, complete_async, &P, &P.work) != napi_ok) {
    P.work = nullptr;
    end_steps(env, P);
    napi_throw_error(env, nullptr, "compiled program: cannot create the async run");
    return nullptr;
  }
  {
    std::lock_guard<std::mutex> lock(P.mu);
    P.computing = true;
  }
  P.async_owns = true;
  napi_reference_ref(env, P.self, nullptr);
  if (napi_queue_async_work(env, P.work) != napi_ok) {
    {
      std::lock_guard<std::mutex> lock(P.mu);
      P.computing = false;
    }
    P.async_owns = false;
    napi_reference_unref(env, P.self, nullptr);
    napi_delete_async_work(env, P.work);
    P.work = nullptr;
    end_steps(env, P);
    napi_throw_error(env, nullptr, "compiled program: cannot queue the async run");
    return nullptr;
  }
  return promise;
}

// runStepsAsync(blocks: Float64Array, steps, opsPerStep): runAsync for a program made of copies of
// one step's ops (opsPerStep each): its first `steps` steps run one after another in one async
// work item, step s with the hyper-parameters of blocks[s·HYPER_SIZE, (s+1)·HYPER_SIZE), read now
// (the caller may refill them at once). The event loop is woken once for them all, not once a
// step. A step whose loss is not finite ends the run (the steps after it never run), and so does
// stop(), after the step it is in. Resolves with the steps that ran; each one's summed loss is
// written into its block's loss slot then.
napi_value ProgramRunStepsAsync(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc, argv, nullptr, &data);
  ProgramPlan& P = *static_cast<ProgramPlan*>(data);
  if (!check_idle(env, P, "runStepsAsync()", true)) return nullptr;
  napi_typedarray_type tt;
  size_t len = 0;
  void* ptr = nullptr;
  double steps = 0, per = 0;
  if (argc < 3 || napi_get_typedarray_info(env, argv[0], &tt, &len, &ptr, nullptr, nullptr) != napi_ok || tt != napi_float64_array ||
      napi_get_value_double(env, argv[1], &steps) != napi_ok || napi_get_value_double(env, argv[2], &per) != napi_ok) {
    napi_throw_type_error(env, nullptr, "compiled program: runStepsAsync(blocks, steps, opsPerStep) takes a Float64Array and two numbers");
    return nullptr;
  }
  const size_t count = P.ops.size();
  if (!(per >= 1 && per <= (double)count && std::floor(per) == per) || count % (size_t)per != 0) {
    napi_throw_range_error(env, nullptr, ("compiled program: runStepsAsync: opsPerStep must be a whole divisor of the program's " +
                                          std::to_string(count) + " ops, got " + js_number(per)).c_str());
    return nullptr;
  }
  const size_t L = (size_t)per, most = count / L;
  if (!(steps >= 1 && steps <= (double)most && std::floor(steps) == steps)) {
    napi_throw_range_error(env, nullptr, ("compiled program: runStepsAsync: steps must be an integer in [1, " + std::to_string(most) +
                                          "], got " + js_number(steps)).c_str());
    return nullptr;
  }
  const size_t n = (size_t)steps;
  if (len < n * abi::HYPER_SIZE) {
    napi_throw_range_error(env, nullptr, ("compiled program: runStepsAsync: blocks must hold " + std::to_string(n) + " steps of " +
                                          std::to_string(abi::HYPER_SIZE) + " doubles, got " + std::to_string(len)).c_str());
    return nullptr;
  }
  // a step runs its own ops only: none may start inside a run of elementwise ops joined across steps
  for (size_t b = 0; b < count; b += L) {
    if (abi::OP_ELEMENTWISE[P.ops[b].code] && P.ops[b].run_end == 0) {
      napi_throw_range_error(env, nullptr, ("compiled program: runStepsAsync: op " + std::to_string(b) +
                                            " would start a step inside a run of elementwise ops").c_str());
      return nullptr;
    }
  }
  const double* blocks = static_cast<const double*>(ptr);
  for (size_t k = 0; k < n; k++) {
    if (!check_run(env, P, blocks + k * abi::HYPER_SIZE)) return nullptr;
  }
  P.step_args.assign(blocks, blocks + n * abi::HYPER_SIZE);
  if (napi_create_reference(env, argv[0], 1, &P.step_out) != napi_ok) {
    napi_throw_error(env, nullptr, "compiled program: runStepsAsync: cannot hold the blocks");
    return nullptr;
  }
  P.ops_per_step = L;
  P.steps_done = 0;
  P.stop_soon.store(false);
  P.stepping = true;
  return queue_run(env, P);
}

// stop(): a runStepsAsync in flight ends after the step it is in (its promise says how many ran);
// nothing otherwise.
napi_value ProgramStop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data);
  static_cast<ProgramPlan*>(data)->stop_soon.store(true);
  return undefined(env);
}

// wait(): blocks until a runAsync() in flight has finished its arithmetic (its promise settles
// later, on the event loop), so a synchronous reader can use the buffers it writes. Returns at once
// when none is in flight.
napi_value ProgramWait(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data);
  ProgramPlan& P = *static_cast<ProgramPlan*>(data);
  {
    std::unique_lock<std::mutex> lock(P.mu);
    P.idle.wait(lock, [&] { return !P.computing; });
  }
  P.async_owns = false;
  return undefined(env);
}

void free_program(napi_env env, void* data, void*) {
  ProgramPlan* p = static_cast<ProgramPlan*>(data);
  if (p->self) napi_delete_reference(env, p->self);
  p->box->unref(env);
  delete p;
}

}  // namespace

// compileProgram(records: Float64Array) -> { run(), runAsync(), runStepsAsync(), wait(), stop() }: records holds the ops, abi::OP_SLOTS
// doubles each (the op code, then its operands at the abi::op::<name> slots; a buffer as id,
// offset, length, id -1 for null).
napi_value CompileProgram(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self;
  void* data = nullptr;
  napi_get_cb_info(env, info, &argc, argv, &self, &data);
  CtxBox* box = static_cast<CtxBox*>(data);
  void* wrapped = nullptr;
  if (!self || napi_unwrap(env, self, &wrapped) != napi_ok || wrapped != box) {
    napi_throw_type_error(env, nullptr, "compileProgram: must be called as a method of its kernel object");
    return nullptr;
  }
  napi_typedarray_type tt;
  size_t len = 0;
  void* ptr = nullptr;
  if (argc < 1 || napi_get_typedarray_info(env, argv[0], &tt, &len, &ptr, nullptr, nullptr) != napi_ok ||
      tt != napi_float64_array) {
    napi_throw_type_error(env, nullptr, "compileProgram: the program must be a Float64Array of op records");
    return nullptr;
  }
  if (len == 0 || len % abi::OP_SLOTS != 0) {
    napi_throw_range_error(env, nullptr, ("compileProgram: the program must be one or more op records of " +
                                          std::to_string(abi::OP_SLOTS) + " doubles, got " + std::to_string(len) +
                                          " doubles").c_str());
    return nullptr;
  }
  const double* d = static_cast<const double*>(ptr);
  const Registry& reg = *box->inst.reg;
  auto p = std::make_unique<ProgramPlan>();
  const size_t count = len / abi::OP_SLOTS;
  p->ops.resize(count);
  for (size_t i = 0; i < count; i++) {
    if (!compile_op(env, reg, d + i * abi::OP_SLOTS, i, p->ops[i], p->held)) return nullptr;
    p->reads_hyper = p->reads_hyper || abi::OP_READS_HYPER[p->ops[i].code];
    p->adam = p->adam || p->ops[i].code == OP_ADAM_UPDATE;
    if (p->ops[i].code == OP_GATHER_ROWS && (size_t)p->ops[i].s[0] > p->rows.size()) p->rows.resize((size_t)p->ops[i].s[0]);
  }
  for (size_t i = 0; i < count;) {
    if (!abi::OP_ELEMENTWISE[p->ops[i].code]) { i++; continue; }
    size_t j = i + 1;
    while (j < count && can_join(p->ops, i, j)) j++;
    p->ops[i].run_end = j;
    i = j;
  }
  // one entry per allocation, the furthest float any op reaches
  std::sort(p->held.begin(), p->held.end(), [](const HeldBuffer& a, const HeldBuffer& b) { return a.id < b.id || (a.id == b.id && a.end > b.end); });
  p->held.erase(std::unique(p->held.begin(), p->held.end(), [](const HeldBuffer& a, const HeldBuffer& b) { return a.id == b.id; }),
                p->held.end());
  ProgramPlan* plan = p.release();
  plan->box = box;
  box->ref();
  napi_value obj, run, run_async, wait;
  napi_create_object(env, &obj);
  napi_create_function(env, "run", NAPI_AUTO_LENGTH, ProgramRun, plan, &run);
  napi_add_finalizer(env, run, plan, free_program, nullptr, nullptr);  // the plan lives as long as run()
  napi_create_reference(env, run, 0, &plan->self);
  napi_set_named_property(env, obj, "run", run);
  // runAsync and wait keep run() (and so the plan) alive as long as they live
  napi_create_function(env, "runAsync", NAPI_AUTO_LENGTH, ProgramRunAsync, plan, &run_async);
  napi_set_named_property(env, run_async, "program", run);
  napi_set_named_property(env, obj, "runAsync", run_async);
  napi_create_function(env, "wait", NAPI_AUTO_LENGTH, ProgramWait, plan, &wait);
  napi_set_named_property(env, wait, "program", run);
  napi_set_named_property(env, obj, "wait", wait);
  napi_value run_steps_async, stop;
  napi_create_function(env, "runStepsAsync", NAPI_AUTO_LENGTH, ProgramRunStepsAsync, plan, &run_steps_async);
  napi_set_named_property(env, run_steps_async, "program", run);
  napi_set_named_property(env, obj, "runStepsAsync", run_steps_async);
  napi_create_function(env, "stop", NAPI_AUTO_LENGTH, ProgramStop, plan, &stop);
  napi_set_named_property(env, stop, "program", run);
  napi_set_named_property(env, obj, "stop", stop);
  return obj;
}

}  // namespace boundary
}  // namespace deltaprop

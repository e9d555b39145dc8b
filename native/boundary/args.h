// Argument reading and checking for the Node-API entry points: the C++ half of the kernel contract
// (src/backends/contract.ts is the specification; its messages are produced here word for word, and
// test/boundary.test.ts runs one table of bad calls against every backend to keep them equal).
//
// Order of checks, the same as the contract's: non-buffer arguments in positional order (type,
// then range), then buffers in positional order (type, then length), then overlaps (each output,
// in positional order, against every other buffer). The first failure throws and turns every later
// read into a no-op.
#pragma once
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../abi.h"
#include "../flush_subnormals.h"
#include "../gemm.h"

namespace deltaprop {
namespace boundary {

typedef std::ptrdiff_t idx;
constexpr double kMaxSize = abi::MAX_SIZE;  // sizes are int32 on the JS side
// The smallest magnitude that rounds to infinity in float32: 2^128 - 2^103 (FLT_MAX plus half an
// ulp, a tie that rounds to even, i.e. up). Below it, (float)d is finite: what Math.fround says.
constexpr double kF32Overflow = abi::F32_OVERFLOW;

inline bool finite_f32(double d) { return std::fabs(d) < kF32Overflow; }  // NaN fails

// A number as JavaScript's String(d) prints it (ECMAScript Number::toString), so that messages
// match the TypeScript checks character for character.
inline std::string js_number(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  if (d == 0) return "0";
  char buf[64];
  // shortest round-trip digits, as "d.ddde±x"
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string out = d < 0 ? "-" : "";
  const size_t e = sci.find('e');
  std::string digits;
  for (size_t i = (d < 0 ? 1 : 0); i < e; i++)
    if (sci[i] != '.') digits += sci[i];
  const int exp10 = std::atoi(sci.c_str() + e + 1);
  const int k = (int)digits.size(), n = exp10 + 1;
  if (k <= n && n <= 21) {
    out += digits + std::string((size_t)(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, (size_t)n) + "." + digits.substr((size_t)n);
  } else if (-6 < n && n <= 0) {
    out += "0." + std::string((size_t)(-n), '0') + digits;
  } else {
    out += digits.substr(0, 1);
    if (k > 1) out += "." + digits.substr(1);
    out += std::string("e") + (n - 1 >= 0 ? "+" : "-") + std::to_string(std::abs(n - 1));
  }
  return out;
}

// What a value is, for "must be a number, got a string" (contract.ts describe()).
inline const char* describe(napi_env env, napi_value v) {
  napi_valuetype t = napi_undefined;
  if (!v || napi_typeof(env, v, &t) != napi_ok) return "undefined";
  switch (t) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_number: return "a number";
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_function: return "a function";
    case napi_bigint: return "a bigint";
    default: return "an object";
  }
}

// Buffers allocated by alloc(), by id, so that the hot path can name them with numbers: a call
// through the "fast" entry points reads all its arguments from a per-instance Float64Array
// (the argument block) and makes no napi call per argument. One registry per JS environment
// (main thread, each worker); ids are reused after the buffer is garbage-collected. Reference
// counted: the environment holds one reference (dropped by its instance-data finalizer when it
// exits) and every live buffer one (its finalizer may run after the environment's), so a worker
// that exits leaves nothing behind.
struct Registry {
  struct Slot { float* data; size_t length; };
  std::vector<Slot> slots;
  std::vector<int> free_ids;
  // Buffers released so far: a live slot changes only when it is released, so a compiled program
  // whose buffers were all live when this count was `releases` still has them all while it is.
  uint64_t releases = 0;
  int refs = 1;
  int add(float* p, size_t n) {
    refs++;
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
    if (id >= 0 && (size_t)id < slots.size()) {
      slots[(size_t)id] = {nullptr, 0};
      free_ids.push_back(id);
      releases++;
    }
    unref();
  }
  void unref() {
    if (--refs == 0) delete this;
  }
};

struct Instance {  // the per-kernel-object JS-side state of the fast path
  Registry* reg;
  double* args;       // the argument block: kArgSlots doubles, owned by its ArrayBuffer
  napi_ref args_ref;  // keeps the block's Float64Array alive as long as the box
};
constexpr int kArgSlots = abi::ARG_SLOTS;  // position p: slot ARG_STRIDE·p (number) or BUF_SLOTS from it (buffer)

// The data of every function of one kernel object, of the object itself and of its compiled
// steps. Reference counted: a function kept after its kernel object was collected still finds its
// context, and the box goes only with the last of them.
struct CtxBox {
  Ctx ctx;
  Instance inst;
  int refs = 0;
  void ref() { refs++; }
  void unref(napi_env env) {
    if (--refs > 0) return;
    if (inst.args_ref) napi_delete_reference(env, inst.args_ref);
    inst.reg->unref();
    delete this;
  }
};

// What both argument readers share: error reporting in the contract's words, and the buffers read
// so far (for the overlap check).
class ArgErrors {
 public:
  bool ok() const { return ok_; }
  void* data() const { return data_; }
  void type_error(const std::string& msg) { fail(false, msg); }
  void fail(bool range, const std::string& msg) {
    if (!ok_) return;
    ok_ = false;
    std::string full = std::string(fn_) + ": " + msg;
    if (range) napi_throw_range_error(env_, nullptr, full.c_str());
    else napi_throw_type_error(env_, nullptr, full.c_str());
  }

  // A finite float32 (hyperparameters, alpha/beta): finite in float64 is not enough, 1e39 is Inf.
  float check_real(double d, const char* name) {
    if (ok_ && !finite_f32(d)) fail(true, std::string(name) + " must be a finite float32, got " + js_number(d));
    return ok_ ? (float)d : 0.f;
  }
  // The same, and not 0 once rounded to float32 (a divisor).
  float check_nonzero(double d, const char* name) {
    float f = check_real(d, name);
    if (ok_ && f == 0.f) fail(true, std::string(name) + " must be a nonzero finite float32, got " + js_number(d));
    return f;
  }
  // A dropout rate: in [0, 1) once rounded to float32 (contract.ts isRate); NaN fails.
  float check_rate(double d, const char* name) {
    if (ok_ && !(d >= 0 && d < 1 && (float)d < 1.f)) fail(true, std::string(name) + " must be in [0, 1) as a float32, got " + js_number(d));
    return ok_ ? (float)d : 0.f;
  }
  __attribute__((noinline, cold)) void bad_integer(const char* name, double d, double lo, double hi) {
    fail(true, std::string(name) + " must be an integer in [" + js_number(lo) + ", " + js_number(hi) + "], got " +
                   js_number(d));
  }
  idx check_integer(double d, const char* name, double lo, double hi) {
    if (!ok_) return 0;
    if (d >= lo && d <= hi && (double)(int64_t)d == d) return (idx)d;  // NaN fails the range test
    bad_integer(name, d, lo, hi);
    return 0;
  }

  // Each output must not share a float with any other buffer argument (contract.ts overlaps()).
  void no_overlap() {
    for (int i = 0; ok_ && i < nbuf_; i++) {
      const Used& o = used_[i];
      if (!o.output || o.n == 0) continue;
      for (int j = 0; j < nbuf_; j++) {
        const Used& b = used_[j];
        if (j == i || b.n == 0 || (b.output && j < i)) continue;
        const uintptr_t p = (uintptr_t)o.p, q = (uintptr_t)b.p;
        if (p < q + (uintptr_t)b.n * sizeof(float) && q < p + (uintptr_t)o.n * sizeof(float)) {
          fail(true, std::string(o.name) + " and " + b.name +
                         " overlap (an output must not share memory with another argument)");
          return;
        }
      }
    }
  }

 protected:
  ArgErrors(napi_env env, const char* fn) : env_(env), fn_(fn) {}
  void used(const float* p, idx n, const char* name, bool output) {
    if (nbuf_ < kMaxBufs) used_[nbuf_++] = {p, n, name, output};
  }
  napi_env env_;
  const char* fn_;
  void* data_ = nullptr;
  bool ok_ = true;

 private:
  struct Used { const float* p; idx n; const char* name; bool output; };
  static constexpr int kMaxBufs = 8;
  Used used_[kMaxBufs];
  int nbuf_ = 0;
  // every entry reads its arguments through one of these: the kernel it then runs, on this thread
  // and the pool's, sees subnormals as zero until the entry returns (flush_subnormals.h)
  FlushSubnormals flush_;
};

// Reads JS arguments (the addon's own functions, called with Float32Arrays).
class Args : public ArgErrors {
 public:
  Args(napi_env env, napi_callback_info info, const char* fn) : ArgErrors(env, fn) {
    napi_get_cb_info(env, info, &argc_, argv_, nullptr, &data_);
    if (argc_ > kMax) argc_ = kMax;
  }
  napi_value arg(size_t i) const { return i < argc_ ? argv_[i] : nullptr; }

  double number(size_t i, const char* name) {
    if (!ok_) return 0;
    double d = 0;
    napi_value v = arg(i);
    // napi_get_value_double checks the type itself: one call per argument on the hot path
    if (!v || napi_get_value_double(env_, v, &d) != napi_ok) {
      type_error(std::string(name) + " must be a number, got " + describe(env_, v));
      return 0;
    }
    return d;
  }
  float real(size_t i, const char* name) { return check_real(number(i, name), name); }
  float nonzero(size_t i, const char* name) { return check_nonzero(number(i, name), name); }
  float rate(size_t i, const char* name) { return check_rate(number(i, name), name); }
  idx integer(size_t i, const char* name, double lo, double hi) { return check_integer(number(i, name), name, lo, hi); }
  idx size(size_t i, const char* name) { return integer(i, name, 0, kMaxSize); }

  bool boolean(size_t i, const char* name) {
    if (!ok_) return false;
    bool b = false;
    napi_value v = arg(i);
    if (!v || napi_get_value_bool(env_, v, &b) != napi_ok) {
      type_error(std::string(name) + " must be a boolean, got " + describe(env_, v));
      return false;
    }
    return b;
  }

  // A Float32Array holding at least `need` floats (need computed from sizes already checked,
  // each < 2^31, so products of two cannot overflow int64). null is accepted when `nullable`.
  // Its length goes to *len_out when given. `output`: the kernel writes it (overlap check).
  float* f32(size_t i, const char* name, idx need, const char* shape, bool nullable = false, bool output = false,
             size_t* len_out = nullptr) {
    size_t len = 0;
    void* ptr = typed(i, name, napi_float32_array, nullable ? "a Float32Array or null" : "a Float32Array", nullable, &len);
    if (!ptr) return nullptr;
    if ((double)len < (double)need) {
      fail(true, std::string(name) + " has " + std::to_string(len) + " floats, fewer than " + shape + " = " +
                     std::to_string((long long)need));
      return nullptr;
    }
    if (len_out) *len_out = len;
    used(static_cast<float*>(ptr), need, name, output);
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
      type_error(std::string(name) + " must be " + expected + ", got " + describe(env_, v));
      return nullptr;
    }
    if (tt != want) {
      type_error(std::string(name) + " must be " + expected + ", got another typed array");
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

// A buffer a compiled program reads or writes: each run checks that its id still names the same
// allocation, at least `end` floats long (a program never touches freed memory).
struct HeldBuffer { int id; const float* base; size_t end; };

// Reads arguments from a block of doubles: a number at slot Stride·p; a buffer as (id, offset,
// length) in the BUF_SLOTS from there, id -1 for null. FastArgs (Stride ARG_STRIDE) reads the
// argument block of the *Fast entry points, whose JavaScript side (src/backends/native.ts) has
// checked the types; RecordArgs (Stride 1, p the slot abi::op::<name> names) reads one op record of
// a program (interpreter.cc). The ranges, lengths and overlaps are checked here, with the same
// messages as Args.
template <int Stride>
class BlockArgs : public ArgErrors {
 public:
  // the argument block of the kernel object whose function this is
  BlockArgs(napi_env env, napi_callback_info info, const char* fn) : ArgErrors(env, fn) {
    size_t argc = 0;
    napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data_);
    const Instance* in = &static_cast<const CtxBox*>(data_)->inst;
    a_ = in->args;
    reg_ = in->reg;
  }
  // one op record; every buffer it names goes to *held
  BlockArgs(napi_env env, const char* fn, const Registry* reg, const double* rec, std::vector<HeldBuffer>* held)
      : ArgErrors(env, fn), a_(rec), reg_(reg), held_(held) {}

  double number(size_t p, const char*) { return ok_ ? a_[Stride * p] : 0; }
  float real(size_t p, const char* name) { return check_real(number(p, name), name); }
  float nonzero(size_t p, const char* name) { return check_nonzero(number(p, name), name); }
  float rate(size_t p, const char* name) { return check_rate(number(p, name), name); }
  idx integer(size_t p, const char* name, double lo, double hi) { return check_integer(a_[Stride * p], name, lo, hi); }
  idx size(size_t p, const char* name) { return integer(p, name, 0, kMaxSize); }
  bool boolean(size_t p, const char* name) {
    double d = number(p, name);
    if (ok_ && d != 0 && d != 1) {
      type_error(std::string(name) + " must be a boolean (0 or 1 in the " + (Stride == 1 ? "op record" : "argument block") +
                 "), got " + js_number(d));
    }
    return d == 1;
  }
  float* f32(size_t p, const char* name, idx need, const char* shape, bool nullable = false, bool output = false) {
    const double id = a_[Stride * p], off = a_[Stride * p + 1], len = a_[Stride * p + 2];
    // The common case in a few compares: a live id, an integral view inside it, long enough.
    if (ok_ && id >= 0 && id < (double)reg_->slots.size() && (double)(int64_t)id == id) {
      const Registry::Slot& s = reg_->slots[(size_t)id];
      if (s.data && off >= 0 && len >= (double)need && off + len <= (double)s.length &&
          (double)(int64_t)off == off && (double)(int64_t)len == len) {
        used(s.data + (size_t)off, need, name, output);
        if (held_) held_->push_back({(int)id, s.data, (size_t)off + (size_t)need});
        return s.data + (size_t)off;
      }
    }
    if (ok_ && nullable && id == -1) return nullptr;
    bad_f32(name, need, shape, id, off, len);
    return nullptr;
  }
  __attribute__((noinline, cold)) void bad_f32(const char* name, idx need, const char* shape, double id, double off,
                                               double len) {
    if (!ok_) return;
    if (!(id >= 0 && id < (double)reg_->slots.size()) || (double)(int64_t)id != id || !reg_->slots[(size_t)id].data) {
      fail(true, std::string(name) + ": no live buffer with id " + js_number(id));
      return;
    }
    const Registry::Slot& s = reg_->slots[(size_t)id];
    if (!(off >= 0 && len >= 0 && off + len <= (double)s.length) || (double)(int64_t)off != off ||
        (double)(int64_t)len != len) {
      fail(true, std::string(name) + ": view [" + js_number(off) + ", " + js_number(off + len) +
                     ") is outside its buffer of " + std::to_string(s.length) + " floats");
      return;
    }
    fail(true, std::string(name) + " has " + js_number(len) + " floats, fewer than " + shape + " = " +
                   std::to_string((long long)need));
  }

 private:
  const double* a_ = nullptr;
  const Registry* reg_ = nullptr;
  std::vector<HeldBuffer>* held_ = nullptr;
};
using FastArgs = BlockArgs<abi::ARG_STRIDE>;
using RecordArgs = BlockArgs<1>;

}  // namespace boundary
}  // namespace deltaprop

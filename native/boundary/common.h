// What every Node-API entry point of the addon shares: small value helpers, the exception guard
// (no C++ exception crosses into V8), and the entry points each file defines for init.cc.
#pragma once
#include <string>

#include "args.h"

namespace deltaprop {
namespace boundary {

constexpr int kMaxThreads = abi::MAX_THREADS;

inline napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

inline napi_value number(napi_env env, double d) {
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

struct EntryPoint {
  const char* name;
  napi_callback cb;
};

// entries.cc: the functions of a kernel object (the kernels, their *Fast twins, the helpers)
extern const EntryPoint kKernelEntries[];
extern const size_t kKernelEntryCount;
// interpreter.cc: compileProgram(records), a method of the kernel object
napi_value CompileProgram(napi_env env, napi_callback_info info);
// registry.cc: the module's allocation functions
napi_value Alloc(napi_env env, napi_callback_info info);
napi_value AllocBuf(napi_env env, napi_callback_info info);
napi_value Misalignment(napi_env env, napi_callback_info info);

}  // namespace boundary
}  // namespace deltaprop

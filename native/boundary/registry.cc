// Buffer allocation: zero-filled, 64-byte-aligned Float32Arrays over native memory, each
// registered under an id in the environment's Registry (native/boundary/args.h) so that the argument
// block and compiled steps can name it, and released from the registry when it is collected.
#include <cstdlib>
#include <cstring>
#include <string>

#include "common.h"

namespace deltaprop {
namespace boundary {
namespace {

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

}  // namespace

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

}  // namespace boundary
}  // namespace deltaprop

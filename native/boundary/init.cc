// Module init: the per-environment buffer registry, the module's functions, and create(isa,
// threads), which makes a kernel object bound to one ISA's kernel table with its argument block.
#include <cstdlib>
#include <string>

#include "../threadpool.h"
#include "common.h"

namespace deltaprop {
namespace boundary {
namespace {

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

  for (size_t i = 0; i < kKernelEntryCount; i++) {
    const EntryPoint& f = kKernelEntries[i];
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
}  // namespace boundary
}  // namespace deltaprop

NAPI_MODULE_INIT() { return deltaprop::boundary::Init(env, exports); }

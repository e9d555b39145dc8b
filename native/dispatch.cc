// CPU feature detection, once, and the choice of kernel table (newest ISA first).
#include <cstring>

#include "gemm.h"

namespace deltaprop {

namespace {

struct Entry {
  const char* name;
  const KernelTable* table;
  bool cpu_has;
};

struct Detected {
  Entry e[4];
  int n = 0;
  char list[64] = {0};
  Detected() {
    const KernelTable* t;
#if defined(__x86_64__) || defined(_M_X64)
    __builtin_cpu_init();
    // libgcc's checks include the OS's XSAVE state (xgetbv), not just cpuid bits.
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    t = table_avx512();
    e[n++] = {"avx512", t, t && avx512};
    t = table_avx2_fma();
    e[n++] = {"avx2-fma", t, t && avx2};
    e[n++] = {"neon", nullptr, false};
#else
    e[n++] = {"avx512", nullptr, false};
    e[n++] = {"avx2-fma", nullptr, false};
    t = table_neon();
    e[n++] = {"neon", t, t != nullptr};
#endif
    e[n++] = {"scalar", table_scalar(), true};
    for (int i = 0; i < n; i++) {
      if (!e[i].cpu_has) continue;
      if (list[0]) std::strcat(list, ",");
      std::strcat(list, e[i].name);
    }
  }
};

const Detected& detected() {
  static const Detected d;
  return d;
}

}  // namespace

const KernelTable* select_isa(const char* name, const char** why) {
  const Detected& d = detected();
  if (!name || !*name) {
    for (int i = 0; i < d.n; i++)
      if (d.e[i].cpu_has) return d.e[i].table;
  }
  for (int i = 0; i < d.n; i++) {
    if (std::strcmp(d.e[i].name, name) != 0) continue;
    if (d.e[i].cpu_has) return d.e[i].table;
    *why = "this CPU (or this build of the addon) does not support that ISA";
    return nullptr;
  }
  *why = "unknown ISA name (expected avx512, avx2-fma, neon or scalar)";
  return nullptr;
}

const char* available_isas() { return detected().list; }

}  // namespace deltaprop

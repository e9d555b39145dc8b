{
  # The addon links per-ISA static libraries so that only those files get -mavx512f / -mavx2;
  # the rest of the addon runs on any CPU of its architecture (dispatch.cc picks at run time).
  "target_defaults": {
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "cflags_cc": ["-std=c++17", "-O3", "-fno-math-errno", "-fexceptions", "-fPIC", "-fvisibility=hidden"],
    "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O3"]
    },
    "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1 } },
    # contract asserts (DP_UKR_CONTRACT, assert) run in Debug builds only
    "configurations": { "Release": { "defines": ["NDEBUG"] } }
  },
  "targets": [
    {
      "target_name": "deltaprop_avx512",
      "type": "static_library",
      "sources": ["native/kernels/f32-gemm-14x32-avx512.cc"],
      "conditions": [["target_arch=='x64'", {
        "cflags_cc": ["-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq", "-mavx2", "-mfma"],
        "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq", "-mavx2", "-mfma"] }
      }]]
    },
    {
      "target_name": "deltaprop_avx2_fma",
      "type": "static_library",
      "sources": ["native/kernels/f32-gemm-6x16-avx2-fma.cc"],
      "conditions": [["target_arch=='x64'", {
        "cflags_cc": ["-mavx2", "-mfma"],
        "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-mavx2", "-mfma"] }
      }]]
    },
    {
      "target_name": "deltaprop",
      "dependencies": ["deltaprop_avx512", "deltaprop_avx2_fma"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "sources": [
        "native/boundary/entries.cc",
        "native/boundary/init.cc",
        "native/boundary/registry.cc",
        "native/boundary/interpreter.cc",
        "native/gemm.cc",
        "native/dispatch.cc",
        "native/threadpool.cc",
        "native/kernels/f32-gemm-4x8-scalar.cc",
        "native/kernels/f32-gemm-8x8-neon.cc"
      ],
      "libraries": ["-lpthread"]
    }
  ]
}

#!/bin/sh
# Builds and runs the standalone kernel test (no Node).
#   native/test/run.sh                                   host compiler, run natively
#   CXX=aarch64-linux-gnu-g++ RUN="qemu-aarch64 -L /usr/aarch64-linux-gnu" native/test/run.sh
# Each ISA file gets its own target flags, as in binding.gyp.
set -e
cd "$(dirname "$0")/.."
CXX=${CXX:-g++}
if [ -z "$OUT" ]; then OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT; fi
FLAGS="-O2 -std=c++17 -fno-math-errno -fexceptions -pthread"
case "$($CXX -dumpmachine)" in
  x86_64*)
    $CXX $FLAGS -mavx512f -mavx512vl -mavx512bw -mavx512dq -mavx2 -mfma -c kernels/f32-gemm-14x32-avx512.cc -o "$OUT/avx512.o"
    $CXX $FLAGS -mavx2 -mfma -c kernels/f32-gemm-6x16-avx2-fma.cc -o "$OUT/avx2.o"
    EXTRA="$OUT/avx512.o $OUT/avx2.o" ;;
  *)
    $CXX $FLAGS -c kernels/f32-gemm-14x32-avx512.cc -o "$OUT/avx512.o"
    $CXX $FLAGS -c kernels/f32-gemm-6x16-avx2-fma.cc -o "$OUT/avx2.o"
    EXTRA="$OUT/avx512.o $OUT/avx2.o" ;;
esac
$CXX $FLAGS test/kernel_test.cc gemm.cc dispatch.cc threadpool.cc kernels/f32-gemm-4x8-scalar.cc kernels/f32-gemm-8x8-neon.cc $EXTRA \
  -static -o "$OUT/kernel_test"
${RUN:-} "$OUT/kernel_test"

// Subnormal floats read and written as zero while the kernels run (x86's FTZ and DAZ bits):
// once a softmax has learned its classes, its small probabilities and their deltas fall below
// FLT_MIN (1.2e-38), and every multiply-add that touches one takes a microcode assist; a wide-mlp
// step ran 35x slower once its probabilities reached 6e-38 (68 k -> 1.9 k samples/s). Values that
// small carry nothing a float32 network can use. The caller's mode is restored on the way out:
// JavaScript's own arithmetic must keep subnormals. Elsewhere (NEON) a no-op: those cores handle
// subnormals at full speed or flush by default.
#pragma once

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>

namespace deltaprop {

constexpr unsigned kFlushZeroAndDenormalsZero = 0x8040;  // MXCSR bits 15 (FTZ) and 6 (DAZ)

class FlushSubnormals {
 public:
  FlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFlushZeroAndDenormalsZero); }
  ~FlushSubnormals() { _mm_setcsr(saved_); }
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;

 private:
  unsigned saved_;
};

// For threads that run only kernels (the pool's workers): set once, never restored.
inline void flush_subnormals_on_this_thread() { _mm_setcsr(_mm_getcsr() | kFlushZeroAndDenormalsZero); }

}  // namespace deltaprop

#else

namespace deltaprop {
class FlushSubnormals {};
inline void flush_subnormals_on_this_thread() {}
}  // namespace deltaprop

#endif

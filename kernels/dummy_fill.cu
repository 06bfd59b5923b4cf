// Seeded dummy weights on the device, element for element model/weights.cpp's
// DummyWeights (then rounded to bf16 for bf16 outputs). Grid-stride over the output; the vector
// path makes 8 consecutive outputs (one source run, as inner % 8 == 0) per step.
#include <algorithm>

#include "common/hash.h"
#include "kernels/elementwise.h"
#include "kernels/vec.cuh"

namespace vela::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 16;

// DummyWeights' value at flat source index s. The explicit _rn intrinsics keep
// nvcc from contracting into an FMA, so the fp32 result is the CPU's bit for bit.
template <class T>
__device__ inline float dummy_value(const DummyFillParams<T>& p, int64_t s) {
  if (p.is_norm) return 1.0f;
  const uint64_t r = splitmix64(p.key + uint64_t(s));
  const float u = __fmul_rn(float(r >> 40), 1.0f / 16777216.0f);  // [0, 1), exact
  return __fmul_rn(__fsub_rn(__fmul_rn(2.0f, u), 1.0f), p.half_width);
}

// Flat source index of output element e, or -1 for a row past dim_size (zero).
template <class T>
__device__ inline int64_t source_index(const DummyFillParams<T>& p, int64_t e) {
  const int64_t j = e % p.inner, rest = e / p.inner;
  const int64_t i = rest % p.length, o = rest / p.length;
  const int64_t src_row = p.start + i;
  if (src_row >= p.dim_size) return -1;
  return (o * p.dim_size + src_row) * p.inner + j;
}

template <class T, bool kVec8>
__global__ void dummy_fill_kernel(DummyFillParams<T> p, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  if constexpr (kVec8) {
    for (int64_t u = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; u * kVec < n; u += stride) {
      const int64_t s = source_index(p, u * kVec);  // the 8 share a row: inner % 8 == 0
      float f[kVec];
#pragma unroll
      for (int e = 0; e < kVec; ++e) f[e] = s < 0 ? 0.0f : dummy_value(p, s + e);
      store8(p.out + u * kVec, f);
    }
  } else {
    for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) {
      const int64_t s = source_index(p, e);
      p.out[e] = from_f32<T>(s < 0 ? 0.0f : dummy_value(p, s));
    }
  }
}

}  // namespace

template <class T>
cudaError_t dummy_fill(const DummyFillParams<T>& p, cudaStream_t stream) {
  const int64_t n = p.outer * p.length * p.inner;
  if (n == 0) return cudaSuccess;
  const bool vec = vec8_ok({p.out}, {p.inner});
  const int64_t units = vec ? n / kVec : n;
  const int64_t blocks = std::min<int64_t>((units + kThreads - 1) / kThreads, kMaxBlocks);
  if (vec)
    dummy_fill_kernel<T, true><<<unsigned(blocks), kThreads, 0, stream>>>(p, n);
  else
    dummy_fill_kernel<T, false><<<unsigned(blocks), kThreads, 0, stream>>>(p, n);
  return cudaGetLastError();
}

template cudaError_t dummy_fill(const DummyFillParams<bf16>&, cudaStream_t);
template cudaError_t dummy_fill(const DummyFillParams<float>&, cudaStream_t);

}  // namespace vela::kernels

// Small-batch linear layers as a matrix-vector kernel: out[m, n] = x[m, :] · w[n, :]
// (+ bias[n]) for m <= kGemvMaxRows. At batch 1-4 a linear layer is a stream of its
// weights (16 GB per token for an 8B model), so the only figure that matters is the
// share of HBM bandwidth it reaches; a GEMM library tiles for tensor cores and
// leaves bandwidth behind at m = 1. A warp owns one output column n: it streams
// w[n, :] in 16-byte loads (kUnroll in flight per lane, marked evict-first: each
// weight is read once per step), multiplies with the m rows of x (small, cached),
// accumulates in fp32 and reduces across the warp.
#include "kernels/gemm.h"
#include "kernels/vec.cuh"

namespace vela::kernels {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kUnroll = 4;
constexpr int64_t kChunk = 32 * kVec;  // elements a warp covers with one load per lane

template <int M>
__device__ inline void accumulate(const GemmArgs& a, const uint4& wraw, int64_t k, float (&acc)[M]) {
  float w[kVec];
  unpack8(wraw, w);
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float x[kVec];
    load8(static_cast<const bf16*>(a.x) + m * a.x_row_stride + k, x);
#pragma unroll
    for (int e = 0; e < kVec; ++e) acc[m] = fmaf(w[e], x[e], acc[m]);
  }
}

template <int M>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) gemv_kernel(GemmArgs a) {
  const int lane = threadIdx.x & 31;
  const int64_t n = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (n >= a.n) return;
  const bf16* w = static_cast<const bf16*>(a.w) + n * a.k;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.f;
  int64_t k = int64_t(lane) * kVec;
  for (; k + (kUnroll - 1) * kChunk < a.k; k += kUnroll * kChunk) {
    uint4 raw[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) raw[u] = __ldcs(reinterpret_cast<const uint4*>(w + k + u * kChunk));
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) accumulate<M>(a, raw[u], k + u * kChunk, acc);
  }
  for (; k < a.k; k += kChunk) accumulate<M>(a, __ldcs(reinterpret_cast<const uint4*>(w + k)), k, acc);
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], o);
  if (lane != 0) return;
  const float b = a.bias != nullptr ? to_f32(static_cast<const bf16*>(a.bias)[n]) : 0.f;
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float v = acc[m] + b;
    if (a.out_f32) static_cast<float*>(a.out)[m * a.out_row_stride + n] = v;
    else static_cast<bf16*>(a.out)[m * a.out_row_stride + n] = __float2bfloat16(v);
  }
}

template <int M>
cudaError_t launch(const GemmArgs& a, cudaStream_t stream) {
  const unsigned blocks = unsigned((a.n + kWarpsPerBlock - 1) / kWarpsPerBlock);
  gemv_kernel<M><<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace

bool gemv_supported(const GemmArgs& a) {
  return !a.in_f32 && a.m >= 1 && a.m <= kGemvMaxRows && a.k % kVec == 0 && a.x_row_stride % kVec == 0 && aligned16(a.x) &&
         aligned16(a.w) && a.out_row_stride >= a.n;
}

cudaError_t gemv(const GemmArgs& a, cudaStream_t stream) {
  switch (a.m) {
    case 1: return launch<1>(a, stream);
    case 2: return launch<2>(a, stream);
    case 3: return launch<3>(a, stream);
    case 4: return launch<4>(a, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace vela::kernels

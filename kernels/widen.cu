// bf16 -> fp32 over a flat array: how bf16 checkpoints become fp32 weights on the
// device (model.dtype float32) without an fp32 copy on the host. Grid-stride, 8
// elements per step on the vector path.
#include <algorithm>

#include "kernels/elementwise.h"
#include "kernels/vec.cuh"

namespace vela::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1 << 16;

template <bool kVec8>
__global__ void widen_bf16_kernel(const bf16* in, float* out, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if constexpr (kVec8) {
    for (int64_t u = first; u * kVec < n; u += stride) {
      float f[kVec];
      load8(in + u * kVec, f);
      store8(out + u * kVec, f);
    }
  } else {
    for (int64_t i = first; i < n; i += stride) out[i] = to_f32(in[i]);
  }
}

}  // namespace

cudaError_t widen_bf16(const bf16* in, float* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const bool vec = vec8_ok({in, out}, {n});
  const int64_t units = vec ? n / kVec : n;
  const int64_t blocks = std::min<int64_t>((units + kThreads - 1) / kThreads, kMaxBlocks);
  if (vec)
    widen_bf16_kernel<true><<<unsigned(blocks), kThreads, 0, stream>>>(in, out, n);
  else
    widen_bf16_kernel<false><<<unsigned(blocks), kThreads, 0, stream>>>(in, out, n);
  return cudaGetLastError();
}

}  // namespace vela::kernels

#pragma once
// Sum reductions across a warp and across a block (fp32).
#include <cuda_runtime.h>

namespace vela::kernels {

__device__ inline float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Every thread of the block gets the sum. blockDim.x must be a multiple of 32
// (at most 1024); all threads must call it. Reusable back to back: the leading
// barrier keeps a second call from overwriting partials the first still reads.
__device__ inline float block_sum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : 0.0f;
  return warp_sum(v);
}

}  // namespace vela::kernels

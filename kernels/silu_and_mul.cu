// out = silu(gate) * up over [T, I]: grid (tokens, chunks of a row), so a single
// decode token still spreads its row over several blocks.
#include <cmath>

#include "kernels/elementwise.h"
#include "kernels/launch.cuh"
#include "kernels/vec.cuh"

namespace vela::kernels {
namespace {

constexpr int kThreads = 256;

// The CPU op's expression: g / (1 + exp(-g)) * u.
__device__ inline float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

template <class T, bool kVec8>
__global__ void silu_and_mul_kernel(SiluAndMulParams<T> p) {
  grid_dependency_wait();
  allow_dependents();
  const int64_t t = blockIdx.x, inter = p.intermediate;
  const T* gate = p.gate_up + t * 2 * inter;
  const T* up = gate + inter;
  T* out = p.out + t * inter;
  const int64_t first = int64_t(blockIdx.y) * blockDim.x + threadIdx.x, step = int64_t(gridDim.y) * blockDim.x;
  if constexpr (kVec8) {
    for (int64_t u = first; u * kVec < inter; u += step) {
      float g[kVec], v[kVec];
      load8(gate + u * kVec, g);
      load8(up + u * kVec, v);
#pragma unroll
      for (int e = 0; e < kVec; ++e) g[e] = silu_mul(g[e], v[e]);
      store8(out + u * kVec, g);
    }
  } else {
    for (int64_t i = first; i < inter; i += step)
      out[i] = from_f32<T>(silu_mul(to_f32(gate[i]), to_f32(up[i])));
  }
}

}  // namespace

template <class T>
cudaError_t silu_and_mul(const SiluAndMulParams<T>& p, cudaStream_t stream) {
  if (p.num_tokens == 0 || p.intermediate == 0) return cudaSuccess;
  const bool vec = vec8_ok({p.gate_up, p.out}, {p.intermediate});
  const int64_t units = vec ? p.intermediate / kVec : p.intermediate;
  const int threads = threads_for(units, kThreads);
  const dim3 grid(unsigned(p.num_tokens), unsigned((units + threads - 1) / threads));
  if (vec)
    launch_kernel(silu_and_mul_kernel<T, true>, dim3(grid), dim3(threads), 0, stream, p);
  else
    launch_kernel(silu_and_mul_kernel<T, false>, dim3(grid), dim3(threads), 0, stream, p);
  return cudaGetLastError();
}

template cudaError_t silu_and_mul(const SiluAndMulParams<bf16>&, cudaStream_t);
template cudaError_t silu_and_mul(const SiluAndMulParams<float>&, cudaStream_t);

}  // namespace vela::kernels

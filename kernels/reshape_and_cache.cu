// Writes each token's k and v heads into its paged-cache slot: a block per token
// copies the token's [nk, hd] k and v (contiguous inside the token) to the slot's
// row of [num_blocks * block_size, nk, hd]; a negative slot skips the token.
#include "kernels/elementwise.h"
#include "kernels/launch.cuh"
#include "kernels/vec.cuh"

namespace vela::kernels {
namespace {

constexpr int kMaxThreads = 256;

template <class T, bool kVec8>
__global__ void reshape_and_cache_kernel(ReshapeAndCacheParams<T> p) {
  grid_dependency_wait();
  allow_dependents();
  const int64_t t = blockIdx.x, slot = p.slot_mapping[t];
  if (slot < 0) return;
  const int64_t width = p.num_kv_heads * p.head_dim;
  const T* k = p.k + t * p.k_token_stride;
  const T* v = p.v + t * p.v_token_stride;
  T* kc = p.k_cache + slot * width;
  T* vc = p.v_cache + slot * width;
  if constexpr (kVec8) {
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < width; i += int64_t(blockDim.x) * kVec) {
      copy8(kc + i, k + i);
      copy8(vc + i, v + i);
    }
  } else {
    for (int64_t i = threadIdx.x; i < width; i += blockDim.x) {
      kc[i] = k[i];
      vc[i] = v[i];
    }
  }
}

}  // namespace

template <class T>
cudaError_t reshape_and_cache(const ReshapeAndCacheParams<T>& p, cudaStream_t stream) {
  const int64_t width = p.num_kv_heads * p.head_dim;
  if (p.num_tokens == 0 || width == 0) return cudaSuccess;
  const bool vec = vec8_ok({p.k, p.v, p.k_cache, p.v_cache}, {width, p.k_token_stride, p.v_token_stride});
  const int threads = threads_for(vec ? width / kVec : width, kMaxThreads);
  if (vec)
    launch_kernel(reshape_and_cache_kernel<T, true>, dim3(unsigned(p.num_tokens)), dim3(threads), 0, stream, p);
  else
    launch_kernel(reshape_and_cache_kernel<T, false>, dim3(unsigned(p.num_tokens)), dim3(threads), 0, stream, p);
  return cudaGetLastError();
}

template cudaError_t reshape_and_cache(const ReshapeAndCacheParams<bf16>&, cudaStream_t);
template cudaError_t reshape_and_cache(const ReshapeAndCacheParams<float>&, cudaStream_t);

}  // namespace vela::kernels

// Embedding lookup of a (possibly vocab-parallel) table shard: a block per token
// copies its row, or writes zeros for an id outside [vocab_start, vocab_start + rows).
#include "kernels/elementwise.h"
#include "kernels/launch.cuh"
#include "kernels/vec.cuh"

namespace vela::kernels {
namespace {

constexpr int kMaxThreads = 256;

template <class T, bool kVec8>
__global__ void embedding_kernel(EmbeddingParams<T> p) {
  grid_dependency_wait();
  allow_dependents();
  const int64_t t = blockIdx.x;
  const int64_t local = int64_t(p.ids[t]) - p.vocab_start;
  const bool present = local >= 0 && local < p.num_rows;
  const T* src = p.table + (present ? local : 0) * p.hidden;
  T* dst = p.out + t * p.hidden;
  if constexpr (kVec8) {
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < p.hidden; i += int64_t(blockDim.x) * kVec) {
      if (present)
        copy8(dst + i, src + i);
      else
        zero8(dst + i);
    }
  } else {
    for (int64_t i = threadIdx.x; i < p.hidden; i += blockDim.x) dst[i] = present ? src[i] : from_f32<T>(0.0f);
  }
}

}  // namespace

template <class T>
cudaError_t embedding(const EmbeddingParams<T>& p, cudaStream_t stream) {
  if (p.num_tokens == 0 || p.hidden == 0) return cudaSuccess;
  const bool vec = vec8_ok({p.table, p.out}, {p.hidden});
  const int threads = threads_for(vec ? p.hidden / kVec : p.hidden, kMaxThreads);
  if (vec)
    launch_kernel(embedding_kernel<T, true>, dim3(unsigned(p.num_tokens)), dim3(threads), 0, stream, p);
  else
    launch_kernel(embedding_kernel<T, false>, dim3(unsigned(p.num_tokens)), dim3(threads), 0, stream, p);
  return cudaGetLastError();
}

template cudaError_t embedding(const EmbeddingParams<bf16>&, cudaStream_t);
template cudaError_t embedding(const EmbeddingParams<float>&, cudaStream_t);

}  // namespace vela::kernels

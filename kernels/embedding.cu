// Embedding lookup of a (possibly vocab-parallel) table shard: a block per token
// copies its row, or writes zeros for an id outside [vocab_start, vocab_start + rows).
#include "kernels/elementwise.h"
#include "kernels/vec.cuh"

namespace vela::kernels {
namespace {

constexpr int kMaxThreads = 256;

template <bool kVec8>
__global__ void embedding_kernel(EmbeddingParams p) {
  const int64_t t = blockIdx.x;
  const int64_t local = int64_t(p.ids[t]) - p.vocab_start;
  const bool present = local >= 0 && local < p.num_rows;
  const bf16* src = p.table + (present ? local : 0) * p.hidden;
  bf16* dst = p.out + t * p.hidden;
  if constexpr (kVec8) {
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < p.hidden; i += int64_t(blockDim.x) * kVec) {
      if (present)
        copy8(dst + i, src + i);
      else
        *reinterpret_cast<uint4*>(dst + i) = make_uint4(0, 0, 0, 0);
    }
  } else {
    for (int64_t i = threadIdx.x; i < p.hidden; i += blockDim.x) dst[i] = present ? src[i] : __float2bfloat16(0.0f);
  }
}

}  // namespace

cudaError_t embedding(const EmbeddingParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0 || p.hidden == 0) return cudaSuccess;
  const bool vec = vec8_ok({p.table, p.out}, {p.hidden});
  const int threads = threads_for(vec ? p.hidden / kVec : p.hidden, kMaxThreads);
  if (vec)
    embedding_kernel<true><<<unsigned(p.num_tokens), threads, 0, stream>>>(p);
  else
    embedding_kernel<false><<<unsigned(p.num_tokens), threads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace vela::kernels

// Paged attention for the shapes the tuned kernels do not cover (head_dim other than
// 64/128, GQA ratios above 8, block sizes that are not powers of two, unaligned
// views), and every fp32 (model.dtype float32) batch. Correctness over speed: one CTA
// per (query row, query head), keys in chunks of kThreads, a running (max, sum, acc)
// per CTA, all in fp32 whatever the element type T (bf16 or float).
#include <cmath>

#include "kernels/attention.h"
#include "kernels/launch.cuh"
#include "kernels/vec.cuh"

namespace vela::kernels {
namespace {

constexpr int kThreads = 128;
constexpr int kMaxHeadDim = 256;

__device__ float block_reduce(float v, float* scratch, bool is_max) {
  for (int o = 16; o > 0; o >>= 1) {
    float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, other) : v + other;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // scratch may still be read from the previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = scratch[0];
  for (int w = 1; w < kThreads / 32; ++w) v = is_max ? fmaxf(v, scratch[w]) : v + scratch[w];
  return v;
}

template <class T>
__global__ void __launch_bounds__(kThreads) generic_attention_kernel(PagedAttentionParams<T> p) {
  grid_dependency_wait();
  allow_dependents();
  const int t = blockIdx.x, h = blockIdx.y;
  // The sequence of query row t: the last s with query_start_loc[s] <= t.
  int lo = 0, hi = p.num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (p.query_start_loc[mid] <= t) lo = mid; else hi = mid - 1;
  }
  const int s = lo;
  const int q_begin = p.query_start_loc[s], q_len = p.query_start_loc[s + 1] - q_begin;
  if (t - q_begin >= q_len) return;  // a row past the batch's tokens
  const int visible = p.seq_lens[s] - q_len + (t - q_begin) + 1;
  const int hd = p.head_dim, kv_head = h / (p.num_q_heads / p.num_kv_heads);
  const int32_t* table = p.block_tables + int64_t(s) * p.block_table_stride;

  __shared__ float q[kMaxHeadDim];
  __shared__ float probs[kThreads];
  __shared__ float scratch[kThreads / 32];
  for (int d = threadIdx.x; d < hd; d += kThreads)
    q[d] = to_f32(p.q[int64_t(t) * p.q_token_stride + int64_t(h) * hd + d]) * p.scale;
  __syncthreads();

  float running_max = -INFINITY, running_sum = 0.0f;
  float acc[kMaxHeadDim / kThreads] = {};
  auto row = [&](const T* cache, int j) {
    const int64_t block = table[j / p.block_size];
    return cache + ((block * p.block_size + j % p.block_size) * p.num_kv_heads + kv_head) * hd;
  };
  for (int base = 0; base < visible; base += kThreads) {
    const int j = base + threadIdx.x;
    float score = -INFINITY;
    if (j < visible) {
      const T* k = row(p.k_cache, j);
      score = 0.0f;
      for (int d = 0; d < hd; ++d) score += q[d] * to_f32(k[d]);
    }
    const float chunk_max = block_reduce(score, scratch, true);
    const float new_max = fmaxf(running_max, chunk_max);
    const float prob = j < visible ? expf(score - new_max) : 0.0f;
    const float rescale = expf(running_max - new_max);  // 0 on the first chunk
    running_sum = running_sum * rescale + block_reduce(prob, scratch, false);
    running_max = new_max;
    probs[threadIdx.x] = prob;
    __syncthreads();
    const int n = min(kThreads, visible - base);
#pragma unroll
    for (int i = 0; i < kMaxHeadDim / kThreads; ++i) {
      const int d = threadIdx.x + i * kThreads;
      if (d >= hd) continue;
      float a = acc[i] * rescale;
      for (int c = 0; c < n; ++c) a += probs[c] * to_f32(row(p.v_cache, base + c)[d]);
      acc[i] = a;
    }
    __syncthreads();  // probs is rewritten by the next chunk
  }
#pragma unroll
  for (int i = 0; i < kMaxHeadDim / kThreads; ++i) {
    const int d = threadIdx.x + i * kThreads;
    if (d < hd) p.out[int64_t(t) * p.out_token_stride + int64_t(h) * hd + d] = from_f32<T>(acc[i] / running_sum);
  }
}

}  // namespace

template <class T>
bool paged_attention_generic_supports(const PagedAttentionParams<T>& p) {
  return p.head_dim >= 1 && p.head_dim <= kMaxHeadDim && p.num_kv_heads > 0 && p.num_q_heads % p.num_kv_heads == 0 &&
         p.block_size > 0 && p.num_seqs >= 0 && p.num_tokens >= 0 && p.q && p.k_cache && p.v_cache && p.out &&
         p.block_tables && p.query_start_loc && p.seq_lens;
}

template <class T>
cudaError_t paged_attention_generic(const PagedAttentionParams<T>& p, cudaStream_t stream) {
  if (!paged_attention_generic_supports(p)) return cudaErrorInvalidValue;
  if (p.num_seqs == 0 || p.num_tokens == 0) return cudaSuccess;
  launch_kernel(generic_attention_kernel<T>, dim3(unsigned(p.num_tokens), unsigned(p.num_q_heads)), dim3(kThreads), 0, stream, p);
  return cudaGetLastError();
}

template bool paged_attention_generic_supports(const PagedAttentionParams<bf16>&);
template bool paged_attention_generic_supports(const PagedAttentionParams<float>&);
template cudaError_t paged_attention_generic(const PagedAttentionParams<bf16>&, cudaStream_t);
template cudaError_t paged_attention_generic(const PagedAttentionParams<float>&, cudaStream_t);

}  // namespace vela::kernels

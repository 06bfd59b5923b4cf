// The attention block's element-wise prologue in one pass, a block per (token, group
// of up to 8 heads) and a warp per head (one head each: at batch 1 a block that walked
// all 48 heads of an 8B layer in turn was a chain of dependent loads, 7 us): q and k heads get their optional RMSNorm (Qwen3's q/k norm) and
// RoPE in fp32 registers; q goes back in place (attention reads it), k and v go
// straight into their paged-cache slot. Replaces four launches (norm q, norm k,
// rope, cache write) and three passes over q/k, and rounds to bf16 once instead of
// after the norm and again after RoPE. Lane l holds elements [l*E, (l+1)*E) of its
// head (E = head_dim / 32): neox pairs (i, i + hd/2) sit in lanes l and l ^ 16,
// interleaved pairs (2m, 2m+1) inside one lane.
#include "kernels/elementwise.h"
#include "kernels/launch.cuh"
#include "kernels/vec.cuh"

namespace vela::kernels {
namespace {

constexpr int kWarpsPerBlock = 8;

template <int E>
__global__ void qkv_rope_cache_kernel(QkvRopeCacheParams p) {
  grid_dependency_wait();
  allow_dependents();
  constexpr int64_t hd = 32 * E, half = hd / 2;
  const int64_t t = blockIdx.x;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int64_t slot = p.slot_mapping[t];
  const float* cos_row = p.cos_sin + int64_t(p.positions[t]) * hd;
  const float* sin_row = cos_row + half;
  const int64_t nq = p.num_q_heads, nk = p.num_kv_heads, base = int64_t(lane) * E;
  const int64_t cache_row = slot * nk * hd;
  for (int64_t h = int64_t(blockIdx.y) * warps + warp; h < nq + 2 * nk; h += int64_t(warps) * gridDim.y) {  // uniform per warp
    const bool is_q = h < nq, is_k = !is_q && h < nq + nk;
    if (!is_q && slot < 0) continue;  // a token whose KV is not written (padding)
    if (!is_q && !is_k) {
      const int64_t vh = h - nq - nk;
      float x[E];
      load_bf16_pairs<E>(p.v + t * p.v_token_stride + vh * hd + base, x);
      store_bf16_pairs<E>(p.v_cache + cache_row + vh * hd + base, x);
      continue;
    }
    const bf16* src = is_q ? p.q + t * p.q_token_stride + h * hd : p.k + t * p.k_token_stride + (h - nq) * hd;
    float x[E];
    load_bf16_pairs<E>(src + base, x);
    if (const bf16* w = is_q ? p.q_norm : p.k_norm; w != nullptr) {
      float ss = 0.f;
#pragma unroll
      for (int e = 0; e < E; ++e) ss += x[e] * x[e];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
      const float inv = rsqrtf(ss / float(hd) + p.eps);
      float g[E];
      load_bf16_pairs<E>(w + base, g);
#pragma unroll
      for (int e = 0; e < E; ++e) x[e] = g[e] * (x[e] * inv);  // the CPU op's order
    }
    if (p.interleaved) {
#pragma unroll
      for (int e = 0; e < E; e += 2) {
        const int64_t m = (base + e) / 2;
        const float c = cos_row[m], s = sin_row[m], x1 = x[e], x2 = x[e + 1];
        x[e] = x1 * c - x2 * s;
        x[e + 1] = x2 * c + x1 * s;
      }
    } else {
      float other[E];
#pragma unroll
      for (int e = 0; e < E; ++e) other[e] = __shfl_xor_sync(0xffffffffu, x[e], 16);
      const bool first = lane < 16;
#pragma unroll
      for (int e = 0; e < E; ++e) {
        const int64_t m = (base + e) % half;
        const float c = cos_row[m], s = sin_row[m];
        x[e] = first ? x[e] * c - other[e] * s : x[e] * c + other[e] * s;
      }
    }
    bf16* dst = is_q ? const_cast<bf16*>(src) : p.k_cache + cache_row + (h - nq) * hd;
    store_bf16_pairs<E>(dst + base, x);
  }
}

template <int E>
cudaError_t launch(const QkvRopeCacheParams& p, cudaStream_t stream) {
  const int64_t heads = p.num_q_heads + 2 * p.num_kv_heads;
  const int warps = int(heads < kWarpsPerBlock ? heads : kWarpsPerBlock);
  const dim3 grid(unsigned(p.num_tokens), unsigned((heads + warps - 1) / warps));
  launch_kernel(qkv_rope_cache_kernel<E>, dim3(grid), dim3(unsigned(32 * warps)), 0, stream, p);
  return cudaGetLastError();
}

}  // namespace

bool qkv_rope_cache_supported(int64_t head_dim, std::initializer_list<const void*> ptrs,
                              std::initializer_list<int64_t> strides) {
  if (head_dim != 64 && head_dim != 128 && head_dim != 256) return false;
  for (const void* ptr : ptrs)
    if ((reinterpret_cast<uintptr_t>(ptr) & 3u) != 0) return false;  // bf16 pairs
  for (int64_t s : strides)
    if (s % 2 != 0) return false;
  return true;
}

cudaError_t qkv_rope_cache(const QkvRopeCacheParams& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return cudaSuccess;
  switch (p.head_dim) {
    case 64: return launch<2>(p, stream);
    case 128: return launch<4>(p, stream);
    case 256: return launch<8>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace vela::kernels

// Prefill / mixed-batch attention over the paged KV cache (flash-attention 2 style,
// tensor cores through mma.sync m16n8k16 bf16 -> fp32).
//
// prefill_kernel<HD, G>: grid (ceil(max_query_len * G / 64), num_kv_heads, num_seqs),
// 128 threads (4 warps). GQA rows are packed: the CTA's 64 rows are (query i, head g)
// pairs, row R = i * G + g, so one K/V tile in shared memory serves the whole kv-head
// group (a decode row inside a mixed batch is G rows, not one row of a 64-row tile).
// Each warp owns 16 rows. Per 64-key tile: S = Q K^T (Q fragments stay in registers),
// bottom-right causal mask (row of query i sees keys <= seq_len - q_len + i), online
// softmax in fp32, P rounded to bf16 and O += P V. K(t+1) is fetched (cp.async) while
// softmax and P V of tile t run, V(t+1) while S of tile t+1 runs. Tiles past a
// sequence's rows exit at once.
//
// The same kernel is the cascade's shared pass (kShared, launch_shared_prefix): the
// CTA's rows are then (decode row t, head g) pairs of the whole batch, R = t * G + g,
// its keys one split [z * prefix_split_len, ...) of the shared prefix (blockIdx.z is
// the split), no mask (every row sees every shared key), and the result a normalised
// fp32 partial + log2-sum-exp for the combine pass, after the decode splits' rows.
#include <cuda_runtime.h>

#include "kernels/paged_attention_impl.cuh"
#include "kernels/launch.cuh"

namespace vela::kernels::attn {
namespace {

inline constexpr int kTileRows = 64;  // packed (query, head) rows per CTA, 16 per warp
inline constexpr int kTileKeys = 64;  // keys per K/V tile

// Shared tiles are [64][HD] bf16; 16-byte chunk c of row r sits at chunk c ^ (r & 7) so
// that ldmatrix's 8 rows of one chunk column hit 8 different bank groups.
template <int HD>
__device__ __forceinline__ int swz(int r, int c) {
  return r * HD + ((c ^ (r & 7)) << 3);
}

// Copies keys [key0 + t*64, key0 + t*64 + 64) of one kv head into a shared tile
// (zeros from key_end on).
template <int HD>
__device__ __forceinline__ void load_kv_tile(bf16* dst, const bf16* cache, const int32_t* table, int key0, int t,
                                             int key_end, const PagedAttentionParams<bf16>& p, const Plan& plan, int kh) {
  constexpr int kChunks = HD / 8;
  const int64_t slot_stride = int64_t(p.num_kv_heads) * HD;
#pragma unroll
  for (int idx = threadIdx.x; idx < kTileKeys * kChunks; idx += kThreads) {
    const int r = idx / kChunks, c = idx % kChunks;
    const int j = key0 + t * kTileKeys + r;
    const bool valid = j < key_end;
    const bf16* src = cache;
    if (valid) {
      const int64_t slot = int64_t(table[j >> plan.block_shift]) * p.block_size + (j & (p.block_size - 1));
      src = cache + slot * slot_stride + int64_t(kh) * HD + c * 8;
    }
    cp_async16(dst + swz<HD>(r, c), src, valid);
  }
}

// Min CTAs per SM: 3 (hd 128) / 4 (hd 64) fit in registers without spills (ptxas -v:
// 168 / <= 128 registers) and in shared memory (48 / 24 KB each).
template <int HD, int G, bool kShared>
__global__ void __launch_bounds__(kThreads, HD == 128 ? 3 : 4) prefill_kernel(const PagedAttentionParams<bf16> p, const Plan plan) {
  grid_dependency_wait();
  allow_dependents();
  constexpr int kChunks = HD / 8;
  constexpr int kK = HD / 16;   // k-steps of Q K^T
  constexpr int kN = HD / 8;    // n-tiles of the output
  constexpr int kNS = kTileKeys / 8;  // n-tiles of S
  __shared__ __align__(128) bf16 sQ[kTileRows * HD];
  __shared__ __align__(128) bf16 sK[kTileKeys * HD];
  __shared__ __align__(128) bf16 sV[kTileKeys * HD];

  const int kh = blockIdx.y, s = kShared ? 0 : int(blockIdx.z);
  // Prefill: sequence s's chunk of q_len rows after `context` cached keys. Shared pass:
  // every token row of the batch (one per sequence) over the shared keys [k0, k1).
  const int q0 = kShared ? 0 : p.query_start_loc[s];
  const int q_len = kShared ? p.num_tokens : p.query_start_loc[s + 1] - q0;
  const int context = kShared ? 0 : p.seq_lens[s] - q_len;  // cached keys before this chunk
  const int k0 = kShared ? int(blockIdx.z) * plan.prefix_split_len : 0;
  const int k1 = kShared ? min(plan.prefix_len, k0 + plan.prefix_split_len) : p.seq_lens[s];
  const int total_rows = q_len * G;
  const int r0 = blockIdx.x * kTileRows;
  if (r0 >= total_rows || k0 >= k1) return;
  if (!kShared && q_len == 1 && plan.decode_rows_apart) return;  // the decode kernel's row

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // The shared keys' blocks are the same in every row of the table: take row 0's.
  const int32_t* table = p.block_tables + int64_t(s) * p.block_table_stride;

  // Q tile (rows past the chunk are zeros and never stored).
#pragma unroll
  for (int idx = threadIdx.x; idx < kTileRows * kChunks; idx += kThreads) {
    const int r = idx / kChunks, c = idx % kChunks;
    const int R = r0 + r;
    const bool valid = R < total_rows;
    const bf16* src = p.q;
    if (valid)
      src = p.q + int64_t(q0 + R / G) * p.q_token_stride + int64_t(kh * G + R % G) * HD + c * 8;
    cp_async16(sQ + swz<HD>(r, c), src, valid);
  }
  cp_async_commit();

  // Keys this CTA needs: [k0, key_end), up to the last visible key of its last row.
  const int i_hi = min(q_len - 1, (r0 + kTileRows - 1) / G);
  const int key_end = kShared ? k1 : min(k1, context + i_hi + 1);
  const int n_tiles = (key_end - k0 + kTileKeys - 1) / kTileKeys;

  load_kv_tile<HD>(sK, p.k_cache, table, k0, 0, key_end, p, plan, kh);
  cp_async_commit();
  load_kv_tile<HD>(sV, p.v_cache, table, k0, 0, key_end, p, plan, kh);
  cp_async_commit();

  // This thread's two rows (fragment rows lane/4 and lane/4 + 8 of the warp's 16).
  int limit[2];
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int R = r0 + warp * 16 + lane / 4 + rr * 8;
    limit[rr] = R < total_rows && !kShared ? context + R / G : key_end - 1;  // last visible key
  }

  cp_async_wait<1>();  // Q and K(0)
  __syncthreads();
  uint32_t qf[kK][4];
#pragma unroll
  for (int kk = 0; kk < kK; ++kk) ldmatrix_x4(qf[kk], sQ + swz<HD>(warp * 16 + lane % 16, kk * 2 + lane / 16));

  const float qscale = p.scale * kLog2e;
  float o[kN][4];
#pragma unroll
  for (int n = 0; n < kN; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  for (int t = 0; t < n_tiles; ++t) {
    if (t > 0) {
      cp_async_wait<1>();  // K(t); V(t) may still be in flight
      __syncthreads();
    }
    float sc[kNS][4];
#pragma unroll
    for (int n = 0; n < kNS; ++n) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < kK; ++kk) {
#pragma unroll
      for (int np = 0; np < kNS / 2; ++np) {
        const int mi = lane / 8;
        uint32_t b[4];
        ldmatrix_x4(b, sK + swz<HD>(np * 16 + (mi / 2) * 8 + lane % 8, kk * 2 + (mi % 2)));
        mma_bf16_16816(sc[2 * np], qf[kk], b[0], b[1]);
        mma_bf16_16816(sc[2 * np + 1], qf[kk], b[2], b[3]);
      }
    }
    __syncthreads();  // every warp is done with sK
    if (t + 1 < n_tiles) load_kv_tile<HD>(sK, p.k_cache, table, k0, t + 1, key_end, p, plan, kh);
    cp_async_commit();

    // Scale, mask, online softmax (each row's stats are shared by the 4 lanes of a quad).
#pragma unroll
    for (int n = 0; n < kNS; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = k0 + t * kTileKeys + n * 8 + (lane % 4) * 2 + (e & 1);
        sc[n][e] = key <= limit[e / 2] ? sc[n][e] * qscale : -INFINITY;
      }
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      float mx = -INFINITY;
#pragma unroll
      for (int n = 0; n < kNS; ++n) mx = fmaxf(mx, fmaxf(sc[n][2 * rr], sc[n][2 * rr + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[rr], mx);
      const float b = safe_base(m_new);
      const float alpha = exp2f(m[rr] - b);
      m[rr] = m_new;
      float psum = 0.0f;
#pragma unroll
      for (int n = 0; n < kNS; ++n) {
        sc[n][2 * rr] = exp2f(sc[n][2 * rr] - b);
        sc[n][2 * rr + 1] = exp2f(sc[n][2 * rr + 1] - b);
        psum += sc[n][2 * rr] + sc[n][2 * rr + 1];
      }
      l[rr] = l[rr] * alpha + psum;  // this lane's partial; the quad sums at the end
#pragma unroll
      for (int n = 0; n < kN; ++n) {
        o[n][2 * rr] *= alpha;
        o[n][2 * rr + 1] *= alpha;
      }
    }
    uint32_t pf[kTileKeys / 16][4];
#pragma unroll
    for (int kk = 0; kk < kTileKeys / 16; ++kk) {
      pf[kk][0] = pack_bf16x2(sc[2 * kk][0], sc[2 * kk][1]);
      pf[kk][1] = pack_bf16x2(sc[2 * kk][2], sc[2 * kk][3]);
      pf[kk][2] = pack_bf16x2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
      pf[kk][3] = pack_bf16x2(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
    }

    cp_async_wait<1>();  // V(t); K(t+1) may still be in flight
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kTileKeys / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < kN / 2; ++np) {
        const int mi = lane / 8;
        uint32_t b[4];
        ldmatrix_x4_trans(b, sV + swz<HD>(kk * 16 + (mi % 2) * 8 + lane % 8, np * 2 + mi / 2));
        mma_bf16_16816(o[2 * np], pf[kk], b[0], b[1]);
        mma_bf16_16816(o[2 * np + 1], pf[kk], b[2], b[3]);
      }
    }
    __syncthreads();  // every warp is done with sV
    if (t + 1 < n_tiles) load_kv_tile<HD>(sV, p.v_cache, table, k0, t + 1, key_end, p, plan, kh);
    cp_async_commit();
  }
  cp_async_wait<0>();

#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    float lsum = l[rr];
    lsum += __shfl_xor_sync(0xffffffffu, lsum, 1);
    lsum += __shfl_xor_sync(0xffffffffu, lsum, 2);
    const int R = r0 + warp * 16 + lane / 4 + rr * 8;
    if (R >= total_rows) continue;
    const float inv = lsum > 0.0f ? 1.0f / lsum : 0.0f;
    if constexpr (kShared) {
      // Partial row (num_splits + split) * num_tokens + token, as decode_kernel's.
      const int h = kh * G + R % G;
      const int64_t prow = int64_t(plan.num_splits + int(blockIdx.z)) * p.num_tokens + R / G;
      float* acc = plan.partial_acc + (prow * p.num_q_heads + h) * HD + (lane % 4) * 2;
#pragma unroll
      for (int n = 0; n < kN; ++n)
        *reinterpret_cast<float2*>(acc + n * 8) = make_float2(o[n][2 * rr] * inv, o[n][2 * rr + 1] * inv);
      if (lane % 4 == 0) plan.partial_lse[prow * p.num_q_heads + h] = lsum > 0.0f ? m[rr] + log2f(lsum) : -INFINITY;
      continue;
    }
    bf16* dst = p.out + int64_t(q0 + R / G) * p.out_token_stride + int64_t(kh * G + R % G) * HD + (lane % 4) * 2;
#pragma unroll
    for (int n = 0; n < kN; ++n)
      *reinterpret_cast<uint32_t*>(dst + n * 8) = pack_bf16x2(o[n][2 * rr] * inv, o[n][2 * rr + 1] * inv);
  }
}

}  // namespace

template <int HD, int G>
cudaError_t launch_prefill(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream) {
  const int64_t row_tiles = (int64_t(p.max_query_len) * G + kTileRows - 1) / kTileRows;
  dim3 grid(unsigned(row_tiles), unsigned(p.num_kv_heads), unsigned(p.num_seqs));
  launch_kernel(prefill_kernel<HD, G, false>, dim3(grid), dim3(kThreads), 0, stream, p, plan);
  return cudaGetLastError();
}

template <int HD, int G>
cudaError_t launch_shared_prefix(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream) {
  const int64_t row_tiles = (int64_t(p.num_tokens) * G + kTileRows - 1) / kTileRows;
  dim3 grid(unsigned(row_tiles), unsigned(p.num_kv_heads), unsigned(plan.prefix_splits));
  launch_kernel(prefill_kernel<HD, G, true>, dim3(grid), dim3(kThreads), 0, stream, p, plan);
  return cudaGetLastError();
}

#define VELA_PREFILL_ONE(HD, G)                                                                     \
  template cudaError_t launch_prefill<HD, G>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t); \
  template cudaError_t launch_shared_prefix<HD, G>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t);
#define VELA_PREFILL_INSTANTIATE(HD)                                                                   \
  VELA_PREFILL_ONE(HD, 1) VELA_PREFILL_ONE(HD, 2) VELA_PREFILL_ONE(HD, 3) VELA_PREFILL_ONE(HD, 4)      \
  VELA_PREFILL_ONE(HD, 5) VELA_PREFILL_ONE(HD, 6) VELA_PREFILL_ONE(HD, 7) VELA_PREFILL_ONE(HD, 8)
VELA_PREFILL_INSTANTIATE(64)
VELA_PREFILL_INSTANTIATE(128)
#undef VELA_PREFILL_INSTANTIATE
#undef VELA_PREFILL_ONE

}  // namespace vela::kernels::attn

// Prefill / mixed-batch attention over the paged KV cache (flash-attention 2 style,
// bf16 in, fp32 accumulators on the tensor cores). Two instruction paths, one kernel
// body: Hopper's warpgroup MMA (wgmma, kWg: the CTA's 4 warps are one warpgroup, S and
// P V are each one chain of asynchronous m64 wgmmas with Q and P in registers and K / V
// read from shared memory in the 128-byte swizzle layout) on sm_90, and mma.sync
// m16n8k16 per warp (K / V fragments through ldmatrix) elsewhere or with
// VELA_PREFILL_WGMMA=0. The fragments of the two are the same, so everything around
// the MMAs (masking, online softmax, P to bf16, the epilogue) is shared.
//
// prefill_kernel<HD, G>: grid (ceil(max_query_len * G / 64), num_kv_heads, num_seqs),
// 128 threads (4 warps). GQA rows are packed: the CTA's 64 rows are (query i, head g)
// pairs, row R = i * G + g, so one K/V tile in shared memory serves the whole kv-head
// group (a decode row inside a mixed batch is G rows, not one row of a 64-row tile).
// Each warp owns 16 rows. Per 64-key tile: S = Q K^T (Q fragments stay in registers),
// bottom-right causal mask (row of query i sees keys <= seq_len - q_len + i), online
// softmax in fp32, P rounded to bf16 and O += P V. K and V are double-buffered: tile t+2
// is fetched (cp.async, one slot address per key row for both) once P V of tile t is
// done with its buffers, so each fetch has a whole tile's work to land in. Tiles past a
// sequence's rows exit at once.
//
// The same kernel is the cascade's shared pass (kShared, launch_shared_prefix): the
// CTA's rows are then (decode row t, head g) pairs of the whole batch, R = t * G + g,
// its keys one split [z * prefix_split_len, ...) of the shared prefix (blockIdx.z is
// the split), no mask (every row sees every shared key), and the result a normalised
// fp32 partial + log2-sum-exp for the combine pass, after the decode splits' rows.
//
// On sm_90 at head dim 128, prefill launches go to the warp-specialized kernel instead
// (paged_attention_prefill_ws.cu: a TMA producer and two consumer warpgroups sharing
// each tile, 443-497 vs 354-373 TFLOP/s on the H200) unless VELA_PREFILL_WS=0; this
// one keeps the cascade's shared pass (use_ws says why) and every other shape.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/paged_attention_prefill.cuh"
#include "kernels/launch.cuh"
#include "kernels/wgmma.cuh"

namespace vela::kernels::attn {
namespace {

inline constexpr int kTileRows = 64;  // packed (query, head) rows per CTA, 16 per warp
inline constexpr int kTileKeys = 64;  // keys per K/V tile
// K and V tiles each have kStages buffers: tile t + 2 is fetched while tile t + 1 is
// in the MMAs (the round trips of the block table and of the keys hide behind a
// whole tile's work).
inline constexpr int kStages = 2;
static_assert(kTileRows == kTileKeys, "the Q tile borrows a V stage's buffer");

// Dynamic shared memory: kStages K and V tiles of [64][HD] bf16, plus the slack that
// aligns them to 1,024 bytes (a wgmma swizzle atom). 65 KB at head dim 128: 3 CTAs an SM.
template <int HD>
constexpr int prefill_smem_bytes() {
  return 2 * kStages * kTileKeys * HD * int(sizeof(bf16)) + 1024;
}

// This thread's share of a K / V tile copy: the 16-byte chunk c = tid % (HD / 8) of
// rows row0, row0 + kRowStep, ... . Its rows agree mod 8, so the chunk's swizzled place
// moves by a constant from row to row, and one slot address serves the K and the V row.
template <int HD, bool kWg>
struct TileCopy {
  static constexpr int kChunks = HD / 8;
  static constexpr int kRowStep = kThreads / kChunks;  // 8 (hd 128) / 16 (hd 64)
  static constexpr int kRows = kTileKeys / kRowStep;
  static constexpr int kSmemStep = kRowStep * (kWg ? 64 : HD);  // elements between its rows
  int row0;
  int smem_off;  // of (row0, c) in a tile
  int head_off;  // kh * HD + c * 8 in a cache slot row

  __device__ TileCopy(int kh) {
    const int c = int(threadIdx.x) % kChunks;
    row0 = int(threadIdx.x) / kChunks;
    smem_off = kv_off<HD, kTileKeys, kWg>(row0, c);
    head_off = kh * HD + c * 8;
  }

  // Keys [key0, key0 + 64) into the K and V tiles at dk / dv (zeros from key_end on).
  __device__ __forceinline__ void load(bf16* dk, bf16* dv, const PagedAttentionParams<bf16>& p, const int32_t* table,
                                       int block_shift, int key0, int key_end) const {
    const int64_t slot_stride = int64_t(p.num_kv_heads) * HD;
#pragma unroll
    for (int i = 0; i < kRows; ++i) {
      const int j = key0 + row0 + i * kRowStep;
      const bool valid = j < key_end;
      int64_t off = 0;
      if (valid) off = (int64_t(table[j >> block_shift]) * p.block_size + (j & (p.block_size - 1))) * slot_stride + head_off;
      cp_async16(dk + smem_off + i * kSmemStep, p.k_cache + off, valid);
      cp_async16(dv + smem_off + i * kSmemStep, p.v_cache + off, valid);
    }
  }
};

// Shared tiles written by cp.async, read by this CTA's MMAs: wait for this thread's
// groups but the newest N, make them visible to wgmma's async proxy, then a barrier.
template <int N, bool kWg>
__device__ __forceinline__ void tile_ready() {
  cp_async_wait<N>();
  if constexpr (kWg) wg::fence_async_shared();
  __syncthreads();
}

// Min CTAs per SM: 3 (hd 128) / 4 (hd 64) fit in registers without spills (ptxas -v:
// 168 / <= 128 registers) and in shared memory (65 / 33 KB each).
template <int HD, int G, bool kShared, bool kWg>
__global__ void __launch_bounds__(kThreads, HD == 128 ? 3 : 4) prefill_kernel(const PagedAttentionParams<bf16> p, const Plan plan) {
  grid_dependency_wait();
  allow_dependents();
  constexpr int kK = HD / 16;   // k-steps of Q K^T
  constexpr int kN = HD / 8;    // n-tiles of the output
  constexpr int kNS = kTileKeys / 8;  // n-tiles of S
  constexpr int kTile = kTileKeys * HD;  // elements of one K / V tile
  extern __shared__ unsigned char smem_raw[];
  bf16* const sK = reinterpret_cast<bf16*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  bf16* const sV = sK + kStages * kTile;
  // The Q tile sits in V's last stage until its fragments are in registers (before
  // KV(1) is fetched there).
  bf16* const sQ = sV + (kStages - 1) * kTile;

  const int kh = blockIdx.y, s = kShared ? 0 : int(blockIdx.z);
  const PrefillWork wk = prefill_work<kShared>(p, plan, s, int(blockIdx.z));
  const int q0 = wk.q0, q_len = wk.q_len, context = wk.context, k0 = wk.k0, k1 = wk.k1;
  const int total_rows = q_len * G;
  const int r0 = blockIdx.x * kTileRows;
  if (r0 >= total_rows || k0 >= k1) return;
  if (!kShared && q_len == 1 && plan.decode_rows_apart) return;  // the decode kernel's row

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // The shared keys' blocks are the same in every row of the table: take row 0's.
  const int32_t* table = p.block_tables + int64_t(s) * p.block_table_stride;

  // Q tile (rows past the chunk are zeros and never stored).
  load_q_tile<HD, G>(sQ, p, q0, kh, r0, total_rows, int(threadIdx.x));
  cp_async_commit();

  // Keys this CTA needs: [k0, key_end), up to the last visible key of its last row.
  const int i_hi = min(q_len - 1, (r0 + kTileRows - 1) / G);
  const int key_end = kShared ? k1 : min(k1, context + i_hi + 1);
  const int n_tiles = (key_end - k0 + kTileKeys - 1) / kTileKeys;

  // cp.async groups in commit order: Q, KV(0), KV(1), then KV(t + 2) at the end of
  // iteration t (empty past the last tile), so KV(t) is complete once at most one
  // newer group is pending.
  const TileCopy<HD, kWg> copy(kh);
  copy.load(sK, sV, p, table, plan.block_shift, k0, key_end);
  cp_async_commit();

  // This thread's two rows (fragment rows lane/4 and lane/4 + 8 of the warp's 16).
  int limit[2];
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int R = r0 + warp * 16 + lane / 4 + rr * 8;
    limit[rr] = R < total_rows && !kShared ? context + R / G : key_end - 1;  // last visible key
  }
  // Keys up to mask_from are visible to every row of the CTA: tiles before it skip the
  // mask (the CTA's first row sees the fewest keys; zero-filled keys past key_end are
  // masked like the future ones).
  const int mask_from = kShared ? key_end - 1 : min(context + r0 / G, key_end - 1);

  cp_async_wait<1>();  // Q (read by ldmatrix: the generic proxy, no fence)
  __syncthreads();
  uint32_t qf[kK][4];
  q_fragments<HD>(qf, sQ, warp, lane);
  __syncthreads();  // every warp holds its Q fragments: KV(1) may take the buffer
  if (n_tiles > 1) copy.load(sK + kTile, sV + kTile, p, table, plan.block_shift, k0 + kTileKeys, key_end);
  cp_async_commit();
  // wgmma descriptors of stage 0's K and V tiles; the other stages and k-steps are
  // constant byte offsets (>> 4) from them.
  [[maybe_unused]] const uint64_t desc_k0 = wg::desc_sw128(sK, 16, 1024);
  [[maybe_unused]] const uint64_t desc_v0 = wg::desc_sw128(sV, kTileKeys * 64 * 2, 1024);

  const float qscale = p.scale * kLog2e;
  float o[kN][4];
#pragma unroll
  for (int n = 0; n < kN; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  for (int t = 0; t < n_tiles; ++t) {
    const int stage = t % kStages;
    bf16* const sKt = sK + stage * kTile;
    bf16* const sVt = sV + stage * kTile;
    tile_ready<1, kWg>();  // KV(t); KV(t + 1) may still be in flight
    float sc[kNS][4];
#pragma unroll
    for (int n = 0; n < kNS; ++n) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
    if constexpr (kWg) {
      // S (64 rows x 64 keys) = Q K^T: HD / 16 wgmmas, K-major B; k-step kk reads 32
      // bytes of each key row in column block kk / 4.
      wg::fence_operand(sc);
      wg::fence();
#pragma unroll
      for (int kk = 0; kk < kK; ++kk)
        wg::mma_m64n64k16_rs<0>(sc, qf[kk], desc_k0 + uint64_t((stage * kTile + (kk / 4) * kTileKeys * 64 + (kk % 4) * 16) * 2 / 16));
      wg::commit();
      wg::wait<0>();
      wg::fence_operand(sc);
    } else {
#pragma unroll
      for (int kk = 0; kk < kK; ++kk) {
#pragma unroll
        for (int np = 0; np < kNS / 2; ++np) {
          const int mi = lane / 8;
          uint32_t b[4];
          ldmatrix_x4(b, sKt + swz<HD>(np * 16 + (mi / 2) * 8 + lane % 8, kk * 2 + (mi % 2)));
          mma_bf16_16816(sc[2 * np], qf[kk], b[0], b[1]);
          mma_bf16_16816(sc[2 * np + 1], qf[kk], b[2], b[3]);
        }
      }
    }

    // Mask (only tiles reaching past mask_from) the raw scores, then the online softmax.
    uint32_t pf[kTileKeys / 16][4];
    softmax_tile(sc, o, m, l, pf, k0 + t * kTileKeys + kTileKeys - 1 > mask_from, k0 + t * kTileKeys, limit, qscale,
                 lane);

    if constexpr (kWg) {
      // O (64 rows x HD) += P V: 4 wgmmas, MN-major B; k-step kk is key rows
      // 16kk..16kk+15 (two 8-row groups, 1,024 bytes apart), the column blocks 8 KB apart.
      wg::fence_operand(o);
      wg::fence();
#pragma unroll
      for (int kk = 0; kk < kTileKeys / 16; ++kk) {
        const uint64_t desc = desc_v0 + uint64_t((stage * kTile + kk * 16 * 64) * 2 / 16);
        if constexpr (HD == 128) wg::mma_m64n128k16_rs<1>(o, pf[kk], desc);
        else wg::mma_m64n64k16_rs<1>(o, pf[kk], desc);
      }
      wg::commit();
      wg::wait<0>();
      wg::fence_operand(o);
    } else {
#pragma unroll
      for (int kk = 0; kk < kTileKeys / 16; ++kk) {
#pragma unroll
        for (int np = 0; np < kN / 2; ++np) {
          const int mi = lane / 8;
          uint32_t b[4];
          ldmatrix_x4_trans(b, sVt + swz<HD>(kk * 16 + (mi % 2) * 8 + lane % 8, np * 2 + mi / 2));
          mma_bf16_16816(o[2 * np], pf[kk], b[0], b[1]);
          mma_bf16_16816(o[2 * np + 1], pf[kk], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with KV(t)'s buffers
    if (t + kStages < n_tiles)
      copy.load(sKt, sVt, p, table, plan.block_shift, k0 + (t + kStages) * kTileKeys, key_end);
    cp_async_commit();
  }
  cp_async_wait<0>();

  store_rows<HD, G, kShared>(p, plan, o, m, l, r0 + warp * 16, total_rows, q0, kh, int(blockIdx.z), lane);
}

// wgmma when the device is sm_90 (the instructions are sm_90a's) and neither the
// params nor VELA_PREFILL_WGMMA=0 ask for mma.sync. Device and environment are read
// once per process (one device per worker). Head dim 64 takes wgmma only when pinned
// (PrefillKernel::kWgmma): its kernel failed the CPU reference check on the H200 in
// short-context batches while head dim 128 passed every one (docs/PERF_NOTES.md), so
// kAuto keeps it on mma.sync until that is understood.
template <int HD>
bool use_wgmma(const PagedAttentionParams<bf16>& p) {
  if (p.prefill_kernel == PrefillKernel::kMmaSync || device_major() != 9) return false;
  if (p.prefill_kernel == PrefillKernel::kWgmma) return true;
  if (HD != 128) return false;
  if (p.prefill_kernel != PrefillKernel::kAuto) return true;  // a kWarpSpecialized the launch does not support
  static const bool env_off = [] {
    const char* v = std::getenv("VELA_PREFILL_WGMMA");
    return v != nullptr && std::strcmp(v, "0") == 0;
  }();
  return !env_off;
}

// The kernel's dynamic shared memory is over the 48 KB default (launch.cuh).
template <int HD, int G, bool kShared, bool kWg>
cudaError_t launch_one(dim3 grid, const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream,
                       const LaunchOpts& opts) {
  if (auto e = allow_dynamic_smem<prefill_kernel<HD, G, kShared, kWg>>(prefill_smem_bytes<HD>()); e != cudaSuccess)
    return e;
  launch_kernel_opts(prefill_kernel<HD, G, kShared, kWg>, grid, dim3(kThreads), prefill_smem_bytes<HD>(), stream, opts,
                     p, plan);
  return cudaGetLastError();
}

}  // namespace

// Whether the warp-specialized kernel runs: pinned, or kAuto at head dim 128 on sm_90
// where the cache allows TMA, for prefill unless VELA_PREFILL_WS=0, for the cascade's
// shared pass only with VELA_SHARED_WS=1 (its CTA of 161 KB fits no SM beside an
// own-key pass CTA on the side stream, where the one-warpgroup kernel's 65 KB does:
// P1 41.4% vs 40.5% of the bound with it, twelfth session).
template <int HD>
bool use_ws(const PagedAttentionParams<bf16>& p, bool shared) {
  if (HD != 128 || !prefill_ws_supported(p)) return false;
  if (p.prefill_kernel == PrefillKernel::kWarpSpecialized) return true;
  if (p.prefill_kernel != PrefillKernel::kAuto) return false;
  static const bool prefill_on = [] {
    const char* v = std::getenv("VELA_PREFILL_WS");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  static const bool shared_on = [] {
    const char* v = std::getenv("VELA_SHARED_WS");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return shared ? shared_on : prefill_on;
}

template <int HD, int G>
cudaError_t launch_prefill(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream) {
  if constexpr (HD == 128) {
    if (use_ws<HD>(p, false)) return launch_prefill_ws<G>(p, plan, stream, false, LaunchOpts{});
  }
  const int64_t row_tiles = (int64_t(p.max_query_len) * G + kTileRows - 1) / kTileRows;
  dim3 grid(unsigned(row_tiles), unsigned(p.num_kv_heads), unsigned(p.num_seqs));
  return use_wgmma<HD>(p) ? launch_one<HD, G, false, true>(grid, p, plan, stream, LaunchOpts{})
                          : launch_one<HD, G, false, false>(grid, p, plan, stream, LaunchOpts{});
}

template <int HD, int G>
cudaError_t launch_shared_prefix(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream,
                                 bool side) {
  // On the side stream: at its priority, and without PDL (its predecessor there is the
  // last layer's pass; what it waits for is the fork).
  LaunchOpts opts;
  if (side) {
    opts.pdl = false;
    opts.priority = p.side_priority;
  }
  if constexpr (HD == 128) {
    if (use_ws<HD>(p, true)) return launch_prefill_ws<G>(p, plan, stream, true, opts);
  }
  const int64_t row_tiles = (int64_t(p.num_tokens) * G + kTileRows - 1) / kTileRows;
  dim3 grid(unsigned(row_tiles), unsigned(p.num_kv_heads), unsigned(plan.prefix_splits));
  return use_wgmma<HD>(p) ? launch_one<HD, G, true, true>(grid, p, plan, stream, opts)
                          : launch_one<HD, G, true, false>(grid, p, plan, stream, opts);
}

#define VELA_PREFILL_ONE(HD, G)                                                                     \
  template cudaError_t launch_prefill<HD, G>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t); \
  template cudaError_t launch_shared_prefix<HD, G>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t, bool);
#define VELA_PREFILL_INSTANTIATE(HD)                                                                   \
  VELA_PREFILL_ONE(HD, 1) VELA_PREFILL_ONE(HD, 2) VELA_PREFILL_ONE(HD, 3) VELA_PREFILL_ONE(HD, 4)      \
  VELA_PREFILL_ONE(HD, 5) VELA_PREFILL_ONE(HD, 6) VELA_PREFILL_ONE(HD, 7) VELA_PREFILL_ONE(HD, 8)
VELA_PREFILL_INSTANTIATE(64)
VELA_PREFILL_INSTANTIATE(128)
#undef VELA_PREFILL_INSTANTIATE
#undef VELA_PREFILL_ONE

}  // namespace vela::kernels::attn

// Prefill / mixed-batch attention, warp-specialized for Hopper (sm_90a, head dim 128):
// the structure of FlashAttention-3's forward kernel on Vela's paged cache.
//
// A CTA is three warpgroups over 128 packed (query, head) rows (R = i * G + g, as in
// paged_attention_prefill.cu): warpgroup 0 is the producer, one thread of which walks
// the block table and loads each K / V tile of 64 keys with TMA (one box per cache
// block of up to 64 keys and per 64 head dims, straight into wgmma's 128-byte swizzle
// layout), completing on the stage's `full` mbarrier; warpgroups 1 and 2 are the
// consumers, 64 rows each, which wait on `full`, run S = Q K^T, the online softmax and
// O += P V on their rows (wgmma, Q and P from registers) and release the stage on its
// `empty` mbarrier (one arrival per warp). So one K / V tile in shared memory serves
// 128 rows instead of 64, no consumer thread computes a load address or waits at a
// block-wide barrier, four stages are in flight, and the producer hands its registers
// to the consumers (setmaxnreg 40 / 232). On the H200 it runs prefill at 443-512
// TFLOP/s where the one-warpgroup kernel runs 354-373 (docs/PERF_NOTES.md).
//
// Keys past the CTA's last visible key: boxes wholly past it load from a row
// coordinate before the tensor (TMA fills zeros); the rest of a partial block is
// whatever the cache holds there (never written, possibly not finite), so K's are
// masked to -inf and V's rows are zeroed in shared memory before P V reads them (0 x
// NaN would otherwise poison the row).
//
// The same kernel serves the cascade's shared pass (kShared), as the one-warpgroup
// kernel does; paged_attention_prefill.cu says when each is taken.
#include <cuda.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/launch.cuh"
#include "kernels/paged_attention_prefill.cuh"
#include "kernels/tma.cuh"
#include "kernels/wgmma.cuh"

namespace vela::kernels::attn {
namespace {

constexpr int kHD = 128;            // the one head dim compiled
constexpr int kWsThreads = 384;     // producer warpgroup + two consumer warpgroups
constexpr int kWsRows = 128;        // packed rows a CTA: 64 per consumer warpgroup
constexpr int kBoxKeys = 64;        // keys of one TMA box at most (a block may be shorter)
constexpr int kProducerRegs = 40;   // 128 x 40 + 256 x 232 <= 65,536
constexpr int kConsumerRegs = 232;

// 64-key K / V tiles in four stages (a 128-key variant, one pipelining the next
// tile's S with this one's P V, and one where the two consumers take turns at the
// tensor cores were each no faster on the H200: docs/PERF_NOTES.md, twelfth session).
constexpr int kKeys = 64;
struct C {
  static constexpr int kStages = 4;
  static constexpr int kTile = kKeys * kHD;     // elements of one K or V tile
  static constexpr int kTileBytes = kTile * 2;  // 16 KB
  static constexpr int kQ = kWsRows * kHD;      // elements of the Q tile
  static constexpr int kSmemBytes = 1024 + 2 * kQ + 2 * kStages * kTileBytes;  // + 1,024-alignment slack: 161 KB
  static_assert(kSmemBytes + 64 <= 227 * 1024, "over sm_90's shared memory per block");
};

template <int G, bool kShared>
__global__ void __launch_bounds__(kWsThreads, 1)
    prefill_ws_kernel(const PagedAttentionParams<bf16> p, const Plan plan, const __grid_constant__ CUtensorMap kmap,
                      const __grid_constant__ CUtensorMap vmap) {
  constexpr int kStages = C::kStages;
  constexpr int kTile = C::kTile;
  constexpr int kK = kHD / 16;       // k-steps of Q K^T
  constexpr int kN = kHD / 8;        // n-tiles of the output
  constexpr int kNS = kKeys / 8;     // n-tiles of S
  grid_dependency_wait();
  allow_dependents();
  extern __shared__ unsigned char smem_raw[];
  bf16* const sQ = reinterpret_cast<bf16*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  bf16* const sK = sQ + C::kQ;
  bf16* const sV = sK + kStages * kTile;
  __shared__ __align__(8) uint64_t full[kStages], empty[kStages];

  const int kh = blockIdx.y, s = kShared ? 0 : int(blockIdx.z);
  const PrefillWork wk = prefill_work<kShared>(p, plan, s, int(blockIdx.z));
  const int total_rows = wk.q_len * G;
  const int r0 = blockIdx.x * kWsRows;
  if (r0 >= total_rows || wk.k0 >= wk.k1) return;
  if (!kShared && wk.q_len == 1 && plan.decode_rows_apart) return;  // the decode kernel's row
  // Keys this CTA needs: [k0, key_end), up to the last visible key of its last row.
  const int i_hi = min(wk.q_len - 1, (r0 + kWsRows - 1) / G);
  const int key_end = kShared ? wk.k1 : min(wk.k1, wk.context + i_hi + 1);
  const int n_tiles = (key_end - wk.k0 + kKeys - 1) / kKeys;

  const int tid = int(threadIdx.x);
  if (tid == 0) {
    for (int st = 0; st < kStages; ++st) {
      tma::mbar_init(&full[st], 1);
      tma::mbar_init(&empty[st], 8);  // one arrival per consumer warp
    }
    tma::mbar_init_fence();
  }
  __syncthreads();

  if (tid < 128) {  // the producer warpgroup: one thread issues every load
    wg::reg_dealloc<kProducerRegs>();
    if (tid != 0) return;
    tma::prefetch_map(&kmap);
    tma::prefetch_map(&vmap);
    // The shared keys' blocks are the same in every row of the table: take row 0's.
    const int32_t* table = p.block_tables + int64_t(s) * p.block_table_stride;
    const int box = min(p.block_size, kBoxKeys), boxes = kKeys / box;
    const int bmask = p.block_size - 1;
    for (int t = 0; t < n_tiles; ++t) {
      const int st = t % kStages;
      if (t >= kStages) tma::mbar_wait(&empty[st], uint32_t((t / kStages - 1) & 1));
      tma::mbar_arrive_expect_tx(&full[st], 2 * C::kTileBytes);
      bf16* const dk = sK + st * kTile;
      bf16* const dv = sV + st * kTile;
      const int key0 = wk.k0 + t * kKeys;
      for (int b = 0; b < boxes; ++b) {
        const int key = key0 + b * box;
        // A box wholly past the keys reads rows before the tensor: zeros.
        const int32_t row = key < key_end ? table[key >> plan.block_shift] * p.block_size + (key & bmask) : -box;
#pragma unroll
        for (int cb = 0; cb < kHD / 64; ++cb) {
          const int off = kv_off<kHD, kKeys, true>(b * box, cb * 8);  // box rows start at multiples of 8
          tma::load_box(dk + off, &kmap, &full[st], kh * kHD + cb * 64, row);
          tma::load_box(dv + off, &vmap, &full[st], kh * kHD + cb * 64, row);
        }
      }
    }
    return;
  }

  wg::reg_alloc<kConsumerRegs>();
  const int w = tid / 128 - 1;  // consumer warpgroup 0 / 1
  const int wtid = tid % 128, warp = wtid / 32, lane = tid % 32;
  const int rw0 = r0 + w * 64;  // this warpgroup's first row
  bf16* const sQw = sQ + w * 64 * kHD;
  load_q_tile<kHD, G>(sQw, p, wk.q0, kh, rw0, total_rows, wtid);
  cp_async_commit();

  // This thread's two rows (fragment rows lane/4 and lane/4 + 8 of the warp's 16).
  int limit[2];
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int R = rw0 + warp * 16 + lane / 4 + rr * 8;
    limit[rr] = R < total_rows && !kShared ? wk.context + R / G : key_end - 1;  // last visible key
  }
  // Keys up to mask_from are visible to every row of the warpgroup: tiles before it
  // skip the mask.
  const int mask_from = kShared ? key_end - 1 : min(wk.context + rw0 / G, key_end - 1);

  cp_async_wait<0>();  // Q (read by ldmatrix: the generic proxy, no fence)
  wg::named_barrier(1 + w, 128);
  uint32_t qf[kK][4];
  q_fragments<kHD>(qf, sQw, warp, lane);

  // wgmma descriptors of stage 0's K and V tiles; the other stages and k-steps are
  // constant byte offsets (>> 4) from them.
  const uint64_t desc_k0 = wg::desc_sw128(sK, 16, 1024);
  const uint64_t desc_v0 = wg::desc_sw128(sV, kKeys * 64 * 2, 1024);
  const float qscale = p.scale * kLog2e;
  float o[kN][4];
#pragma unroll
  for (int n = 0; n < kN; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  // Waits for tile t's stage; in the last tile, V's rows past the keys go to zeros
  // (both warpgroups write the same zeros), made visible to this warpgroup's wgmma.
  auto tile_ready = [&](int t) {
    const int st = t % kStages, key0 = wk.k0 + t * kKeys;
    tma::mbar_wait(&full[st], uint32_t((t / kStages) & 1));
    if (key0 + kKeys > key_end) {
      bf16* const v = sV + st * kTile;
      for (int idx = wtid; idx < (key0 + kKeys - key_end) * (kHD / 8); idx += 128) {
        const int r = key_end - key0 + idx / (kHD / 8), c = idx % (kHD / 8);
        *reinterpret_cast<uint4*>(v + kv_off<kHD, kKeys, true>(r, c)) = make_uint4(0, 0, 0, 0);
      }
      wg::fence_async_shared();
      wg::named_barrier(1 + w, 128);
    }
  };
  // S (64 rows x kKeys) = Q K^T of tile t into sc (zeroed here): HD / 16 wgmmas, K-major
  // B; k-step kk reads 32 bytes of each key row in column block kk / 4. Issued only:
  // the caller commits and waits.
  float sc[kNS][4];
  auto issue_s = [&](int t) {
    const int st = t % kStages;
#pragma unroll
    for (int n = 0; n < kNS; ++n) sc[n][0] = sc[n][1] = sc[n][2] = sc[n][3] = 0.0f;
    wg::fence_operand(sc);
    wg::fence();
#pragma unroll
    for (int kk = 0; kk < kK; ++kk) {
      const uint64_t desc = desc_k0 + uint64_t((st * kTile + (kk / 4) * kKeys * 64 + (kk % 4) * 16) * 2 / 16);
      wg::mma_m64n64k16_rs<0>(sc, qf[kk], desc);
    }
  };
  // O (64 rows x HD) += P V of tile t: kKeys / 16 wgmmas, MN-major B; k-step kk is key
  // rows 16kk..16kk+15 (two 8-row groups, 1,024 bytes apart), the column blocks kKeys x
  // 128 bytes apart. Issued only, like issue_s.
  uint32_t pf[kKeys / 16][4];
  auto issue_pv = [&](int t) {
    const int st = t % kStages;
    wg::fence_operand(o);
    wg::fence();
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk)
      wg::mma_m64n128k16_rs<1>(o, pf[kk], desc_v0 + uint64_t((st * kTile + kk * 16 * 64) * 2 / 16));
  };
  auto release = [&](int t) {
    __syncwarp();
    if (lane == 0) tma::mbar_arrive(&empty[t % kStages]);  // this warp is done with the stage
  };

  for (int t = 0; t < n_tiles; ++t) {
    tile_ready(t);
    issue_s(t);
    wg::commit();
    wg::wait<0>();
    wg::fence_operand(sc);
    const int key0 = wk.k0 + t * kKeys;
    softmax_tile(sc, o, m, l, pf, key0 + kKeys - 1 > mask_from, key0, limit, qscale, lane);
    issue_pv(t);
    wg::commit();
    wg::wait<0>();
    wg::fence_operand(o);
    release(t);
  }

  store_rows<kHD, G, kShared>(p, plan, o, m, l, rw0 + warp * 16, total_rows, wk.q0, kh, int(blockIdx.z), lane);
}

template <int G, bool kShared>
cudaError_t launch_ws_one(dim3 grid, const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream,
                          const LaunchOpts& opts, const CUtensorMap& kmap, const CUtensorMap& vmap) {
  constexpr auto kernel = prefill_ws_kernel<G, kShared>;
  if (auto e = allow_dynamic_smem<kernel>(C::kSmemBytes); e != cudaSuccess) return e;
  if (auto e = launch_kernel_opts(kernel, grid, dim3(kWsThreads), C::kSmemBytes, stream, opts, p, plan, kmap, vmap);
      e != cudaSuccess)
    return e;
  return cudaGetLastError();
}

}  // namespace

bool prefill_ws_supported(const PagedAttentionParams<bf16>& p) {
  // TMA: the cache's rows (nk x 128 bf16) a multiple of 16 bytes apart (always), boxes
  // of whole cache blocks of >= 16 keys, and the cache's size for the tensor map.
  return p.head_dim == kHD && p.num_blocks > 0 && p.block_size >= 16 && device_major() == 9 &&
         int64_t(p.num_blocks) * p.block_size < (int64_t(1) << 31);
}

template <int G>
cudaError_t launch_prefill_ws(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream, bool shared,
                              const LaunchOpts& opts) {
  if (!prefill_ws_supported(p)) return cudaErrorNotSupported;
  CUtensorMap kmap, vmap;
  const int64_t rows = int64_t(p.num_blocks) * p.block_size, cols = int64_t(p.num_kv_heads) * kHD;
  const uint32_t box = uint32_t(std::min(p.block_size, kBoxKeys));
  if (!tma::encode_rows_sw128(&kmap, p.k_cache, rows, cols, cols, box) ||
      !tma::encode_rows_sw128(&vmap, p.v_cache, rows, cols, cols, box))
    return cudaErrorNotSupported;
  const int64_t q_rows = int64_t(shared ? p.num_tokens : p.max_query_len) * G;
  const dim3 grid(unsigned((q_rows + kWsRows - 1) / kWsRows), unsigned(p.num_kv_heads),
                  unsigned(shared ? plan.prefix_splits : p.num_seqs));
  return shared ? launch_ws_one<G, true>(grid, p, plan, stream, opts, kmap, vmap)
                : launch_ws_one<G, false>(grid, p, plan, stream, opts, kmap, vmap);
}

#define VELA_PREFILL_WS_ONE(G)                                                                                     \
  template cudaError_t launch_prefill_ws<G>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t, bool, \
                                            const LaunchOpts&);
VELA_PREFILL_WS_ONE(1)
VELA_PREFILL_WS_ONE(2)
VELA_PREFILL_WS_ONE(3)
VELA_PREFILL_WS_ONE(4)
VELA_PREFILL_WS_ONE(5)
VELA_PREFILL_WS_ONE(6)
VELA_PREFILL_WS_ONE(7)
VELA_PREFILL_WS_ONE(8)
#undef VELA_PREFILL_WS_ONE

}  // namespace vela::kernels::attn

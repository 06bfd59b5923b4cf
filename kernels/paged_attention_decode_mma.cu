// Decode attention on tensor cores (mma.sync m16n8k16 bf16 -> fp32) for GQA groups
// of 3..8 query heads per kv head, where the CUDA-core decode kernel runs out of
// registers and issue slots (G = 4, hd 128: 130 registers -> 3 CTAs per SM, and ~70
// warp instructions per key; docs/PERF_NOTES.md, 2026-12-02).
//
// decode_mma_kernel<HD, G>: grid (num_splits, num_kv_heads, num_seqs), 128 threads,
// the same CTA -> (split, kv head, sequence) map, key ranges and output (direct, or
// partial + log2-sum-exp for combine_kernel) as decode_kernel, so the plan and the
// graph-bounded per-sequence splits apply unchanged. The G query heads are the rows
// of one m16 A tile (rows G..15 zero; rows 8..15 never used), kept in registers.
// Each warp owns every fourth 16-key chunk of the CTA's range and runs its own
// cp.async pipeline of kStages chunks in warp-private shared memory (no CTA barrier
// until the end): per chunk S = Q K^T (HD/16 ldmatrix + HD/8 mma), online softmax
// on the row-g fragment, P (bf16) V (HD/16 ldmatrix.trans + HD/8 mma), i.e. ~7 warp
// instructions per key instead of ~70. The four warps' (m, l, O) merge through shared
// memory at the end.
#include <cuda_runtime.h>

#include <cstdlib>

#include "kernels/paged_attention_impl.cuh"
#include "kernels/launch.cuh"

namespace vela::kernels::attn {
namespace {

inline constexpr int kChunkKeys = 16;  // keys per warp step (one m16n8k16 k-step of P V)
inline constexpr int kWarps = kThreads / 32;

// Chunks in flight per warp: 3 stages x 8 KB (hd 128) x 4 warps = 96 KB per CTA,
// 2 CTAs per SM; up to 2 chunks (16 KB) per warp in flight while one is computed.
// Beside the cascade's shared pass (on the side stream) head dim 128 takes 2 stages:
// 64 KB a CTA, so two own-key CTAs and a shared-pass CTA (65 KB) fit an SM together;
// with 3, the shared pass found room only where an own-key CTA had left. Measured on
// the H200 (PERF_NOTES, thirteenth session): P1 +3.7% with 2 (graph steps 3.18-3.21
// vs 3.25-3.28 ms), while alone 3 stages stream faster (batch 64 at 4k keys: 104% vs
// 90% of copy) and W1 lost 1% with 2. VELA_DECODE_MMA_STAGES=2 / 3 pins either.
template <int HD>
inline constexpr int kDefaultMmaStages = HD == 128 ? 3 : 4;

template <int HD, int kS>
struct MmaDecodeCfg {
  static constexpr int kStages = kS;
  static constexpr int kChunkElems = kChunkKeys * HD;  // one K (or V) chunk, bf16
  static constexpr int kStageElems = 2 * kChunkElems;  // K then V
  static constexpr int kWarpElems = kStages * kStageElems;
  static constexpr size_t kPipeBytes = size_t(kWarps) * kWarpElems * sizeof(bf16);
  static constexpr size_t kMergeBytes = size_t(kWarps) * 8 * HD * sizeof(float);  // O rows 0..7 per warp
  static constexpr size_t kSmemBytes = kPipeBytes > kMergeBytes ? kPipeBytes : kMergeBytes;
};

// 16-byte chunk c of row r of a [16][HD] tile sits at chunk c ^ (r & 7): ldmatrix's 8
// rows of one chunk column then hit 8 different bank groups.
template <int HD>
__device__ __forceinline__ int swz(int r, int c) {
  return r * HD + ((c ^ (r & 7)) << 3);
}

// early_kv: the first S - 1 chunks of each warp are issued before the wait for the
// kernel before (launch.cuh's PDL), while that kernel (the qkv projection or the
// attention prologue) still runs: it writes only each sequence's newest key, whose
// K / V rows are skipped then and loaded after the wait; the kernels before it are
// complete by the time this one can start (each allows its dependents only after
// its own wait). q is read after the wait.
template <int HD, int G, int kS>
__global__ void __launch_bounds__(kThreads) decode_mma_kernel(const PagedAttentionParams<bf16> p, const Plan plan,
                                                              const bool early_kv) {
  if (!early_kv) {
    grid_dependency_wait();
    allow_dependents();
  }
  static_assert(G >= 1 && G <= 8, "query rows live in fragment rows 0..7");
  using C = MmaDecodeCfg<HD, kS>;
  constexpr int S = C::kStages;
  constexpr int kChunks = HD / 8;          // 16-byte pieces per row
  constexpr int kRowsPerCopy = 32 / kChunks;  // rows one warp-wide cp.async covers
  constexpr int kCopies = kChunkKeys / kRowsPerCopy;
  constexpr int kK = HD / 16;  // k-steps of Q K^T
  constexpr int kN = HD / 8;   // n-tiles of O
  extern __shared__ __align__(128) unsigned char smem_raw[];
  __shared__ float s_m[kWarps][8], s_l[kWarps][8];

  const int split = blockIdx.x, kh = blockIdx.y, s = blockIdx.z;
  const int row = p.query_start_loc[s];
  if (p.query_start_loc[s + 1] - row != 1) return;  // an empty (padding) sequence
  const DecodeKeys keys = decode_keys(plan, split, int(gridDim.x), p.seq_lens[s], prefix_keys(plan).len);
  if (keys.skip) return;
  const int k_begin = keys.begin, k_end = keys.end;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int fr = lane / 4, fc = lane % 4;  // fragment row (query head) and column pair
  bf16* pipe = reinterpret_cast<bf16*>(smem_raw) + warp * C::kWarpElems;

  const int32_t* table = p.block_tables + int64_t(s) * p.block_table_stride;
  const int bs_mask = p.block_size - 1;
  const int64_t slot_stride = int64_t(p.num_kv_heads) * HD;
  const int64_t head_off = int64_t(kh) * HD;
  const int n_chunks = (k_end - k_begin + kChunkKeys - 1) / kChunkKeys;
  const int n_iter = n_chunks > warp ? (n_chunks - warp + kWarps - 1) / kWarps : 0;  // chunks warp, warp+4, ...

  // Lane l holds the block id of key (l % 16) of the chunk to be issued next: read one
  // issue ahead so the table read is off the copies' critical path.
  auto chunk_key = [&](int i) { return k_begin + (warp + i * kWarps) * kChunkKeys + (lane % kChunkKeys); };
  auto table_at = [&](int key) { return key < k_end ? table[key >> plan.block_shift] : 0; };
  int32_t blk_next = table_at(chunk_key(0));
  // Before the wait (early_kv), the newest key's rows are not copied.
  const int newest = early_kv ? p.seq_lens[s] - 1 : -1;
  // Issues the copies of this warp's i-th chunk into stage i % S (zeros past k_end),
  // then one commit whether or not there was a chunk, so group counts stay uniform.
  auto issue = [&](int i, bool before_wait) {
    const int32_t blk_lane = blk_next;
    blk_next = table_at(chunk_key(i + 1));
    if (i < n_iter) {
      bf16* sk = pipe + (i % S) * C::kStageElems;
      bf16* sv = sk + C::kChunkElems;
      const int key0 = k_begin + (warp + i * kWarps) * kChunkKeys;
#pragma unroll
      for (int c = 0; c < kCopies; ++c) {
        const int r = c * kRowsPerCopy + lane / kChunks, col = lane % kChunks;
        const int key = key0 + r;
        const bool valid = key < k_end;
        const int32_t blk = __shfl_sync(0xffffffffu, blk_lane, r);
        const int64_t off = (int64_t(blk) * p.block_size + (key & bs_mask)) * slot_stride + head_off + col * 8;
        if (before_wait && key == newest) continue;
        cp_async16(sk + swz<HD>(r, col), valid ? p.k_cache + off : p.k_cache, valid);
        cp_async16(sv + swz<HD>(r, col), valid ? p.v_cache + off : p.v_cache, valid);
      }
    }
    cp_async_commit();
  };

  const float qscale = p.scale * kLog2e;
  float o[kN][4];
#pragma unroll
  for (int n = 0; n < kN; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m = -INFINITY, l = 0.0f;  // row fr's running max (log2 units) and this lane's partial sum

#pragma unroll
  for (int i = 0; i < S - 1; ++i) issue(i, early_kv);
  if (early_kv) {
    grid_dependency_wait();
    allow_dependents();
    // The newest key's K and V rows into the stage of the pre-issued chunk that holds
    // it (a lane a 16-byte piece; the loop's __syncwarp orders them before use).
#pragma unroll
    for (int i = 0; i < S - 1; ++i) {
      const int key0 = k_begin + (warp + i * kWarps) * kChunkKeys;
      if (i < n_iter && newest >= key0 && newest < key0 + kChunkKeys && newest < k_end && lane < 2 * kChunks) {
        const int r = newest - key0, col = lane % kChunks;
        const bool is_v = lane >= kChunks;
        const int64_t off = (int64_t(table[newest >> plan.block_shift]) * p.block_size + (newest & bs_mask)) *
                                slot_stride + head_off + col * 8;
        bf16* stage = pipe + (i % S) * C::kStageElems + (is_v ? C::kChunkElems : 0);
        *reinterpret_cast<uint4*>(stage + swz<HD>(r, col)) =
            __ldcg(reinterpret_cast<const uint4*>((is_v ? p.v_cache : p.k_cache) + off));
      }
    }
  }

  // Q as A fragments: row fr = head kh*G + fr (zero past G), columns 2fc, 2fc+1 and
  // 2fc+8, 2fc+9 of each 16-dim k-step; rows 8..15 (a1, a3) are zero.
  uint32_t qa[kK][2];
  {
    const bool has_row = fr < G;
    const bf16* qp = p.q + int64_t(row) * p.q_token_stride + int64_t(kh * G + (has_row ? fr : 0)) * HD + 2 * fc;
#pragma unroll
    for (int kk = 0; kk < kK; ++kk) {
      qa[kk][0] = has_row ? *reinterpret_cast<const uint32_t*>(qp + kk * 16) : 0u;
      qa[kk][1] = has_row ? *reinterpret_cast<const uint32_t*>(qp + kk * 16 + 8) : 0u;
    }
  }

  for (int i = 0; i < n_iter; ++i) {
    issue(i + S - 1, false);  // into the stage computed at i - 1 (the __syncwarp below freed it)
    cp_async_wait<S - 1>();
    __syncwarp();
    const bf16* sk = pipe + (i % S) * C::kStageElems;
    const bf16* sv = sk + C::kChunkElems;
    const int key0 = k_begin + (warp + i * kWarps) * kChunkKeys;

    // S = Q K^T: sc[n] covers keys n*8 .. n*8+7 of the chunk; [0], [1] are row fr.
    float sc[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
    for (int kk = 0; kk < kK; ++kk) {
      const int mi = lane / 8;
      uint32_t b[4];
      ldmatrix_x4(b, sk + swz<HD>((mi / 2) * 8 + lane % 8, kk * 2 + (mi % 2)));
      const uint32_t a[4] = {qa[kk][0], 0u, qa[kk][1], 0u};
      mma_bf16_16816(sc[0], a, b[0], b[1]);
      mma_bf16_16816(sc[1], a, b[2], b[3]);
    }
    float pr[2][2];
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = key0 + n * 8 + 2 * fc + e;
        pr[n][e] = key < k_end ? sc[n][e] * qscale : -INFINITY;
        mx = fmaxf(mx, pr[n][e]);
      }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m, mx);  // finite: every chunk has a valid key
    const float base = safe_base(m_new);
    const float alpha = exp2f(m - base);
    m = m_new;
    float psum = 0.0f;
#pragma unroll
    for (int n = 0; n < 2; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        pr[n][e] = exp2f(pr[n][e] - base);
        psum += pr[n][e];
      }
    l = l * alpha + psum;
#pragma unroll
    for (int n = 0; n < kN; ++n) {
      o[n][0] *= alpha;
      o[n][1] *= alpha;
    }
    // P as the A fragment of O += P V (keys are its k dimension; rows 8..15 zero).
    const uint32_t pa[4] = {pack_bf16x2(pr[0][0], pr[0][1]), 0u, pack_bf16x2(pr[1][0], pr[1][1]), 0u};
#pragma unroll
    for (int np = 0; np < kN / 2; ++np) {
      const int mi = lane / 8;
      uint32_t b[4];
      ldmatrix_x4_trans(b, sv + swz<HD>((mi % 2) * 8 + lane % 8, np * 2 + mi / 2));
      mma_bf16_16816(o[2 * np], pa, b[0], b[1]);
      mma_bf16_16816(o[2 * np + 1], pa, b[2], b[3]);
    }
    __syncwarp();  // every lane is done with this stage before it is refilled
  }
  cp_async_wait<0>();

  // Merge the four warps: (m, l) per row, O rows 0..7 through shared memory (the
  // pipeline's space, free once every warp is past its loop).
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
  __syncthreads();
  float* s_o = reinterpret_cast<float*>(smem_raw);  // [kWarps][8][HD]
  if (fc == 0) {
    s_m[warp][fr] = m;
    s_l[warp][fr] = l;
  }
#pragma unroll
  for (int n = 0; n < kN; ++n)
    *reinterpret_cast<float2*>(&s_o[(warp * 8 + fr) * HD + n * 8 + 2 * fc]) = make_float2(o[n][0], o[n][1]);
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * HD; idx += kThreads) {
    const int g = idx / HD, d = idx % HD;
    float mmax = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) mmax = fmaxf(mmax, s_m[w][g]);
    const float b = safe_base(mmax);
    float lsum = 0.0f, a = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float wt = exp2f(s_m[w][g] - b);
      lsum = fmaf(s_l[w][g], wt, lsum);
      a = fmaf(s_o[(w * 8 + g) * HD + d], wt, a);
    }
    store_attention(p, plan, keys.direct, int64_t(split) * p.num_tokens + row, row, kh * G + g, d, HD, a, mmax, lsum);
  }
}

template <int HD, int G, int kS>
cudaError_t launch_stages(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream) {
  constexpr auto kernel = decode_mma_kernel<HD, G, kS>;
  if (auto e = allow_dynamic_smem<kernel>(int(MmaDecodeCfg<HD, kS>::kSmemBytes)); e != cudaSuccess) return e;
  dim3 grid(unsigned(plan.num_splits), unsigned(p.num_kv_heads), unsigned(p.num_seqs));
  launch_kernel(kernel, dim3(grid), dim3(kThreads), MmaDecodeCfg<HD, kS>::kSmemBytes, stream, p, plan,
                early_kv_enabled());
  return cudaGetLastError();
}

}  // namespace

template <int HD, int G>
cudaError_t launch_decode_mma(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream,
                              bool beside_shared_pass) {
  if constexpr (HD == 128) {
    static const int pinned = [] {
      const char* v = std::getenv("VELA_DECODE_MMA_STAGES");
      return v == nullptr ? 0 : std::atoi(v);
    }();
    const int stages = pinned == 2 || pinned == 3 ? pinned : beside_shared_pass ? 2 : kDefaultMmaStages<HD>;
    if (stages == 2) return launch_stages<HD, G, 2>(p, plan, stream);
  }
  return launch_stages<HD, G, kDefaultMmaStages<HD>>(p, plan, stream);
}

#define VELA_DECODE_MMA_INSTANTIATE(HD)                                                                  \
  template cudaError_t launch_decode_mma<HD, 1>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t, bool); \
  template cudaError_t launch_decode_mma<HD, 2>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t, bool); \
  template cudaError_t launch_decode_mma<HD, 3>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t, bool); \
  template cudaError_t launch_decode_mma<HD, 4>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t, bool); \
  template cudaError_t launch_decode_mma<HD, 5>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t, bool); \
  template cudaError_t launch_decode_mma<HD, 6>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t, bool); \
  template cudaError_t launch_decode_mma<HD, 7>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t, bool); \
  template cudaError_t launch_decode_mma<HD, 8>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t, bool);
VELA_DECODE_MMA_INSTANTIATE(64)
VELA_DECODE_MMA_INSTANTIATE(128)
#undef VELA_DECODE_MMA_INSTANTIATE

}  // namespace vela::kernels::attn

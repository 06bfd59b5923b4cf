#pragma once
// Internals of paged attention shared by its .cu files: the launch plan (decided on
// the host from Params alone, so a captured graph replays the same launches), the
// per-kernel argument structs, and the small PTX wrappers (16-byte loads, cp.async,
// ldmatrix, mma.sync m16n8k16 bf16 -> fp32).
#include <cuda_bf16.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/async_copy.cuh"
#include "kernels/attention.h"

namespace vela::kernels {
struct LaunchOpts;  // kernels/launch.cuh
}

namespace vela::kernels::attn {

inline constexpr int kThreads = 128;  // 4 warps in every attention kernel
inline constexpr float kLog2e = 1.4426950408889634f;

// Split-KV partials: per (split, token row, q head) one normalised fp32 accumulator
// row of head_dim and one log2-sum-exp. Rows are split * num_tokens + token.
inline constexpr int64_t kMaxPartialRows = 2048;  // splits * num_tokens never exceeds this
inline constexpr int32_t kMinKeysPerSplit = 256;  // a split shorter than this costs more than it saves
// ... except when the (sequence, kv head) CTAs are few (decode at batch 1-4 on a
// 132-SM part): then the keys of one CTA are a serial chain of 64-key tiles on an
// otherwise idle GPU, and one tile per CTA (then the combine) is sooner.
inline constexpr int32_t kMinKeysPerSplitFewCtas = 64;
// kAuto's choice (H200, 2026-12-01, bench_attention_gpu, same binary): the tensor-core
// kernel is at 100-104% of copy from batch 64 for every group size (the CUDA-core one:
// 94-98% at G = 1-2, 49-63% at G = 4, 39% at G = 8), and ahead at batch 1 except at
// G <= 2 with long contexts (60% vs 66% at 32k). So: tensor cores from G = 4 always,
// and for smaller groups once a batch has kMmaDecodeMinSeqs sequences.
inline constexpr int kMmaDecodeMinGroup = 4;
inline constexpr int32_t kMmaDecodeMinSeqs = 16;

// The tensor-core decode kernel issues its first K / V copies before waiting for the
// qkv kernel under programmatic dependent launch (launch.cuh; all but the newest
// key, which that kernel writes): S1 +0.7% on the H200 (PERF_NOTES, thirteenth
// session). VELA_ATTN_EARLY_KV=0 waits first (A/B runs).
inline bool early_kv_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("VELA_ATTN_EARLY_KV");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

struct Plan {
  bool decode = false;        // max_query_len == 1: GQA decode kernel, else the prefill kernel
  // Mixed batches (not decode, several sequences): the decode kernel takes the
  // one-token sequences and the prefill kernel skips them (a decode row is G rows of
  // a 64-row tile there: the tile's whole context read for a sixteenth of its rows).
  bool decode_rows_apart = false;
  int32_t num_splits = 1;     // decode only; > 1 means partials in the workspace + combine pass
  int32_t split_len = 0;      // keys per split (decode), a multiple of 64
  bool per_seq_split = false; // decode: each sequence splits by its own seq_len (split_len_of)
  int32_t min_split_len = kMinKeysPerSplit;  // decode: the shortest split the plan makes
  int32_t block_shift = 0;    // log2(block_size)
  // Cascade (decode, shared_prefix_len accepted): keys [0, prefix_len) are the shared
  // pass's (prefix_splits splits of prefix_split_len keys, partial rows after the
  // decode splits'); the decode splits cover keys [prefix_len, seq_len) and always
  // write partials, which the combine pass merges with the shared ones.
  int32_t prefix_len = 0;
  int32_t prefix_splits = 0;
  int32_t prefix_split_len = 0;
  // A graph's cascade (Params::shared_prefix_len_device): the length is read here per
  // step, prefix_len is its bound and prefix_splits the grid's splits; prefix_keys()
  // derives the step's split length and count.
  const int32_t* prefix_len_device = nullptr;
  float* partial_acc = nullptr;  // [(num_splits + prefix_splits) * num_tokens, nq, hd]
  float* partial_lse = nullptr;  // [(num_splits + prefix_splits) * num_tokens, nq]
};

// Bytes of the partials for `rows` partial rows (acc region padded to 256 bytes).
inline size_t partial_bytes(int64_t rows, int32_t nq, int32_t hd) {
  size_t acc = size_t(rows) * size_t(nq) * size_t(hd) * sizeof(float);
  acc = (acc + 255) / 256 * 256;
  return acc + size_t(rows) * size_t(nq) * sizeof(float);
}

// Keys per split of one sequence when the plan splits per sequence: its keys spread
// over the grid's num_splits, at least min_len (the plan's min_split_len) each, a
// multiple of 64; so a short sequence takes one split (the others exit at once) and
// a long one all.
__host__ __device__ inline int32_t split_len_of(int32_t seq_len, int32_t num_splits, int32_t min_len) {
  int32_t len = (seq_len + num_splits - 1) / num_splits;
  len = (len + 63) / 64 * 64;
  return len > min_len ? len : min_len;
}

// Keys per split of a shared prefix of len keys spread over at most max_splits splits,
// at least kMinKeysPerSplit keys each, a multiple of 64 (0 for len 0). make_plan
// splits a known prefix with it and prefix_keys a graph's, so a replayed step sums
// the shared keys as its eager launch does.
__host__ __device__ inline int32_t prefix_split_len(int32_t len, int32_t max_splits) {
  int32_t splits = len / kMinKeysPerSplit;
  splits = splits < max_splits ? splits : max_splits;
  splits = splits > 1 ? splits : 1;
  return ((len + splits - 1) / splits + 63) / 64 * 64;
}

// The cascade's shared keys this step: [0, len) in `splits` splits of split_len (a
// multiple of 64), the last possibly shorter. From the plan, or (a graph's cascade)
// from the length read on the device, spread over the grid's prefix_splits.
struct PrefixKeys {
  int len = 0, split_len = 0, splits = 0;
};
__device__ __forceinline__ PrefixKeys prefix_keys(const Plan& plan) {
  PrefixKeys r;
  if (plan.prefix_len_device == nullptr) {
    r.len = plan.prefix_len;
    r.split_len = plan.prefix_split_len;
    r.splits = plan.prefix_splits;
    return r;
  }
  r.len = max(0, min(*plan.prefix_len_device, plan.prefix_len));
  r.split_len = prefix_split_len(r.len, plan.prefix_splits);  // the rest of the grid exits at once
  r.splits = r.split_len > 0 ? (r.len + r.split_len - 1) / r.split_len : 0;
  return r;
}

// The keys one decode CTA (sequence, split) covers: [begin, end) of the keys after the
// cascade's shared ones, split_len per split (the last takes every remaining key, so
// a max_seq_len that undercounts loses nothing). `direct`: this split alone holds the
// sequence's keys and writes the output itself (the combine pass skips it); `skip`:
// nothing here. Both decode kernels and the combine pass read ranges from here.
struct DecodeKeys {
  int begin = 0, end = 0, split_len = 0;
  bool direct = false, skip = false;
};
// prefix_len: prefix_keys(plan).len (0 without a cascade). A sequence shorter than
// the prefix (a graph's padding row) has no keys of its own: an empty range.
__device__ __forceinline__ DecodeKeys decode_keys(const Plan& plan, int split, int num_splits, int seq_len,
                                                  int prefix_len) {
  DecodeKeys r;
  const int n = seq_len - prefix_len;  // this sequence's own keys
  r.split_len = plan.per_seq_split ? split_len_of(n, num_splits, plan.min_split_len) : plan.split_len;
  r.direct = plan.prefix_splits == 0 && (num_splits == 1 || (plan.per_seq_split && n <= r.split_len));
  const int offset = split * r.split_len;  // split 0 when split_len is INT_MAX
  r.begin = prefix_len + offset;
  r.end = (split == num_splits - 1 || n - offset <= r.split_len) ? seq_len : r.begin + r.split_len;
  r.end = max(r.end, r.begin);
  r.skip = split > 0 && offset >= n;
  return r;
}

// Writes one output element of query row `row`, head h: to the output (direct), or as
// the normalised partial of partial row `prow` with its log2-sum-exp (stored once,
// by the d == 0 thread). lsum: the softmax denominator, mmax: the max it is relative to.
__device__ __forceinline__ void store_attention(const PagedAttentionParams<bf16>& p, const Plan& plan, bool direct,
                                                int64_t prow, int row, int h, int d, int hd, float acc, float mmax,
                                                float lsum) {
  const float o = lsum > 0.0f ? acc / lsum : 0.0f;
  if (direct) {
    p.out[int64_t(row) * p.out_token_stride + int64_t(h) * hd + d] = __float2bfloat16(o);
  } else {
    plan.partial_acc[(prow * p.num_q_heads + h) * hd + d] = o;
    if (d == 0) plan.partial_lse[prow * p.num_q_heads + h] = lsum > 0.0f ? mmax + log2f(lsum) : -INFINITY;
  }
}

template <int HD, int G>
cudaError_t launch_decode(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream);
// beside_shared_pass: the cascade's shared pass runs on the side stream at the same
// time (head dim 128 then takes smaller CTAs, so both kernels' CTAs share the SMs).
template <int HD, int G>
cudaError_t launch_decode_mma(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream,
                              bool beside_shared_pass = false);
template <int HD>
cudaError_t launch_combine(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream);
template <int HD, int G>
cudaError_t launch_prefill(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream);
// The cascade's shared pass: every decode row's G heads over keys [0, prefix_len).
// side: launched on p.side_stream (its priority, no PDL).
template <int HD, int G>
cudaError_t launch_shared_prefix(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream,
                                 bool side);

// The warp-specialized prefill kernel (head dim 128, sm_90): whether p's cache and
// device allow it, and its launch (shared: the cascade's shared pass).
// cudaErrorNotSupported when it does not apply.
bool prefill_ws_supported(const PagedAttentionParams<bf16>& p);
template <int G>
cudaError_t launch_prefill_ws(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream, bool shared,
                              const LaunchOpts& opts);

// ---- device helpers ------------------------------------------------------------

__device__ __forceinline__ uint4 ldg_nc_v4(const void* ptr) {
  uint4 r;
  // Not volatile: a pure read of memory no one writes during the kernel, so the
  // compiler may hoist and batch these loads.
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(ptr));
  return r;
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem) {
  uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

// d += a (16x16 row-major bf16) * b (16x8 col-major bf16), fp32 accumulators.
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// Eight bf16 in a uint4 -> eight floats.
__device__ __forceinline__ void unpack8(const uint4& v, float (&f)[8]) {
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = __uint_as_float(w[i] << 16);
    f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  }
}

// exp2 of (x - base) where base is a running max that may still be -inf (nothing seen).
__device__ __forceinline__ float safe_base(float m) { return m == -INFINITY ? 0.0f : m; }

}  // namespace vela::kernels::attn

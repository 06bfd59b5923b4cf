#pragma once
// What the two prefill attention kernels share (paged_attention_prefill.cu: one
// warpgroup a CTA, cp.async; paged_attention_prefill_ws.cu: a TMA producer and two
// consumer warpgroups): a warpgroup's 64 packed (query, head) rows, R = i * G + g,
// each warp owning 16 rows in mma.sync / wgmma accumulator fragments (rows lane / 4
// and lane / 4 + 8 of the warp's, columns 2 * (lane % 4) + {0, 1} of each block of 8).
// Here: the Q tile's load and fragments, one key tile's online softmax, and the
// epilogue that writes a warp's rows.
#include <cstdint>

#include "kernels/paged_attention_impl.cuh"

namespace vela::kernels::attn {

// Shared Q tiles are [64][HD] bf16; 16-byte chunk c of row r sits at chunk c ^ (r & 7)
// so that ldmatrix's 8 rows of one chunk column hit 8 different bank groups.
template <int HD>
__device__ __forceinline__ int swz(int r, int c) {
  return r * HD + ((c ^ (r & 7)) << 3);
}

// 2^x on the special-function unit (ex2.approx: ~2 ulp, -inf -> 0); exp2f adds a
// range fix-up around it that probabilities rounded to bf16 do not need.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// The cp.async copies of a warpgroup's Q tile: rows r0 .. r0 + 63 (packed) of the
// kv head kh into sq (swz layout); rows past total_rows are zeros. wtid: the thread's
// index in the warpgroup. Commit and wait are the caller's.
template <int HD, int G>
__device__ __forceinline__ void load_q_tile(bf16* sq, const PagedAttentionParams<bf16>& p, int q0, int kh, int r0,
                                            int total_rows, int wtid) {
  constexpr int kChunks = HD / 8;
#pragma unroll
  for (int idx = wtid; idx < 64 * kChunks; idx += 128) {
    const int r = idx / kChunks, c = idx % kChunks;
    const int R = r0 + r;
    const bool valid = R < total_rows;
    const bf16* src = p.q;
    if (valid) src = p.q + int64_t(q0 + R / G) * p.q_token_stride + int64_t(kh * G + R % G) * HD + c * 8;
    cp_async16(sq + swz<HD>(r, c), src, valid);
  }
}

// This warp's Q fragments (the A operand of S = Q K^T, k-step kk = head dims
// 16kk .. 16kk + 15) from a landed Q tile.
template <int HD>
__device__ __forceinline__ void q_fragments(uint32_t (&qf)[HD / 16][4], const bf16* sq, int warp, int lane) {
#pragma unroll
  for (int kk = 0; kk < HD / 16; ++kk) ldmatrix_x4(qf[kk], sq + swz<HD>(warp * 16 + lane % 16, kk * 2 + lane / 16));
}

// v[0] = the max / the sum of v[0 .. 2W), as a pairwise tree (W a power of two); the
// recursion keeps every index a constant, so v stays in registers at any tile width.
template <int W, int N>
__device__ __forceinline__ void tree_max(float (&v)[N]) {
  if constexpr (W > 0) {
#pragma unroll
    for (int n = 0; n < W; ++n) v[n] = fmaxf(v[n], v[n + W]);
    tree_max<W / 2>(v);
  }
}
template <int W, int N>
__device__ __forceinline__ void tree_sum(float (&v)[N]) {
  if constexpr (W > 0) {
#pragma unroll
    for (int n = 0; n < W; ++n) v[n] += v[n + W];
    tree_sum<W / 2>(v);
  }
}

// One key tile of the online softmax for this thread's two rows: mask (when `mask`:
// key > limit[rr] is -inf; the tile's first key is key0) the raw scores sc, then in
// log2 units (qscale = scale * log2 e) fold the tile into the running max m and sum l,
// rescale O when some row of the warp has a new max, and pack P to bf16 fragments (the
// A operand of O += P V, k-step kk = keys 16kk .. 16kk + 15 of the tile).
template <int kNS, int kN>
__device__ __forceinline__ void softmax_tile(float (&sc)[kNS][4], float (&o)[kN][4], float (&m)[2], float (&l)[2],
                                             uint32_t (&pf)[kNS / 2][4], bool mask, int key0, const int (&limit)[2],
                                             float qscale, int lane) {
  if (mask) {
#pragma unroll
    for (int n = 0; n < kNS; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + n * 8 + (lane % 4) * 2 + (e & 1);
        if (key > limit[e / 2]) sc[n][e] = -INFINITY;
      }
  }
  float alpha[2];
  bool moved = false;
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    // Pairwise trees, not chains: the latency of dependent FMNMX / FADD is what the
    // scheduler waits on here (ncu: "fixed latency execution dependency").
    float mt[kNS];
#pragma unroll
    for (int n = 0; n < kNS; ++n) mt[n] = fmaxf(sc[n][2 * rr], sc[n][2 * rr + 1]);
    tree_max<kNS / 2>(mt);
    float mx = mt[0];
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m[rr], mx * qscale);
    const float b = safe_base(m_new);
    moved |= m_new != m[rr];
    alpha[rr] = fast_exp2(m[rr] - b);
    m[rr] = m_new;
    float ps[kNS];
#pragma unroll
    for (int n = 0; n < kNS; ++n) {
      sc[n][2 * rr] = fast_exp2(fmaf(sc[n][2 * rr], qscale, -b));
      sc[n][2 * rr + 1] = fast_exp2(fmaf(sc[n][2 * rr + 1], qscale, -b));
      ps[n] = sc[n][2 * rr] + sc[n][2 * rr + 1];
    }
    tree_sum<kNS / 2>(ps);
    l[rr] = l[rr] * alpha[rr] + ps[0];  // this lane's partial; the quad sums at the end
  }
  // O is rescaled only when some row of the warp has a new max: after the first
  // tiles of a long context, rarely.
  if (__any_sync(0xffffffffu, moved)) {
#pragma unroll
    for (int n = 0; n < kN; ++n) {
      o[n][0] *= alpha[0];
      o[n][1] *= alpha[0];
      o[n][2] *= alpha[1];
      o[n][3] *= alpha[1];
    }
  }
#pragma unroll
  for (int kk = 0; kk < kNS / 2; ++kk) {
    pf[kk][0] = pack_bf16x2(sc[2 * kk][0], sc[2 * kk][1]);
    pf[kk][1] = pack_bf16x2(sc[2 * kk][2], sc[2 * kk][3]);
    pf[kk][2] = pack_bf16x2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
    pf[kk][3] = pack_bf16x2(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
  }
}

// Writes this thread's two rows (row_base + lane / 4 + 8 rr, packed) of the result:
// the output (prefill), or (kShared, the cascade's shared pass over split `split`) a
// normalised fp32 partial and its log2-sum-exp for the combine, after the decode
// splits' partial rows.
template <int HD, int G, bool kShared>
__device__ __forceinline__ void store_rows(const PagedAttentionParams<bf16>& p, const Plan& plan,
                                           const float (&o)[HD / 8][4], const float (&m)[2], const float (&l)[2],
                                           int row_base, int total_rows, int q0, int kh, int split, int lane) {
  constexpr int kN = HD / 8;
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    float lsum = l[rr];
    lsum += __shfl_xor_sync(0xffffffffu, lsum, 1);
    lsum += __shfl_xor_sync(0xffffffffu, lsum, 2);
    const int R = row_base + lane / 4 + rr * 8;
    if (R >= total_rows) continue;
    const float inv = lsum > 0.0f ? 1.0f / lsum : 0.0f;
    if constexpr (kShared) {
      // Partial row (num_splits + split) * num_tokens + token, as decode_kernel's.
      const int h = kh * G + R % G;
      const int64_t prow = int64_t(plan.num_splits + split) * p.num_tokens + R / G;
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

// The kernels' shared-memory K / V tiles, [keys][HD] bf16, where 16-byte chunk c of key
// row r sits. wgmma: HD / 64 column blocks of [keys][64] (128-byte rows), chunk c % 8
// at (c % 8) ^ (r % 8): the canonical 128B-swizzle layout (what TMA writes with
// CU_TENSOR_MAP_SWIZZLE_128B), K-major for S = Q K^T and MN-major for O += P V, one copy
// serving both. mma.sync (ldmatrix): rows of HD, swz.
template <int HD, int kKeys, bool kWg>
__device__ __forceinline__ int kv_off(int r, int c) {
  if constexpr (kWg) return (c >> 3) * (kKeys * 64) + r * 64 + (((c & 7) ^ (r & 7)) << 3);
  else return swz<HD>(r, c);
}

// Each launch's (sequence or shared split) rows and keys, as both kernels read them.
// Prefill: sequence s's chunk of q_len rows after `context` cached keys, keys [0,
// seq_len). Shared pass: every token row of the batch (one per sequence) over the
// shared keys [k0, k1) of split z.
struct PrefillWork {
  int q0 = 0, q_len = 0, context = 0, k0 = 0, k1 = 0;
};
template <bool kShared>
__device__ __forceinline__ PrefillWork prefill_work(const PagedAttentionParams<bf16>& p, const Plan& plan, int s,
                                                    int z) {
  PrefillWork w;
  w.q0 = kShared ? 0 : p.query_start_loc[s];
  w.q_len = kShared ? p.num_tokens : p.query_start_loc[s + 1] - w.q0;
  w.context = kShared ? 0 : p.seq_lens[s] - w.q_len;
  if constexpr (kShared) {
    const PrefixKeys pk = prefix_keys(plan);  // this step's shared keys (a graph's: read here)
    w.k0 = z * pk.split_len;
    w.k1 = min(pk.len, w.k0 + pk.split_len);
  } else {
    w.k1 = p.seq_lens[s];
  }
  return w;
}

}  // namespace vela::kernels::attn

// Decode attention (every sequence has one query row) over the paged KV cache, and
// the combine pass of split-KV.
//
// decode_kernel<HD, G>: grid (num_splits, num_kv_heads, num_seqs), 128 threads. One
// CTA owns one (sequence, kv head, key split) and all G = nq/nk query heads of that
// kv head, so each K/V row is read from HBM once per group. A key row (HD bf16) is
// read by HD/8 threads, 16 bytes each; a warp covers 32/(HD/8) keys per load and
// each thread keeps kUnroll K and V loads in flight. Every thread group (the threads
// of one key slot) runs its own online softmax over the keys it saw; the CTA merges
// the groups through shared memory at the end and either writes the output (one
// split) or a normalised partial + log2-sum-exp to the workspace.
#include <cuda_runtime.h>

#include "kernels/paged_attention_impl.cuh"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"

namespace vela::kernels::attn {
namespace {

template <int HD, int G>
struct DecodeCfg {
  static constexpr int kThreadsPerKey = HD / 8;  // 16 bytes each
  static constexpr int kKeysPerWarp = 32 / kThreadsPerKey;
  static constexpr int kWarps = kThreads / 32;
  // K and V loads in flight per thread; small groups have registers to spare for more.
  static constexpr int kUnroll = G <= 2 ? 8 : 4;
  static constexpr int kKeysPerIter = kUnroll * kWarps * kKeysPerWarp;
  static constexpr int kStreams = kWarps * kKeysPerWarp;  // independent softmax streams per CTA
};

template <int HD, int G>
__global__ void __launch_bounds__(kThreads) decode_kernel(const PagedAttentionParams<bf16> p, const Plan plan) {
  grid_dependency_wait();
  allow_dependents();
  using C = DecodeCfg<HD, G>;
  constexpr int U = C::kUnroll;
  __shared__ float s_m[C::kStreams][G];
  __shared__ float s_l[C::kStreams][G];
  __shared__ __align__(16) float s_acc[C::kStreams][G][HD];

  const int split = blockIdx.x, kh = blockIdx.y, s = blockIdx.z;
  const int row = p.query_start_loc[s];
  if (p.query_start_loc[s + 1] - row != 1) return;  // an empty (padding) sequence
  const DecodeKeys keys = decode_keys(plan, split, int(gridDim.x), p.seq_lens[s], prefix_keys(plan).len);
  if (keys.skip) return;  // nothing here; the combine pass skips it
  const int k_begin = keys.begin, k_end = keys.end;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int grp = lane / C::kThreadsPerKey, gl = lane % C::kThreadsPerKey;
  const int stream = warp * C::kKeysPerWarp + grp;

  // q of the G heads, this thread's 8 dims, pre-scaled so scores are in log2 units.
  const float qscale = p.scale * kLog2e;
  float q[G][8];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const bf16* qp = p.q + int64_t(row) * p.q_token_stride + int64_t(kh * G + g) * HD + gl * 8;
    unpack8(*reinterpret_cast<const uint4*>(qp), q[g]);
#pragma unroll
    for (int i = 0; i < 8; ++i) q[g][i] *= qscale;
  }

  float m[G], l[G], acc[G][8];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[g][i] = 0.0f;
  }

  const int32_t* table = p.block_tables + int64_t(s) * p.block_table_stride;
  const int bs_mask = p.block_size - 1;
  const int64_t slot_stride = int64_t(p.num_kv_heads) * HD;  // elements per cache row
  const int64_t head_off = int64_t(kh) * HD + gl * 8;

  // Key u of an iteration is base + key_off[u]; its block id is fetched one iteration
  // ahead so the table read is off the K/V loads' critical path.
  int key_off[U];
  int32_t blk[U];
#pragma unroll
  for (int u = 0; u < U; ++u) {
    key_off[u] = (u * C::kWarps + warp) * C::kKeysPerWarp + grp;
    const int key = k_begin + key_off[u];
    blk[u] = key < k_end ? table[key >> plan.block_shift] : 0;
  }

  for (int base = k_begin; base < k_end; base += C::kKeysPerIter) {
    uint4 kr[U], vr[U];
    bool valid[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int key = base + key_off[u];
      valid[u] = key < k_end;
      kr[u] = vr[u] = make_uint4(0, 0, 0, 0);
      if (valid[u]) {
        const int64_t slot = int64_t(blk[u]) * p.block_size + (key & bs_mask);
        const int64_t off = slot * slot_stride + head_off;
        kr[u] = ldg_nc_v4(p.k_cache + off);
        vr[u] = ldg_nc_v4(p.v_cache + off);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int key = base + C::kKeysPerIter + key_off[u];
      blk[u] = key < k_end ? table[key >> plan.block_shift] : 0;
    }
    float sc[U][G];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float kf[8];
      unpack8(kr[u], kf);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float d = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) d = fmaf(q[g][i], kf[i], d);
        sc[u][g] = d;
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int g = 0; g < G; ++g) {
#pragma unroll
        for (int o = C::kThreadsPerKey / 2; o > 0; o /= 2) sc[u][g] += __shfl_xor_sync(0xffffffffu, sc[u][g], o);
        if (!valid[u]) sc[u][g] = -INFINITY;
      }
    float vf[U][8];
#pragma unroll
    for (int u = 0; u < U; ++u) unpack8(vr[u], vf[u]);
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float mx = sc[0][g];
#pragma unroll
      for (int u = 1; u < U; ++u) mx = fmaxf(mx, sc[u][g]);
      const float m_new = fmaxf(m[g], mx);
      const float b = safe_base(m_new);
      const float alpha = exp2f(m[g] - b);
      float pr[U], psum = 0.0f;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        pr[u] = exp2f(sc[u][g] - b);
        psum += pr[u];
      }
      l[g] = l[g] * alpha + psum;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        float a = acc[g][i] * alpha;
#pragma unroll
        for (int u = 0; u < U; ++u) a = fmaf(pr[u], vf[u][i], a);
        acc[g][i] = a;
      }
      m[g] = m_new;
    }
  }

  // Merge the CTA's streams.
#pragma unroll
  for (int g = 0; g < G; ++g) {
    if (gl == 0) {
      s_m[stream][g] = m[g];
      s_l[stream][g] = l[g];
    }
    float4* dst = reinterpret_cast<float4*>(&s_acc[stream][g][gl * 8]);
    dst[0] = make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
    dst[1] = make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * HD; idx += kThreads) {
    const int g = idx / HD, d = idx % HD;
    float mmax = -INFINITY;
#pragma unroll
    for (int st = 0; st < C::kStreams; ++st) mmax = fmaxf(mmax, s_m[st][g]);
    const float b = safe_base(mmax);
    float lsum = 0.0f, a = 0.0f;
#pragma unroll
    for (int st = 0; st < C::kStreams; ++st) {
      const float w = exp2f(s_m[st][g] - b);
      lsum = fmaf(s_l[st][g], w, lsum);
      a = fmaf(s_acc[st][g][d], w, a);
    }
    store_attention(p, plan, keys.direct, int64_t(split) * p.num_tokens + row, row, kh * G + g, d, HD, a, mmax, lsum);
  }
}

// grid (ceil(num_q_heads / kCombineWarps), num_seqs), a warp per (sequence, q head):
// merges the sequence's split partials. Lane l owns dims [l * HD/32, (l+1) * HD/32)
// and split l's log-sum-exp (32 splits a round), so every load of a round is issued
// before any is used: two L2 round trips for the weights, then the accumulators
// (independent loads, unrolled), not a serial chain of 2 x count loads a thread.
inline constexpr int kCombineWarps = 4;
template <int HD>
__global__ void __launch_bounds__(kCombineWarps * 32) combine_kernel(const PagedAttentionParams<bf16> p,
                                                                     const Plan plan) {
  grid_dependency_wait();
  allow_dependents();
  constexpr int kPer = HD / 32;  // 4 (hd 128) or 2 (hd 64) dims a lane
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int h = blockIdx.x * kCombineWarps + warp, s = blockIdx.y;
  if (h >= p.num_q_heads) return;
  const int row = p.query_start_loc[s];
  if (p.query_start_loc[s + 1] - row != 1) return;
  // The decode splits that held keys (the rest skipped and wrote nothing), then the
  // cascade's shared-prefix partials, which follow them.
  const PrefixKeys pk = prefix_keys(plan);
  const DecodeKeys keys = decode_keys(plan, 0, plan.num_splits, p.seq_lens[s], pk.len);
  if (keys.direct) return;  // one split wrote the output itself
  const int own = p.seq_lens[s] - pk.len;
  const int n = own <= 0 ? 1 : min((own - 1) / keys.split_len + 1, plan.num_splits);  // split_len may be INT_MAX
  const int count = n + pk.splits;
  auto prow = [&](int i) {  // (partial row, head) index of the i-th split that holds keys
    const int r = i < n ? i : plan.num_splits + (i - n);
    return (int64_t(r) * p.num_tokens + row) * p.num_q_heads + h;
  };
  float mmax = -INFINITY;
  for (int i = lane; i < count; i += 32) mmax = fmaxf(mmax, plan.partial_lse[prow(i)]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) mmax = fmaxf(mmax, __shfl_xor_sync(0xffffffffu, mmax, o));
  const float b = safe_base(mmax);
  float wsum = 0.0f, a[kPer] = {};
  for (int i0 = 0; i0 < count; i0 += 32) {
    const float w_lane = i0 + lane < count ? exp2f(plan.partial_lse[prow(i0 + lane)] - b) : 0.0f;
    wsum += w_lane;
    const int m = min(32, count - i0);
#pragma unroll 4
    for (int j = 0; j < m; ++j) {
      const float w = __shfl_sync(0xffffffffu, w_lane, j);
      const float* src = plan.partial_acc + prow(i0 + j) * HD + lane * kPer;
      if constexpr (kPer == 4) {
        const float4 v = *reinterpret_cast<const float4*>(src);
        a[0] = fmaf(w, v.x, a[0]);
        a[1] = fmaf(w, v.y, a[1]);
        a[2] = fmaf(w, v.z, a[2]);
        a[3] = fmaf(w, v.w, a[3]);
      } else {
        const float2 v = *reinterpret_cast<const float2*>(src);
        a[0] = fmaf(w, v.x, a[0]);
        a[1] = fmaf(w, v.y, a[1]);
      }
    }
  }
  wsum = warp_sum(wsum);
  const float inv = wsum > 0.0f ? 1.0f / wsum : 0.0f;
  bf16* dst = p.out + int64_t(row) * p.out_token_stride + int64_t(h) * HD + lane * kPer;
#pragma unroll
  for (int e = 0; e < kPer; e += 2)
    *reinterpret_cast<__nv_bfloat162*>(dst + e) = __floats2bfloat162_rn(a[e] * inv, a[e + 1] * inv);
}

}  // namespace

template <int HD, int G>
cudaError_t launch_decode(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream) {
  dim3 grid(unsigned(plan.num_splits), unsigned(p.num_kv_heads), unsigned(p.num_seqs));
  launch_kernel(decode_kernel<HD, G>, dim3(grid), dim3(kThreads), 0, stream, p, plan);
  return cudaGetLastError();
}

template <int HD>
cudaError_t launch_combine(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream) {
  dim3 grid(unsigned((p.num_q_heads + kCombineWarps - 1) / kCombineWarps), unsigned(p.num_seqs));
  launch_kernel(combine_kernel<HD>, dim3(grid), dim3(kCombineWarps * 32), 0, stream, p, plan);
  return cudaGetLastError();
}

#define VELA_DECODE_INSTANTIATE(HD)                                                                        \
  template cudaError_t launch_decode<HD, 1>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t);       \
  template cudaError_t launch_decode<HD, 2>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t);       \
  template cudaError_t launch_decode<HD, 3>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t);       \
  template cudaError_t launch_decode<HD, 4>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t);       \
  template cudaError_t launch_decode<HD, 5>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t);       \
  template cudaError_t launch_decode<HD, 6>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t);       \
  template cudaError_t launch_decode<HD, 7>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t);       \
  template cudaError_t launch_decode<HD, 8>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t);       \
  template cudaError_t launch_combine<HD>(const PagedAttentionParams<bf16>&, const Plan&, cudaStream_t);
VELA_DECODE_INSTANTIATE(64)
VELA_DECODE_INSTANTIATE(128)
#undef VELA_DECODE_INSTANTIATE

}  // namespace vela::kernels::attn

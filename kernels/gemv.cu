// Small-batch linear layers as a matrix-vector kernel: out[m, n] = x[m, :] · w[n, :]
// (+ bias[n]) for m <= kGemvMaxRows. At batch 1-4 a linear layer is a stream of its
// weights (16 GB per token for an 8B model), so the only figure that matters is the
// share of HBM bandwidth it reaches; a GEMM library tiles for tensor cores and
// leaves bandwidth behind at m = 1. A warp owns one output column n: it streams
// w[n, :] in 16-byte loads (one or two groups of kUnroll in flight per lane,
// marked evict-first: each weight is read once per step), multiplies with the m
// rows of x (small, cached), accumulates in fp32 and reduces across the warp.
// Launched with PDL (launch.cuh): its first weight loads overlap the previous
// kernel's tail. At 1-2 rows it can also take the RMSNorm before it (each block
// normalises the fp32 residual into shared memory after the wait, while its first
// weights are in flight) and the residual add after it (out += the result), which
// removes the decode step's norm kernels between layers (PERF_NOTES: S1), and
// (the q|k|v projection of a model without q/k norm) the attention prologue after
// it: RoPE on q and k, k and v into the paged cache (GemmArgs::qkv), which removes
// the qkv_rope_cache launch between the projection and attention.
#include <atomic>
#include <cstdlib>

#include "kernels/gemm.h"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"
#include "kernels/vec.cuh"

namespace vela::kernels {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kUnroll = 4;
constexpr int64_t kChunk = 32 * kVec;  // elements a warp covers with one load per lane
constexpr int kGemvMaxNormRows = 2;             // rows the norm prologue is compiled for
constexpr size_t kGemvMaxNormSmem = 48 * 1024;  // its normalised rows: no opt-in shared memory

// The rows of x a warp multiplies with: the caller's, or the block's normalised copy.
struct XRows {
  const bf16* x;
  int64_t row_stride;
};

// R weight rows per warp (1, or 2 for gate and up), M rows of x.
template <int M, int R>
__device__ inline void accumulate(const XRows& xr, const uint4 (&wraw)[R], int64_t k, float (&acc)[R][M]) {
  float w[R][kVec];
#pragma unroll
  for (int r = 0; r < R; ++r) unpack8(wraw[r], w[r]);
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float x[kVec];
    load8(xr.x + m * xr.row_stride + k, x);
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int e = 0; e < kVec; ++e) acc[r][m] = fmaf(w[r][e], x[e], acc[r][m]);
  }
}

template <int R>
__device__ inline void load_group(const bf16* const (&w)[R], int64_t k, uint4 (&raw)[kUnroll][R]) {
#pragma unroll
  for (int u = 0; u < kUnroll; ++u)
#pragma unroll
    for (int r = 0; r < R; ++r) raw[u][r] = __ldcs(reinterpret_cast<const uint4*>(w[r] + k + u * kChunk));
}

// kNorm's prologue: row m of x = rms_norm(a.norm_residual[m]) * a.norm_weight in bf16
// (add_rms_norm's arithmetic and rounding), written to shared memory by the whole
// block. Every thread of the block calls it.
template <int M>
__device__ inline void normalise_rows(const GemmArgs& a, bf16* xs) {
  const int64_t step = int64_t(blockDim.x) * kVec;
  const bf16* nw = static_cast<const bf16*>(a.norm_weight);
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float* res = a.norm_residual + m * a.k;
    float ss = 0.0f;
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < a.k; i += step) {
      float f[kVec];
      load8(res + i, f);
#pragma unroll
      for (int j = 0; j < kVec; ++j) ss += f[j] * f[j];
    }
    const float inv = rsqrtf(block_sum(ss) / float(a.k) + a.norm_eps);
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < a.k; i += step) {
      float f[kVec], g[kVec];
      load8(res + i, f);
      load8(nw + i, g);
#pragma unroll
      for (int j = 0; j < kVec; ++j) f[j] = g[j] * (f[j] * inv);
      store8(xs + m * a.k + i, f);
    }
  }
  __syncthreads();
}

// The silu of the CPU op (silu_and_mul): g / (1 + exp(-g)) * u.
__device__ inline float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

// The qkv epilogue's warp n: the two weight rows RoPE pairs in head n / (hd / 2).
__device__ inline void rope_rows(const GemmArgs::QkvEpilogue& e, int64_t n, int64_t (&row)[2]) {
  const int64_t hd = e.head_dim, half = hd / 2, h = n / half, i = n % half;
  row[0] = h * hd + (e.interleaved ? 2 * i : i);
  row[1] = row[0] + (e.interleaved ? 1 : half);
}

// Lane 0 of warp n, acc[r][m] = row r of the pair for token m: the projection
// rounded to bf16 as the plain GEMV writes it, then qkv_rope_cache's arithmetic on
// those values (RoPE in fp32, one rounding), so the fused step writes what the two
// kernels wrote.
template <int M>
__device__ inline void qkv_epilogue(const GemmArgs& a, int64_t n, const float (&acc)[2][M]) {
  const GemmArgs::QkvEpilogue& e = a.qkv;
  const int64_t hd = e.head_dim, half = hd / 2, h = n / half, i = n % half;
  const int64_t nq = e.num_q_heads, nk = e.num_kv_heads;
  int64_t row[2];
  rope_rows(e, n, row);
  const bf16* bias = static_cast<const bf16*>(a.bias);
  const float b0 = bias != nullptr ? to_f32(bias[row[0]]) : 0.f, b1 = bias != nullptr ? to_f32(bias[row[1]]) : 0.f;
  const bool is_q = h < nq, is_v = h >= nq + nk;
#pragma unroll
  for (int m = 0; m < M; ++m) {
    bf16* out = static_cast<bf16*>(a.out) + m * a.out_row_stride;
    const bf16 r0 = __float2bfloat16(acc[0][m] + b0), r1 = __float2bfloat16(acc[1][m] + b1);
    float x0 = __bfloat162float(r0), x1 = __bfloat162float(r1);
    if (!is_v) {
      const float* cs = e.cos_sin + int64_t(e.positions[m]) * hd;
      const float c = cs[i], sn = cs[half + i];
      const float y0 = x0 * c - x1 * sn, y1 = x1 * c + x0 * sn;
      x0 = y0;
      x1 = y1;
    }
    if (is_q) {  // rotated in place: attention reads q from here
      out[row[0]] = __float2bfloat16(x0);
      out[row[1]] = __float2bfloat16(x1);
      continue;
    }
    out[row[0]] = r0;  // k and v as projected (qkv_rope_cache leaves them so)
    out[row[1]] = r1;
    const int64_t slot = e.slot_mapping[m];
    if (slot < 0) continue;  // a token whose KV is not written (padding)
    const int64_t kvh = is_v ? h - nq - nk : h - nq;
    bf16* cache = static_cast<bf16*>(is_v ? e.v_cache : e.k_cache) + (slot * nk + kvh) * hd;
    cache[row[0] - h * hd] = __float2bfloat16(x0);
    cache[row[1] - h * hd] = __float2bfloat16(x1);
  }
}

// R = 1: out[m, n] = x[m] . w[n] (+ bias[n]) (a.accumulate: out[m, n] += that).
// R = 2 (a.silu_mul): the warp streams rows n and n + a.n of a [2 a.n, k] weight
// (gate, then up) and writes out[m, n] = silu(x[m] . w[n]) * (x[m] . w[n + a.n]).
// kNorm: x is the block's normalised copy of a.norm_residual (dynamic shared memory,
// M * k bf16). kRope (R = 2): warp n streams the rows RoPE pairs (rope_rows) and
// ends in qkv_epilogue.
template <int M, int R, bool kAhead, bool kNorm, bool kRope>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) gemv_kernel(GemmArgs a) {
  static_assert(!kRope || R == 2);
  extern __shared__ uint4 gemv_smem[];
  const int lane = threadIdx.x & 31;
  const int64_t n = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  const bool active = n < (kRope ? a.n / 2 : a.n);
  int64_t row[R];
  if constexpr (kRope) {
    rope_rows(a.qkv, active ? n : 0, row);
  } else {
#pragma unroll
    for (int r = 0; r < R; ++r) row[r] = (active ? n : 0) + r * a.n;
  }
  const bf16* w[R];
#pragma unroll
  for (int r = 0; r < R; ++r) w[r] = static_cast<const bf16*>(a.w) + row[r] * a.k;
  int64_t k = int64_t(lane) * kVec;
  // Groups of kUnroll loads per lane and row; with kAhead two in flight (the next
  // group is issued before the current one is multiplied), else one (fewer
  // registers: more blocks per SM; launch_rows picks). The first group is weights
  // only, which no kernel of the step writes, so it goes out before the wait for
  // the kernel before this one (launch.cuh): the weight stream starts in its tail.
  auto whole_group = [&](int64_t at) { return at + (kUnroll - 1) * kChunk < a.k; };
  uint4 raw[kUnroll][R];
  const bool grouped = active && whole_group(k);
  if (grouped) load_group<R>(w, k, raw);
  grid_dependency_wait();
  allow_dependents();
  XRows xr{static_cast<const bf16*>(a.x), a.x_row_stride};
  if constexpr (kNorm) {  // after the wait (the residual is the previous kernels' output), before any exit
    bf16* xs = reinterpret_cast<bf16*>(gemv_smem);
    normalise_rows<M>(a, xs);
    xr = XRows{xs, a.k};
  }
  if (!active) return;
  float acc[R][M];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m) acc[r][m] = 0.f;
  if (grouped && kAhead) {
    for (;;) {
      const int64_t next = k + kUnroll * kChunk;
      const bool more = whole_group(next);
      uint4 ahead[kUnroll][R];
      if (more) load_group<R>(w, next, ahead);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) accumulate<M, R>(xr, raw[u], k + u * kChunk, acc);
      k = next;
      if (!more) break;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
#pragma unroll
        for (int r = 0; r < R; ++r) raw[u][r] = ahead[u][r];
    }
  } else if (grouped) {
    for (;;) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) accumulate<M, R>(xr, raw[u], k + u * kChunk, acc);
      k += kUnroll * kChunk;
      if (!whole_group(k)) break;
      load_group<R>(w, k, raw);
    }
  }
  for (; k < a.k; k += kChunk) {
    uint4 one[R];
#pragma unroll
    for (int r = 0; r < R; ++r) one[r] = __ldcs(reinterpret_cast<const uint4*>(w[r] + k));
    accumulate<M, R>(xr, one, k, acc);
  }
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m)
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) acc[r][m] += __shfl_xor_sync(0xffffffffu, acc[r][m], o);
  if (lane != 0) return;
  if constexpr (kRope) {
    qkv_epilogue<M>(a, n, acc);
    return;
  }
  const float b = R == 1 && a.bias != nullptr ? to_f32(static_cast<const bf16*>(a.bias)[n]) : 0.f;
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float v = R == 2 ? silu_mul(acc[0][m], acc[R - 1][m]) : acc[0][m] + b;
    if (R == 1 && a.accumulate) static_cast<float*>(a.out)[m * a.out_row_stride + n] += v;
    else if (a.out_f32) static_cast<float*>(a.out)[m * a.out_row_stride + n] = v;
    else static_cast<bf16*>(a.out)[m * a.out_row_stride + n] = __float2bfloat16(v);
  }
}

// Blocks of one kernel that fit the GPU at once (one wave) with `smem` bytes of
// dynamic shared memory each.
template <class Kernel>
int64_t one_wave(Kernel kernel, size_t smem) {
  int device = 0, sms = 0, per_sm = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, 32 * kWarpsPerBlock, smem) != cudaSuccess)
    return 0;
  return int64_t(sms) * per_sm;
}

// one_wave of one kernel, remembered for the last smem size asked (a model asks
// for one size per kernel: its hidden size).
template <auto kKernel>
int64_t one_wave_cached(size_t smem) {
  static std::atomic<int64_t> cached_smem{-1}, cached_wave{0};
  if (cached_smem.load(std::memory_order_acquire) == int64_t(smem)) return cached_wave.load(std::memory_order_relaxed);
  const int64_t wave = one_wave(kKernel, smem);
  cached_wave.store(wave, std::memory_order_relaxed);
  cached_smem.store(int64_t(smem), std::memory_order_release);
  return wave;
}

template <int M, int R, bool kNorm, bool kRope = false>
cudaError_t launch_rows(const GemmArgs& a, cudaStream_t stream) {
  const int64_t warps = kRope ? a.n / 2 : a.n;
  const int64_t blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  // Two groups in flight are faster inside a decode step (S1 on the H200: 4.48 vs
  // 4.61 ms a token, same call), but their registers cost a block per SM: where the
  // grid then needs a second wave and the one-group kernel fits in one (8B's qkv,
  // 768 blocks), that second wave costs more (20.1 vs 15.9 us alone).
  // VELA_GEMV_AHEAD=1 / 0 forces one loop (A/B runs); unset, the wave rule decides.
  static const int forced = [] {
    const char* e = std::getenv("VELA_GEMV_AHEAD");
    return e == nullptr || e[0] == '\0' ? -1 : e[0] == '1' ? 1 : 0;
  }();
  const size_t smem = kNorm ? size_t(M) * size_t(a.k) * sizeof(bf16) : 0;
  const int64_t wave_ahead = one_wave_cached<gemv_kernel<M, R, true, kNorm, kRope>>(smem);
  const int64_t wave_plain = one_wave_cached<gemv_kernel<M, R, false, kNorm, kRope>>(smem);
  const bool ahead = forced >= 0 ? forced == 1 : !(blocks > wave_ahead && blocks <= wave_plain);
  const dim3 grid{unsigned(blocks)}, threads{32 * kWarpsPerBlock};
  return ahead ? launch_kernel(gemv_kernel<M, R, true, kNorm, kRope>, grid, threads, smem, stream, a)
               : launch_kernel(gemv_kernel<M, R, false, kNorm, kRope>, grid, threads, smem, stream, a);
}

template <int M, bool kNorm>
cudaError_t launch_norm(const GemmArgs& a, cudaStream_t stream) {
  if (a.qkv.positions != nullptr) return launch_rows<M, 2, kNorm, true>(a, stream);
  return a.silu_mul ? launch_rows<M, 2, kNorm>(a, stream) : launch_rows<M, 1, kNorm>(a, stream);
}

template <int M>
cudaError_t launch(const GemmArgs& a, cudaStream_t stream) {
  if constexpr (M <= kGemvMaxNormRows) {
    if (a.norm_residual != nullptr) return launch_norm<M, true>(a, stream);
  }
  return launch_norm<M, false>(a, stream);
}

}  // namespace

bool gemv_supported(const GemmArgs& a) {
  const bool norm = a.norm_residual != nullptr;
  if (norm && (a.m > kGemvMaxNormRows || a.norm_weight == nullptr || !aligned16(a.norm_residual) ||
               !aligned16(a.norm_weight) || size_t(a.m) * size_t(a.k) * sizeof(bf16) > kGemvMaxNormSmem))
    return false;
  if (a.accumulate && (!a.out_f32 || a.silu_mul || norm)) return false;
  if (const GemmArgs::QkvEpilogue& e = a.qkv; e.positions != nullptr) {
    const int64_t hd = e.head_dim;
    if (a.silu_mul || a.accumulate || a.out_f32 || hd <= 0 || hd % 2 != 0 || e.num_q_heads <= 0 ||
        e.num_kv_heads <= 0 || a.n != (e.num_q_heads + 2 * int64_t(e.num_kv_heads)) * hd || e.cos_sin == nullptr ||
        e.slot_mapping == nullptr || e.k_cache == nullptr || e.v_cache == nullptr)
      return false;
  }
  return !a.in_f32 && (!a.silu_mul || a.bias == nullptr) && a.m >= 1 && a.m <= kGemvMaxRows && a.k % kVec == 0 &&
         (norm || (a.x_row_stride % kVec == 0 && aligned16(a.x))) && aligned16(a.w) && a.out_row_stride >= a.n;
}

cudaError_t gemv(const GemmArgs& a, cudaStream_t stream) {
  switch (a.m) {
    case 1: return launch<1>(a, stream);
    case 2: return launch<2>(a, stream);
    case 3: return launch<3>(a, stream);
    case 4: return launch<4>(a, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace vela::kernels

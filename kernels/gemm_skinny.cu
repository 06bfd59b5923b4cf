// Decode-batch linear layers on Hopper's wgmma: out[m, n] = x[m, :] · w[n, :] (+ bias)
// for kSkinnyMinRows <= m <= kSkinnyMaxRows (a decode step of several sequences). A
// small model's projection at such a batch is a few MB of weights and little work:
// cuBLASLt's kernels take 7-13 us for Qwen3-0.6B's at m <= 64 where this one takes
// 5.6-8.6 (H200; even at m = 64 for qkv and gate_up), so Gemm::run uses it there
// (kSkinnyPreferred*). From m = 128, and on
// Llama-8B's matrices, cuBLASLt is faster: this kernel's main loop (cp.async stages
// and a block-wide wait per k step) does not keep the tensor cores busy; PERF_NOTES
// (ninth session) has the figures and what a faster loop needs.
//
// The roles are swapped (out^T = w · x^T): a CTA owns 128 weight rows (the MMA's M,
// two warpgroups of 64) and a tile of T tokens (the MMA's N, 64 or 128: one wgmma
// covers the whole batch tile), so a weight row is read once per token tile. Both
// operands stream into shared memory by cp.async in the 128-byte swizzle layout
// (K-major, 64 k a stage, kStages stages), and each stage is four m64nTk16 wgmmas
// per warpgroup. Where the output tiles alone would leave SMs idle (o and down have
// n = 1024: 8 tiles), k is split over a thread-block cluster of up to 8 CTAs; each
// stages its fp32 partial tile in its own shared memory and, after a cluster barrier,
// reduces a slice of the tile's token rows over its peers' shared memory (no partial
// ever goes to global memory), adds the bias and writes the output.
// Launched with PDL: the first stages' weights load before the wait.
#include <cooperative_groups.h>

#include <algorithm>
#include <cstdlib>

#include "kernels/gemm.h"
#include "kernels/launch.cuh"
#include "kernels/async_copy.cuh"
#include "kernels/vec.cuh"
#include "kernels/wgmma.cuh"

namespace vela::kernels {
namespace {

namespace cg = cooperative_groups;

constexpr int kThreads = 256;     // two warpgroups
constexpr int kTileRows = 128;    // weight rows (output columns) a CTA owns
constexpr int kKStep = 64;        // k a stage: one 128-byte swizzled row
constexpr int kRowBytes = kKStep * 2;
constexpr int kPitch = kTileRows + 4;  // fp32 staging row (one token): conflict-free fragment writes
constexpr int kMaxSplits = 8;     // portable cluster size

template <int T>
__host__ __device__ constexpr int stage_bytes() {
  return (kTileRows + T) * kRowBytes;
}
template <int T>
__host__ __device__ constexpr int num_stages() {
  return T == 128 ? 3 : 4;  // 96 KB either way: two CTAs an SM
}
template <int T>
__host__ __device__ constexpr int smem_bytes() {
  constexpr int pipe = num_stages<T>() * stage_bytes<T>(), stage_out = T * kPitch * 4;
  return (pipe > stage_out ? pipe : stage_out) + 1024;  // + alignment to a swizzle atom
}

template <int T>
__device__ __forceinline__ void mma_step(float (&acc)[T / 8][4], uint64_t da, uint64_t db) {
  if constexpr (T == 128) wg::mma_m64n128k16_ss(acc, da, db);
  else wg::mma_m64n64k16_ss(acc, da, db);
}

// This thread's share of a stage: rows first, first + 32, ... (kRows / 32 of them) of
// a row-major operand whose rows lie `stride` apart, 16 bytes at column kpos each, into
// dst (its swizzled slot in the stage's first row; rows agreeing mod 8 share the
// swizzle, so row 32 i sits 32 i rows further). Rows from `limit` on are zeros.
template <int kRows>
__device__ __forceinline__ void load_rows(bf16* dst, const bf16* src, int64_t first, int64_t limit, int64_t stride,
                                          int64_t kpos) {
#pragma unroll
  for (int i = 0; i < kRows / 32; ++i) {
    const int64_t r = first + 32 * i;
    const bool valid = r < limit;
    cp_async16(dst + i * 32 * kKStep, valid ? src + r * stride + kpos : src, valid);
  }
}

// grid (n tiles, splits, token tiles), cluster (1, splits, 1).
template <int T>
__global__ void __launch_bounds__(kThreads, 2) skinny_kernel(const GemmArgs a) {
  extern __shared__ uint8_t skinny_smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(skinny_smem_raw) + 1023) & ~uintptr_t(1023));
  constexpr int S = num_stages<T>();
  const int tid = int(threadIdx.x), wgi = tid >> 7;
  const int64_t n0 = int64_t(blockIdx.x) * kTileRows;
  const int64_t t0 = int64_t(blockIdx.z) * T;
  const int splits = int(gridDim.y), split = int(blockIdx.y);
  const int ksteps = int(a.k / kKStep);
  const int s0 = split * ksteps / splits, nk = (split + 1) * ksteps / splits - s0;
  const bf16* w = static_cast<const bf16*>(a.w);
  const bf16* x = static_cast<const bf16*>(a.x);
  // This thread's 16-byte chunk c of rows r0, r0 + 32, ...: rows that agree mod 8, so
  // one swizzled offset serves them all.
  const int c = tid & 7, r0 = tid >> 3;
  const int soff = r0 * kKStep + ((c ^ (r0 & 7)) << 3);
  auto load_w = [&](int stage, int step) {
    load_rows<kTileRows>(reinterpret_cast<bf16*>(smem + stage * stage_bytes<T>()) + soff, w, n0 + r0, a.n, a.k,
                         int64_t(s0 + step) * kKStep + c * 8);
  };
  auto load_x = [&](int stage, int step) {
    load_rows<T>(reinterpret_cast<bf16*>(smem + stage * stage_bytes<T>() + kTileRows * kRowBytes) + soff, x, t0 + r0, a.m,
                 a.x_row_stride, int64_t(s0 + step) * kKStep + c * 8);
  };
  // The first stages' weights before the wait (no kernel of the step writes them),
  // the activations after it (the kernel before wrote them).
#pragma unroll
  for (int s = 0; s < S - 1; ++s)
    if (s < nk) load_w(s, s);
  grid_dependency_wait();
  allow_dependents();
#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < nk) load_x(s, s);
    cp_async_commit();
  }
  float acc[T / 8][4];
#pragma unroll
  for (int j = 0; j < T / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[j][e] = 0.f;
  for (int it = 0; it < nk; ++it) {
    // Stage it has landed (S - 2 newer groups may still be in flight); after the
    // barrier every warpgroup's MMAs of it - 1 are done, so its stage is refilled.
    cp_async_wait<S - 2>();
    wg::fence_async_shared();
    __syncthreads();
    const int next = it + S - 1;
    if (next < nk) {
      load_w(next % S, next);
      load_x(next % S, next);
    }
    cp_async_commit();
    const uint8_t* st = smem + (it % S) * stage_bytes<T>();
    const uint64_t da = wg::desc_sw128(st + wgi * 64 * kRowBytes, 16, 1024);
    const uint64_t db = wg::desc_sw128(st + kTileRows * kRowBytes, 16, 1024);
    wg::fence();
#pragma unroll
    for (int kk = 0; kk < kKStep / 16; ++kk) mma_step<T>(acc, da + 2 * kk, db + 2 * kk);  // +32 bytes a k16
    wg::commit();
    wg::wait<0>();
    wg::fence_operand(acc);
  }
  cp_async_wait<0>();
  __syncthreads();  // the stages are free: the fp32 tile goes there, token-major
  float* so = reinterpret_cast<float*>(smem);
  {
    const int lane = tid & 31, warp = (tid >> 5) & 3;
    const int row = wgi * 64 + warp * 16 + (lane >> 2);  // weight row in the tile
    const int col = 2 * (lane & 3);                       // token in a block of 8
#pragma unroll
    for (int j = 0; j < T / 8; ++j) {
      const int t = 8 * j + col;
      so[t * kPitch + row] = acc[j][0];
      so[(t + 1) * kPitch + row] = acc[j][1];
      so[t * kPitch + row + 8] = acc[j][2];
      so[(t + 1) * kPitch + row + 8] = acc[j][3];
    }
  }
  // Every CTA of the cluster (the k splits of this tile) reduces its slice of the
  // token rows over all the CTAs' staged partials; the second barrier keeps each
  // CTA's shared memory alive until its peers have read it.
  cg::cluster_group cluster = cg::this_cluster();
  if (splits > 1) cluster.sync();
  else __syncthreads();
  const int rows_per = (T + splits - 1) / splits;
  const int cq = (tid & 31) * 4;
  const int64_t col = n0 + cq;
  const bf16* bias = static_cast<const bf16*>(a.bias);
  if (col < a.n) {
    float b[4] = {0.f, 0.f, 0.f, 0.f};
    if (bias != nullptr) {
#pragma unroll
      for (int e = 0; e < 4; ++e) b[e] = to_f32(bias[col + e]);
    }
    const int tr_end = min((split + 1) * rows_per, T);  // an uneven split's last slice ends at the tile
    for (int tr = split * rows_per + (tid >> 5); tr < tr_end && t0 + tr < a.m; tr += kThreads / 32) {
      float v[4] = {b[0], b[1], b[2], b[3]};
      for (int q = 0; q < splits; ++q) {
        const float* peer = splits > 1 ? cluster.map_shared_rank(so, q) : so;
        const float4 p = *reinterpret_cast<const float4*>(peer + tr * kPitch + cq);
        v[0] += p.x;
        v[1] += p.y;
        v[2] += p.z;
        v[3] += p.w;
      }
      const int64_t o = (t0 + tr) * a.out_row_stride + col;
      if (a.out_f32) {
        *reinterpret_cast<float4*>(static_cast<float*>(a.out) + o) = make_float4(v[0], v[1], v[2], v[3]);
      } else {
        __nv_bfloat162 lo = __floats2bfloat162_rn(v[0], v[1]), hi = __floats2bfloat162_rn(v[2], v[3]);
        uint2 packed;
        packed.x = *reinterpret_cast<uint32_t*>(&lo);
        packed.y = *reinterpret_cast<uint32_t*>(&hi);
        *reinterpret_cast<uint2*>(static_cast<bf16*>(a.out) + o) = packed;
      }
    }
  }
  if (splits > 1) cluster.sync();
}

template <int T>
cudaError_t launch(const GemmArgs& a, int splits, cudaStream_t stream) {
  constexpr int smem = smem_bytes<T>();
  if (auto e = allow_dynamic_smem<skinny_kernel<T>>(smem); e != cudaSuccess) return e;
  const int64_t n_tiles = (a.n + kTileRows - 1) / kTileRows, t_tiles = (a.m + T - 1) / T;
  const int ksteps = int(a.k / kKStep);
  if (splits <= 0) {
    // Split k (a cluster of 2, 4 or 8) while the CTAs fill at most 3/4 of the GPU at
    // two an SM and every split keeps 2+ stages (bench_linear_gpu on the H200, m <= 64:
    // Qwen3-0.6B's qkv 6.1-7.6 us at 4 splits, 9.0-11.6 at 8; its gate_up 7.2-8.6 at
    // 4, 8.3-9.3 at 2; o and down best at 8).
    const int64_t capacity = 2 * int64_t(sm_count());
    splits = 1;
    while (splits < kMaxSplits && n_tiles * t_tiles * splits * 2 <= capacity * 3 / 4 && ksteps / (splits * 2) >= 2) splits *= 2;
  }
  splits = std::min(std::min(splits, kMaxSplits), ksteps);
  return launch_kernel_clustered(skinny_kernel<T>, dim3(unsigned(n_tiles), unsigned(splits), unsigned(t_tiles)),
                                 dim3(1, unsigned(splits), 1), dim3(kThreads), smem, stream, a);
}

}  // namespace

bool skinny_gemm_enabled() {
  // VELA_SKINNY_GEMM=0 / 1: off / on for A/B runs; unset: on for sm_90.
  static const int forced = [] {
    const char* e = std::getenv("VELA_SKINNY_GEMM");
    return e == nullptr || e[0] == '\0' ? -1 : e[0] == '1' ? 1 : 0;
  }();
  if (forced >= 0) return forced == 1;
  return device_major() == 9;
}

bool skinny_gemm_supported(const GemmArgs& a) {
  return !a.in_f32 && !a.silu_mul && a.norm_residual == nullptr && !a.accumulate && (a.bias == nullptr || !a.out_f32) &&
         a.m >= kSkinnyMinRows && a.m <= kSkinnyMaxRows && a.k % kKStep == 0 && a.n % 4 == 0 &&
         a.x_row_stride % 8 == 0 && a.out_row_stride % 4 == 0 && aligned16(a.x) && aligned16(a.w) &&
         (reinterpret_cast<uintptr_t>(a.out) & (a.out_f32 ? 15u : 7u)) == 0 && a.x_row_stride >= a.k &&
         a.out_row_stride >= a.n;
}

cudaError_t skinny_gemm(const GemmArgs& a, cudaStream_t stream, int splits) {
  if (!skinny_gemm_supported(a)) return cudaErrorInvalidValue;
  return a.m <= 64 ? launch<64>(a, splits, stream) : launch<128>(a, splits, stream);
}

}  // namespace vela::kernels

// Decode-batch linear layers on Hopper's wgmma: out[m, n] = x[m, :] · w[n, :] (+ bias)
// for kSkinnyMinRows <= m <= kSkinnyMaxRows (a decode step of several sequences). A
// small model's projection at such a batch is a few MB of weights and little work:
// cuBLASLt's kernels take 9.6-14.6 us for Qwen3-0.6B's at m = 4-64 where this one
// takes 5.1-9.0 (H200, bench_linear_gpu), so Gemm::run uses it there
// (kSkinnyPreferred*). At m = 256 (W1 and P1's decode steps) cuBLASLt is faster in
// the model (PERF_NOTES, tenth session), though this kernel at its best split is
// ahead of it on qkv and o in isolation.
//
// The roles are swapped (out^T = w · x^T): a CTA owns 128 weight rows (the MMA's M,
// two warpgroups of 64) and a tile of 64 tokens (the MMA's N: one wgmma covers the
// tile), so a weight row is read once per token tile. Each stage (64 k) is one TMA box
// of the weights and one of the tokens in the 128-byte swizzle layout, issued by a
// producer warp and completing on the stage's `full` mbarrier; the two consumer
// warpgroups wait on it, issue the stage's four m64n64k16 wgmmas and keep one group
// in flight (wait<1>), releasing the stage before on its `empty` barrier (one arrival
// per warpgroup), which the producer waits on before refilling it. No block-wide
// barrier stands between two k steps. The four stages take 96 KB: two CTAs an SM, so
// the next kernel's CTAs (PDL) and a second tile overlap this one's latency (a
// version with 192 KB of stages, one CTA an SM and a 256-token tile was 1.5-2x
// slower; the cp.async pipeline this replaced, with a block-wide wait a step, 9-13%).
//
// Where the output tiles alone would leave SMs idle (o and down have n = 1024: 8
// tiles), k is split over a thread-block cluster of up to 8 CTAs; each stages its
// fp32 partial tile in its own shared memory and, after a cluster barrier, reduces a
// slice of the tile's token rows over its peers' shared memory (no partial ever goes
// to global memory), adds the bias and writes the output.
// Launched with PDL: the first stages' weights load before the wait.
#include <cooperative_groups.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cstdlib>

#include "kernels/gemm.h"
#include "kernels/launch.cuh"
#include "kernels/tma.cuh"
#include "kernels/vec.cuh"
#include "kernels/wgmma.cuh"

namespace vela::kernels {
namespace {

namespace cg = cooperative_groups;

constexpr int kConsumers = 256;            // two warpgroups
constexpr int kThreads = kConsumers + 32;  // and the producer warp
constexpr int kTileRows = 128;             // weight rows (output columns) a CTA owns
constexpr int kTokens = 64;                // tokens a CTA owns (the MMA's N)
constexpr int kKStep = 64;                 // k a stage: one 128-byte swizzled row
constexpr int kRowBytes = kKStep * 2;
constexpr int kWeightBytes = kTileRows * kRowBytes;
constexpr int kStageBytes = (kTileRows + kTokens) * kRowBytes;
constexpr int kStages = 4;
constexpr int kPitch = kTileRows + 4;  // fp32 staging row (one token): conflict-free fragment writes
constexpr int kSmemBytes = std::max(kStages * kStageBytes, kTokens * kPitch * 4) + 1024;  // + alignment
constexpr int kMaxSplits = 8;          // portable cluster size

// Entered by every thread of the CTA once its MMAs are done and the stages are free
// (after a __syncthreads): the two warpgroups stage the fp32 tile in shared memory,
// token-major; every CTA of the cluster (the k splits of this tile) then reduces its
// slice of the token rows over all the CTAs' staged partials, adds the bias and writes
// the output; the second cluster barrier keeps each CTA's shared memory alive until
// its peers have read it.
__device__ __forceinline__ void reduce_and_store(const GemmArgs& a, uint8_t* smem, const float (&acc)[kTokens / 8][4],
                                                 int tid, int64_t n0, int64_t t0, int split, int splits) {
  float* so = reinterpret_cast<float*>(smem);
  if (tid < kConsumers) {
    const int lane = tid & 31, warp = (tid >> 5) & 3, wgi = tid >> 7;
    const int row = wgi * 64 + warp * 16 + (lane >> 2);  // weight row in the tile
    const int col = 2 * (lane & 3);                       // token in a block of 8
#pragma unroll
    for (int j = 0; j < kTokens / 8; ++j) {
      const int t = 8 * j + col;
      so[t * kPitch + row] = acc[j][0];
      so[(t + 1) * kPitch + row] = acc[j][1];
      so[t * kPitch + row + 8] = acc[j][2];
      so[(t + 1) * kPitch + row + 8] = acc[j][3];
    }
  }
  cg::cluster_group cluster = cg::this_cluster();
  if (splits > 1) cluster.sync();
  else __syncthreads();
  const int rows_per = (kTokens + splits - 1) / splits;
  const int cq = (tid & 31) * 4;
  const int64_t col = n0 + cq;
  const bf16* bias = static_cast<const bf16*>(a.bias);
  if (tid < kConsumers && col < a.n) {
    float b[4] = {0.f, 0.f, 0.f, 0.f};
    if (bias != nullptr) {
#pragma unroll
      for (int e = 0; e < 4; ++e) b[e] = to_f32(bias[col + e]);
    }
    const int tr_end = min((split + 1) * rows_per, kTokens);  // an uneven split's last slice ends at the tile
    for (int tr = split * rows_per + (tid >> 5); tr < tr_end && t0 + tr < a.m; tr += kConsumers / 32) {
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

// grid (n tiles, splits, token tiles), cluster (1, splits, 1).
__global__ void __launch_bounds__(kThreads, 2)
    skinny_kernel(const GemmArgs a, const __grid_constant__ CUtensorMap tw, const __grid_constant__ CUtensorMap tx) {
  extern __shared__ uint8_t skinny_smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(skinny_smem_raw) + 1023) & ~uintptr_t(1023));
  __shared__ __align__(8) uint64_t full[kStages], empty[kStages];
  const int tid = int(threadIdx.x), wgi = tid >> 7;
  const int64_t n0 = int64_t(blockIdx.x) * kTileRows;
  const int64_t t0 = int64_t(blockIdx.z) * kTokens;
  const int splits = int(gridDim.y), split = int(blockIdx.y);
  const int ksteps = int(a.k / kKStep);
  const int s0 = split * ksteps / splits, nk = (split + 1) * ksteps / splits - s0;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      tma::mbar_init(&full[s], 1);
      tma::mbar_init(&empty[s], 2);
    }
    tma::mbar_init_fence();
  }
  __syncthreads();
  float acc[kTokens / 8][4];
#pragma unroll
  for (int j = 0; j < kTokens / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[j][e] = 0.f;
  if (wgi == 2) {  // the producer warp; one lane issues
    if (tid == kConsumers) {
      tma::prefetch_map(&tw);
      tma::prefetch_map(&tx);
      // The first stages' weights before the wait (no kernel of the step writes
      // them), the activations after it (the kernel before wrote them).
      const int pre = nk < kStages ? nk : kStages;
      for (int s = 0; s < pre; ++s) {
        tma::mbar_arrive_expect_tx(&full[s], kStageBytes);
        tma::load_box(smem + s * kStageBytes, &tw, &full[s], (s0 + s) * kKStep, int32_t(n0));
      }
      grid_dependency_wait();
      allow_dependents();
      for (int s = 0; s < pre; ++s)
        tma::load_box(smem + s * kStageBytes + kWeightBytes, &tx, &full[s], (s0 + s) * kKStep, int32_t(t0));
      for (int it = kStages; it < nk; ++it) {
        const int s = it % kStages;
        tma::mbar_wait(&empty[s], uint32_t((it / kStages - 1) & 1));
        tma::mbar_arrive_expect_tx(&full[s], kStageBytes);
        uint8_t* st = smem + s * kStageBytes;
        tma::load_box(st, &tw, &full[s], (s0 + it) * kKStep, int32_t(n0));
        tma::load_box(st + kWeightBytes, &tx, &full[s], (s0 + it) * kKStep, int32_t(t0));
      }
    } else {
      grid_dependency_wait();
      allow_dependents();
    }
    __syncwarp();
  } else {
    grid_dependency_wait();
    allow_dependents();
    for (int it = 0; it < nk; ++it) {
      const int s = it % kStages;
      tma::mbar_wait(&full[s], uint32_t((it / kStages) & 1));
      const uint8_t* st = smem + s * kStageBytes;
      const uint64_t da = wg::desc_sw128(st + wgi * 64 * kRowBytes, 16, 1024);
      const uint64_t db = wg::desc_sw128(st + kWeightBytes, 16, 1024);
      wg::fence();
#pragma unroll
      for (int kk = 0; kk < kKStep / 16; ++kk) wg::mma_m64n64k16_ss(acc, da + 2 * kk, db + 2 * kk);  // +32 bytes a k16
      wg::commit();
      wg::wait<1>();  // the group of step it - 1 is done: its stage may be refilled
      wg::fence_operand(acc);
      if (it > 0 && (tid & 127) == 0) tma::mbar_arrive(&empty[(it - 1) % kStages]);
    }
    wg::wait<0>();
    wg::fence_operand(acc);
  }
  __syncthreads();  // every stage consumed: the fp32 tile goes there
  reduce_and_store(a, smem, acc, tid, n0, t0, split, splits);
}

// Split k (a cluster of 2, 4 or 8) while the CTAs fill at most 3/4 of the SMs at one
// an SM and every split keeps 2+ stages. bench_linear_gpu on the H200, Qwen3-0.6B at
// m = 4-128: qkv best at 2 splits, gate_up at 1-2, o and down at 4-8; 3/4 of two an
// SM (the cp.async kernel's rule) split qkv and gate_up one step further, up to
// 1.6 us slower.
int auto_splits(int64_t ctas_unsplit, int ksteps) {
  const int64_t capacity = int64_t(sm_count()) * 3 / 4;
  int splits = 1;
  while (splits < kMaxSplits && ctas_unsplit * splits * 2 <= capacity && ksteps / (splits * 2) >= 2) splits *= 2;
  return splits;
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
  if (auto e = allow_dynamic_smem<skinny_kernel>(kSmemBytes); e != cudaSuccess) return e;
  CUtensorMap tw, tx;
  if (!tma::encode_rows_sw128(&tw, a.w, a.n, a.k, a.k, kTileRows) ||
      !tma::encode_rows_sw128(&tx, a.x, a.m, a.k, a.x_row_stride, kTokens))
    return cudaErrorInvalidValue;
  const int64_t n_tiles = (a.n + kTileRows - 1) / kTileRows, t_tiles = (a.m + kTokens - 1) / kTokens;
  const int ksteps = int(a.k / kKStep);
  if (splits <= 0) splits = auto_splits(n_tiles * t_tiles, ksteps);
  splits = std::min(std::min(splits, kMaxSplits), ksteps);
  return launch_kernel_clustered(skinny_kernel, dim3(unsigned(n_tiles), unsigned(splits), unsigned(t_tiles)),
                                 dim3(1, unsigned(splits), 1), dim3(kThreads), kSmemBytes, stream, a, tw, tx);
}

namespace tma {

bool encode_rows_sw128(CUtensorMap* map, const void* base, int64_t rows, int64_t cols, int64_t row_stride,
                       uint32_t box_rows) {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      return PFN_cuTensorMapEncodeTiled_v12000(nullptr);
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  if (encode == nullptr || rows <= 0 || cols <= 0 || box_rows == 0 || box_rows > 256) return false;
  const cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(row_stride) * 2};  // bytes, the outer dimension's
  const cuuint32_t box[2] = {cuuint32_t(kKStep), box_rows};
  const cuuint32_t elem_strides[2] = {1, 1};
  return encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims, strides, box, elem_strides,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace tma

}  // namespace vela::kernels

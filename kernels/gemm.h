#pragma once
// GEMMs through cuBLASLt: out[M, N] = x[M, K] · w[N, K]^T (+ bias[N]). Inputs bf16
// (fp32 accumulation, bf16 or fp32 output: fp32 for logits) or fp32 (model.dtype
// float32: fp32 output, CUBLAS_COMPUTE_32F, true fp32 products and sums, never
// TF32, since that mode exists for precision). One handle and one
// workspace per device; the algorithm for each (M, N, K, out type, bias) shape is
// chosen once (heuristic, optionally timed) and cached, so a step does no search.
#include <cstddef>
#include <memory>

#include "common/result.h"
#include "kernels/common.h"

namespace vela::kernels {

struct GemmArgs {
  const void* x = nullptr;  // [m, k], row stride x_row_stride (>= k); bf16, or fp32 when in_f32
  int64_t x_row_stride = 0;
  const void* w = nullptr;  // [n, k] contiguous (torch nn.Linear layout); x's type
  const void* bias = nullptr;  // [n] of x's type, or nullptr
  void* out = nullptr;      // [m, n], row stride out_row_stride (>= n)
  int64_t out_row_stride = 0;
  bool out_f32 = false;     // fp32 output instead of bf16 (always set when in_f32)
  int64_t m = 0, n = 0, k = 0;
  bool in_f32 = false;      // x, w and bias fp32: a true fp32 GEMM (cuBLASLt only, no GEMV)
  // GEMV only, no bias: w is [2n, k] (gate rows, then up rows, as the merged
  // gate_up weight) and out[m, j] = silu(x[m] . w[j]) * (x[m] . w[n + j]), the
  // MLP's projection and activation in one pass over the weights.
  bool silu_mul = false;
  // GEMV only, 1-2 rows: the decode step's RMSNorm and residual add ride in the
  // projections next to them (DecoderModel at TP 1), so no norm kernel runs between.
  // norm_residual: x is not read; input row i is rms_norm(norm_residual[i]) *
  // norm_weight, rounded to bf16 as add_rms_norm writes it (norm_residual fp32
  // [m, k] with rows k apart, norm_weight bf16 [k]); each block derives it into
  // shared memory. accumulate (out_f32, no silu_mul, not with norm_residual): out
  // is the fp32 residual and out[i, j] += the result.
  const float* norm_residual = nullptr;
  const void* norm_weight = nullptr;
  float norm_eps = 0.0f;
  bool accumulate = false;
  // GEMV only (bf16 out, no silu_mul / accumulate): the attention prologue in the
  // merged q|k|v projection's epilogue (qkv.positions set turns it on), for models
  // without q/k norm. w is [(nq + 2 nk) hd, k]; out [m, n] gets the projection as
  // the plain GEMV writes it (bf16), except that q's heads are rotated (RoPE, as
  // qkv_rope_cache does after it), and each row's rotated k and its v go to the
  // paged cache at slot_mapping[row] (skipped where it is < 0). A warp computes the
  // two rows RoPE pairs (i, i + hd / 2 or, interleaved, 2i, 2i + 1) of one head.
  struct QkvEpilogue {
    const int32_t* positions = nullptr;     // [m]
    const float* cos_sin = nullptr;         // [max_positions, hd]: cos, then sin
    const int64_t* slot_mapping = nullptr;  // [m]
    void* k_cache = nullptr;                // bf16 [slots, nk, hd]
    void* v_cache = nullptr;
    int32_t num_q_heads = 0, num_kv_heads = 0, head_dim = 0;
    bool interleaved = false;
  } qkv;
};

class Gemm {
 public:
  // device: the CUDA device this handle serves (the caller has made it current).
  // skinny: decode batches take the wgmma kernel where skinny_gemm_enabled() (false:
  // always cuBLASLt, for benchmarks against it).
  static Result<std::unique_ptr<Gemm>> create(size_t workspace_bytes = size_t(32) << 20, bool skinny = true);
  virtual ~Gemm() = default;
  // Enqueues on stream; errors name the shape and cuBLASLt's status.
  virtual Status run(const GemmArgs& args, cudaStream_t stream) = 0;
};

// The small-batch path (gemv.cu): out = x · w^T (+ bias) for 1 <= m <= kGemvMaxRows
// by a bandwidth-bound matrix-vector kernel (any output type, bias allowed).
// gemv_supported: bf16 inputs, k and x's row stride multiples of 8, x and w 16-byte
// aligned; no bias with silu_mul; norm_residual at m <= 2 with its rows in 48 KB of
// shared memory; accumulate into fp32 out without silu_mul or norm_residual; the
// qkv epilogue into bf16 out at even head dims, n = (nq + 2 nk) hd.
// Launched with PDL (launch.cuh).
inline constexpr int64_t kGemvMaxRows = 4;
bool gemv_supported(const GemmArgs& args);
cudaError_t gemv(const GemmArgs& args, cudaStream_t stream);

// The decode-batch path (gemm_skinny.cu, sm_90 wgmma fed by TMA): out = x · w^T
// (+ bias) for kSkinnyMinRows <= m <= kSkinnyMaxRows, k-split over a thread-block
// cluster where the output tiles alone would leave SMs idle. Gemm::run takes it when
// skinny_gemm_enabled() (sm_90; VELA_SKINNY_GEMM=0 / 1 forces it off / on), within
// the preferred range below, and skinny_gemm_supported: bf16 inputs, k a multiple
// of 64, n and out's row stride multiples of 4, x's row stride a multiple of 8, x
// and w 16-byte aligned, out 8-byte (bf16) / 16-byte (fp32) aligned; no bias with
// fp32 output, no GEMV-only option. splits: the k split (1-8; 0 picks). Launched
// with PDL (launch.cuh).
inline constexpr int64_t kSkinnyMinRows = 3, kSkinnyMaxRows = 256;
// Where Gemm::run takes it (the rest of the supported range stays on cuBLASLt);
// VELA_SKINNY_ROWS=N moves the row limit (A/B runs).
inline constexpr int64_t kSkinnyPreferredRows = 64, kSkinnyPreferredWeights = int64_t(8) << 20;
bool skinny_gemm_enabled();
bool skinny_gemm_supported(const GemmArgs& args);
cudaError_t skinny_gemm(const GemmArgs& args, cudaStream_t stream, int splits = 0);

}  // namespace vela::kernels

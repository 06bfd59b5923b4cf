#pragma once
// Row-wise and element-wise kernels of the decoder: fp32 math over elements of type T,
// the compute dtype (bf16, or float for model.dtype float32). Each takes a Params<T>
// struct and a stream and returns the launch's error; the launchers are explicitly
// instantiated for bf16 and float (qkv_rope_cache: bf16 only). In shapes, T stays
// the number of tokens.
#include <initializer_list>

#include "kernels/common.h"

namespace vela::kernels {

// out[t] = table[ids[t] - vocab_start] when 0 <= ids[t] - vocab_start < num_rows, else zeros.
template <class T>
struct EmbeddingParams {
  const int32_t* ids = nullptr;  // [num_tokens]
  const T* table = nullptr;   // [num_rows, hidden]
  T* out = nullptr;           // [num_tokens, hidden] contiguous
  int64_t num_tokens = 0, num_rows = 0, hidden = 0, vocab_start = 0;
};
template <class T>
cudaError_t embedding(const EmbeddingParams<T>& p, cudaStream_t stream);

// out = x * rsqrt(mean(x^2) + eps) * weight over each head of dim elements.
// x and out are token-major head views [num_tokens, num_heads, dim]; may alias.
// A plain [T, D] tensor is num_heads = 1, stride = D.
template <class T>
struct RmsNormParams {
  const T* x = nullptr;
  T* out = nullptr;
  const T* weight = nullptr;  // [dim]
  int64_t num_tokens = 0, num_heads = 1, dim = 0;
  int64_t x_token_stride = 0, out_token_stride = 0;
  float eps = 1e-6f;
};
template <class T>
cudaError_t rms_norm(const RmsNormParams<T>& p, cudaStream_t stream);

// Fused residual add + RMSNorm (residual kept in fp32):
//   first_layer: residual = x;             x = rms_norm(x) * weight
//   otherwise:   residual += x;            x = rms_norm(residual) * weight
// x [T, D] of T (token stride x_token_stride), residual [T, D] fp32 contiguous.
template <class T>
struct AddRmsNormParams {
  T* x = nullptr;
  float* residual = nullptr;
  const T* weight = nullptr;
  int64_t num_tokens = 0, dim = 0, x_token_stride = 0;
  float eps = 1e-6f;
  bool first_layer = false;
};
template <class T>
cudaError_t add_rms_norm(const AddRmsNormParams<T>& p, cudaStream_t stream);

// Rotates q [T, nq, hd] and k [T, nk, hd] (token-major head views) in place.
// cos_sin [max_positions, hd] fp32: cos(p * f_i) in [:hd/2], sin in [hd/2:].
// interleaved: pairs (2i, 2i+1); otherwise neox halves (i, i + hd/2).
template <class T>
struct RopeParams {
  const int32_t* positions = nullptr;  // [T]
  T* q = nullptr;
  T* k = nullptr;
  const float* cos_sin = nullptr;
  int64_t num_tokens = 0, num_q_heads = 0, num_kv_heads = 0, head_dim = 0;
  int64_t q_token_stride = 0, k_token_stride = 0;
  bool interleaved = false;
};
template <class T>
cudaError_t rope(const RopeParams<T>& p, cudaStream_t stream);

// out[T, I] = silu(gate_up[:, :I]) * gate_up[:, I:]; both contiguous.
template <class T>
struct SiluAndMulParams {
  const T* gate_up = nullptr;  // [T, 2I]
  T* out = nullptr;            // [T, I]
  int64_t num_tokens = 0, intermediate = 0;
};
template <class T>
cudaError_t silu_and_mul(const SiluAndMulParams<T>& p, cudaStream_t stream);

// Writes k, v [T, nk, hd] (token-major head views) into the paged caches
// [num_blocks, block_size, nk, hd] at slot_mapping[t] (= block * block_size + offset);
// a negative slot skips the token.
template <class T>
struct ReshapeAndCacheParams {
  const T* k = nullptr;
  const T* v = nullptr;
  int64_t k_token_stride = 0, v_token_stride = 0;
  T* k_cache = nullptr;
  T* v_cache = nullptr;
  const int64_t* slot_mapping = nullptr;  // [T]
  int64_t num_tokens = 0, num_kv_heads = 0, head_dim = 0;
};
template <class T>
cudaError_t reshape_and_cache(const ReshapeAndCacheParams<T>& p, cudaStream_t stream);

// The attention prologue fused (qkv_rope_cache.cu): per token, q and k heads get
// RMSNorm by q_norm / k_norm [hd] when given (else none) and RoPE (as rope());
// q is written back in place, k (rotated) and v go to the paged caches at
// slot_mapping[t] (negative: skipped). k and v are only read. head_dim 64, 128 or
// 256 with even strides and 4-byte-aligned bases (qkv_rope_cache_supported).
struct QkvRopeCacheParams {
  bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;
  int64_t q_token_stride = 0, k_token_stride = 0, v_token_stride = 0;
  const bf16* q_norm = nullptr;  // [hd] or null
  const bf16* k_norm = nullptr;  // [hd] or null
  float eps = 1e-6f;
  const int32_t* positions = nullptr;  // [T]
  const float* cos_sin = nullptr;      // [max_positions, hd]
  bool interleaved = false;
  bf16* k_cache = nullptr;
  bf16* v_cache = nullptr;
  const int64_t* slot_mapping = nullptr;  // [T]
  int64_t num_tokens = 0, num_q_heads = 0, num_kv_heads = 0, head_dim = 0;
};
bool qkv_rope_cache_supported(int64_t head_dim, std::initializer_list<const void*> ptrs,
                              std::initializer_list<int64_t> strides);
cudaError_t qkv_rope_cache(const QkvRopeCacheParams& p, cudaStream_t stream);

// out[i] = x[rows[i]]; x [T, D] with token stride x_token_stride, out [S, D] contiguous.
template <class T>
struct GatherRowsParams {
  const T* x = nullptr;
  const int32_t* rows = nullptr;  // [S]
  T* out = nullptr;
  int64_t num_rows = 0, dim = 0, x_token_stride = 0;
};
template <class T>
cudaError_t gather_rows(const GatherRowsParams<T>& p, cudaStream_t stream);

// Seeded "dummy" weights, element for element what model/weights.cpp's CPU
// DummyWeights produces (rounded to bf16 when T is bf16): the slice [outer, length, inner] of a
// tensor viewed as [outer, dim_size, inner], starting at row `start` of the middle
// dim; rows past dim_size are zero. Element at flat source index s (in the full
// tensor) is (2u - 1) * half_width with u = float(splitmix64(key + s) >> 40) / 2^24,
// or 1 when is_norm.
template <class T>
struct DummyFillParams {
  T* out = nullptr;  // [outer, length, inner] contiguous
  uint64_t key = 0;     // splitmix64(seed ^ fnv1a(name))
  float half_width = 0;
  bool is_norm = false;
  int64_t outer = 1, dim_size = 0, start = 0, length = 0, inner = 1;
};
template <class T>
cudaError_t dummy_fill(const DummyFillParams<T>& p, cudaStream_t stream);

// out[i] = float(in[i]) for i < n: bf16 weights widened on the device when the
// compute dtype is float32 (model/weights.cpp uploads them as stored, then widens).
cudaError_t widen_bf16(const bf16* in, float* out, int64_t n, cudaStream_t stream);

}  // namespace vela::kernels

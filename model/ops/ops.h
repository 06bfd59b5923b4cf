#pragma once
// The ops the models are written against. Each dispatches on the DeviceContext:
// the CPU backend (ops/cpu/) computes in fp32; the CUDA backend (ops/cuda/, kernels/)
// keeps weights and activations in the compute dtype (bf16, or fp32 for model.dtype
// float32) with fp32 math, the residual stream in fp32,
// and enqueues everything on ctx.stream (no host synchronisation inside an op).
// Shapes: T tokens, H hidden, D last dim, nq/nk query/kv heads, hd head_dim.
// Tensors may be row-strided views (e.g. q/k/v inside one fused qkv buffer) but
// their last dimension is always contiguous.
#include <cstdint>

#include "model/device.h"
#include "model/forward_batch.h"
#include "model/tensor.h"

namespace vela::ops {

// out[t] = table[ids[t] - vocab_start] if that row exists, else zeros (a
// vocab-parallel shard holds rows [vocab_start, vocab_start + R)).
// ids [T] i32, table [R, H], out [T, H].
void embedding(const DeviceContext& ctx, const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out);

// out[M, N] = x[M, K] · w[N, K]^T (+ bias[N]). On CUDA out may be F32 (logits) or
// the compute dtype.
void linear(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out);

// out = x * rsqrt(mean(x^2) + eps) * w over the last dim. x, out [..., D]; may alias.
void rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& w, float eps, Tensor& out);

// Fused residual + RMSNorm. x [T, D]; residual [T, D] (fp32 on every backend).
//   kStart: residual = x;  x = rms_norm(x) * w      (the first layer)
//   kAdd:   residual += x; x = rms_norm(residual) * w
enum class Residual { kStart, kAdd };
void add_rms_norm(const DeviceContext& ctx, Tensor& x, Tensor& residual, const Tensor& w, float eps,
                  Residual mode = Residual::kAdd);

// Rotates q [T, nq, hd] and k [T, nk, hd] in place by positions [T] i32.
// cos_sin [max_positions, hd]: cos(p * f_i) in [:hd/2], sin in [hd/2:].
// interleaved: pairs (2i, 2i+1); otherwise neox halves (i, i + hd/2).
void rope(const DeviceContext& ctx, const Tensor& positions, Tensor& q, Tensor& k, const Tensor& cos_sin, bool interleaved);

// out[T, I] = silu(gate_up[:, :I]) * gate_up[:, I:]. gate_up [T, 2I].
void silu_and_mul(const DeviceContext& ctx, const Tensor& gate_up, Tensor& out);

// The MLP's first half: out[T, I] = silu_and_mul(x · w^T), w [2I, H] (gate rows,
// then up rows). gate_up [T, 2I] is scratch for the unfused path: the CPU, and on
// CUDA from 3 rows on (a GEMM, then silu_and_mul). At 1-2 rows on CUDA one
// matrix-vector kernel streams each gate row with its up row and writes out
// directly (kernels/gemv.cu), so gate_up is left untouched.
void linear_silu_mul(const DeviceContext& ctx, const Tensor& x, const Tensor& w, Tensor& gate_up, Tensor& out);

// Decode-step fusions (CUDA, bf16, 1-2 rows; DecoderModel takes them at TP 1): the
// residual add after o / down and the RMSNorm before qkv / gate_up ride in those
// projections' matrix-vector kernel (kernels/gemv.cu), so no norm kernel runs
// between layers. fused_norm_linear_ok: whether a weight w [N, K] (silu_mul: the
// merged gate_up) takes it at `rows` rows (false on the CPU); the two ops require it.
bool fused_norm_linear_ok(const DeviceContext& ctx, int64_t rows, const Tensor& w, bool silu_mul);
// residual [T, N] (fp32) += x [T, K] · w^T (+ bias).
void linear_add(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& residual);
// x = rms_norm(residual) * norm_w (as add_rms_norm writes it, never stored); out =
// x · w^T (+ bias), or with silu_mul (w [2I, H], no bias) out [T, I] = silu_and_mul
// of it. residual [T, H] fp32, contiguous.
void norm_linear(const DeviceContext& ctx, const Tensor& residual, const Tensor& norm_w, float eps, const Tensor& w,
                 const Tensor* bias, bool silu_mul, Tensor& out);

// What qkv_rope_cache takes besides q, k and v (no q/k norm).
struct QkvPrologue {
  int64_t num_q_heads = 0, num_kv_heads = 0, head_dim = 0;
  const Tensor* positions = nullptr;  // [T] i32
  const Tensor* cos_sin = nullptr;    // the rope table
  bool interleaved = false;
  LayerKVCache* cache = nullptr;
  const ForwardBatch* batch = nullptr;
};
// The q|k|v projection with the attention prologue of a model without q/k norm in
// its epilogue (CUDA, bf16, 1-2 rows; the same matrix-vector kernel as norm_linear):
// out [T, (nq + 2 nk) hd] = in · w^T (+ bias), where in is x [T, H] (bf16), or with
// norm_w the fp32 residual normalised as norm_linear does; then what qkv_rope_cache
// does to q, k and v (views of out) happens before the kernel ends: q rotated in
// place, rotated k and v in the cache. fused_qkv_prologue_ok: whether w takes it at
// `rows` rows (false on the CPU); the op requires it.
bool fused_qkv_prologue_ok(const DeviceContext& ctx, int64_t rows, const Tensor& w, int64_t head_dim);
void linear_qkv_prologue(const DeviceContext& ctx, const Tensor& in, const Tensor* norm_w, float eps, const Tensor& w,
                         const Tensor* bias, Tensor& out, const QkvPrologue& p);

// Writes k, v [T, nk, hd] into the paged cache rows named by batch.slot_mapping.
void reshape_and_cache(const DeviceContext& ctx, const Tensor& k, const Tensor& v, LayerKVCache& cache, const ForwardBatch& batch);

// The attention prologue: q [T, nq, hd] and k [T, nk, hd] get RMSNorm over each
// head by q_norm / k_norm [hd] when given (null: none), then RoPE (as rope());
// q is left in place, k (rotated) and v are written to the cache (as
// reshape_and_cache). k's own contents afterwards are unspecified. On CUDA one
// fused kernel (kernels/qkv_rope_cache.cu, bf16 only) where the shapes allow.
void qkv_rope_cache(const DeviceContext& ctx, Tensor& q, Tensor& k, const Tensor& v, const Tensor* q_norm,
                    const Tensor* k_norm, float eps, const Tensor& positions, const Tensor& cos_sin, bool interleaved,
                    LayerKVCache& cache, const ForwardBatch& batch);

// out [T, nq, hd] = causal softmax(q k^T * scale) v over each sequence's paged
// keys (cached and new). q [T, nq, hd]; nq a multiple of the cache's nk (GQA).
// workspace: scratch the CUDA kernels may use (sized by attention_workspace_bytes).
void paged_attention(const DeviceContext& ctx, const Tensor& q, const LayerKVCache& cache, const ForwardBatch& batch,
                     float scale, Tensor& out, Tensor& workspace);

// Bytes of attention scratch for batches of up to max_tokens rows (0 on the CPU).
size_t attention_workspace_bytes(const DeviceContext& ctx, int64_t max_tokens, int64_t num_q_heads, int64_t head_dim);

// out[i] = x[rows[i]]. x [T, D], rows [S] i32, out [S, D].
void gather_rows(const DeviceContext& ctx, const Tensor& x, const Tensor& rows, Tensor& out);

}  // namespace vela::ops

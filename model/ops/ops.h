#pragma once
// The ops the models are written against. Each dispatches on its tensors' device:
// the CPU backend (ops/cpu/) computes in fp32; the CUDA backend plugs in here.
// Shapes: T tokens, H hidden, D last dim, nq/nk query/kv heads, hd head_dim.
// Tensors may be row-strided views (e.g. q/k/v inside one fused qkv buffer) but
// their last dimension is always contiguous.
#include <cstdint>

#include "model/forward_batch.h"
#include "model/tensor.h"

namespace vela::ops {

// out[t] = table[ids[t] - vocab_start] if that row exists, else zeros (a
// vocab-parallel shard holds rows [vocab_start, vocab_start + R)).
// ids [T] i32, table [R, H], out [T, H].
void embedding(const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out);

// out[M, N] = x[M, K] · w[N, K]^T (+ bias[N]).
void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out);

// out = x * rsqrt(mean(x^2) + eps) * w over the last dim. x, out [..., D]; may alias.
void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out);

// Fused residual: residual += x; x = rms_norm(residual) * w. x, residual [T, D].
void add_rms_norm(Tensor& x, Tensor& residual, const Tensor& w, float eps);

// Rotates q [T, nq, hd] and k [T, nk, hd] in place by positions [T] i32.
// cos_sin [max_positions, hd]: cos(p * f_i) in [:hd/2], sin in [hd/2:].
// interleaved: pairs (2i, 2i+1); otherwise neox halves (i, i + hd/2).
void rope(const Tensor& positions, Tensor& q, Tensor& k, const Tensor& cos_sin, bool interleaved);

// out[T, I] = silu(gate_up[:, :I]) * gate_up[:, I:]. gate_up [T, 2I].
void silu_and_mul(const Tensor& gate_up, Tensor& out);

// Writes k, v [T, nk, hd] into the paged cache rows named by batch.slot_mapping.
void reshape_and_cache(const Tensor& k, const Tensor& v, LayerKVCache& cache, const ForwardBatch& batch);

// out [T, nq, hd] = causal softmax(q k^T * scale) v over each sequence's paged
// keys (cached and new). q [T, nq, hd]; nq a multiple of the cache's nk (GQA).
void paged_attention(const Tensor& q, const LayerKVCache& cache, const ForwardBatch& batch, float scale,
                     Tensor& out);

// out[i] = x[rows[i]]. x [T, D], rows [S] i32, out [S, D].
void gather_rows(const Tensor& x, const Tensor& rows, Tensor& out);

}  // namespace vela::ops

#pragma once
// CUDA implementations of ops/ops.h: translate Tensors into the kernels' Params
// and launch on ctx.stream. Activations and weights in the compute dtype (bf16, or
// fp32 for model.dtype float32), fp32 residual and logits.
#include <cstddef>

#include "model/device.h"
#include "model/forward_batch.h"
#include "model/tensor.h"

namespace vela::ops {
struct QkvPrologue;  // ops.h
}

namespace vela::ops::cuda {

void embedding(const DeviceContext& ctx, const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out);
void linear(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out);
void linear_silu_mul(const DeviceContext& ctx, const Tensor& x, const Tensor& w, Tensor& gate_up, Tensor& out);
bool fused_norm_linear_ok(const DeviceContext& ctx, int64_t rows, const Tensor& w, bool silu_mul);
void linear_add(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& residual);
void norm_linear(const DeviceContext& ctx, const Tensor& residual, const Tensor& norm_w, float eps, const Tensor& w,
                 const Tensor* bias, bool silu_mul, Tensor& out);
bool fused_qkv_prologue_ok(const DeviceContext& ctx, int64_t rows, const Tensor& w, int64_t head_dim);
void linear_qkv_prologue(const DeviceContext& ctx, const Tensor& in, const Tensor* norm_w, float eps, const Tensor& w,
                         const Tensor* bias, Tensor& out, const QkvPrologue& p);
void rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& w, float eps, Tensor& out);
void add_rms_norm(const DeviceContext& ctx, Tensor& x, Tensor& residual, const Tensor& w, float eps, bool first_layer);
void rope(const DeviceContext& ctx, const Tensor& positions, Tensor& q, Tensor& k, const Tensor& cos_sin,
          bool interleaved);
void silu_and_mul(const DeviceContext& ctx, const Tensor& gate_up, Tensor& out);
void reshape_and_cache(const DeviceContext& ctx, const Tensor& k, const Tensor& v, LayerKVCache& cache,
                       const ForwardBatch& batch);
void qkv_rope_cache(const DeviceContext& ctx, Tensor& q, Tensor& k, const Tensor& v, const Tensor* q_norm,
                    const Tensor* k_norm, float eps, const Tensor& positions, const Tensor& cos_sin, bool interleaved,
                    LayerKVCache& cache, const ForwardBatch& batch);
void paged_attention(const DeviceContext& ctx, const Tensor& q, const LayerKVCache& cache, const ForwardBatch& batch,
                     float scale, Tensor& out, Tensor& workspace);
size_t attention_workspace_bytes(int64_t max_tokens, int64_t num_q_heads, int64_t head_dim);
void gather_rows(const DeviceContext& ctx, const Tensor& x, const Tensor& rows, Tensor& out);

}  // namespace vela::ops::cuda

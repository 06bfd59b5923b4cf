#pragma once
// CPU (fp32) implementations of ops/ops.h; call through ops:: which dispatches.
#include "model/forward_batch.h"
#include "model/tensor.h"

namespace vela::ops::cpu {

void embedding(const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out);
void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out);
void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out);
void add_rms_norm(Tensor& x, Tensor& residual, const Tensor& w, float eps);
void rope(const Tensor& positions, Tensor& q, Tensor& k, const Tensor& cos_sin, bool interleaved);
void silu_and_mul(const Tensor& gate_up, Tensor& out);
void reshape_and_cache(const Tensor& k, const Tensor& v, LayerKVCache& cache, const ForwardBatch& batch);
void paged_attention(const Tensor& q, const LayerKVCache& cache, const ForwardBatch& batch, float scale,
                     Tensor& out);
void gather_rows(const Tensor& x, const Tensor& rows, Tensor& out);

}  // namespace vela::ops::cpu

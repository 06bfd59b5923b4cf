#include "model/layers/linear.h"

#include <cstring>

#include "model/communicator.h"
#include "model/ops/ops.h"

namespace vela {

namespace {
// Copies part tensors (each [rows_i, cols] or [rows_i], on one device) one after another.
Result<Tensor> concat_rows(const std::vector<Tensor>& parts, const DeviceContext& ctx) {
  if (parts.size() == 1) return parts[0];
  int64_t rows = 0;
  for (const auto& p : parts) rows += p.size(0);
  const Tensor& first = parts[0];
  Tensor out = first.ndim() == 2 ? Tensor::zeros({rows, first.size(1)}, first.dtype(), first.device())
                                 : Tensor::zeros({rows}, first.dtype(), first.device());
  int64_t row = 0;
  for (const auto& p : parts) {
    Tensor dst = out.narrow(0, row, p.size(0));
    VELA_TRY(copy_tensor(p, dst, ctx));
    row += p.size(0);
  }
  return out;
}
}  // namespace

Result<Linear> Linear::load_column(WeightSource& src, const std::vector<Part>& parts, int64_t in_features,
                                   bool has_bias) {
  std::vector<Tensor> weights, biases;
  for (const auto& part : parts) {
    VELA_TRY_ASSIGN(Tensor w, src.load(part.name + ".weight", {part.out_features, in_features},
                                       Slice::along(0, part.start, part.length)));
    weights.push_back(std::move(w));
    if (has_bias) {
      VELA_TRY_ASSIGN(Tensor b,
                      src.load(part.name + ".bias", {part.out_features}, Slice::along(0, part.start, part.length)));
      biases.push_back(std::move(b));
    }
  }
  Linear layer;
  VELA_TRY_ASSIGN(layer.weight_, concat_rows(weights, src.target()));
  if (has_bias) {
    VELA_TRY_ASSIGN(layer.bias_, concat_rows(biases, src.target()));
  }
  return layer;
}

Result<Linear> Linear::load_row(WeightSource& src, const std::string& name, int64_t out_features,
                                int64_t in_features, int64_t in_start, int64_t in_length, bool has_bias) {
  Linear layer;
  VELA_TRY_ASSIGN(layer.weight_,
                  src.load(name + ".weight", {out_features, in_features}, Slice::along(1, in_start, in_length)));
  layer.row_parallel_ = true;
  if (has_bias) {
    VELA_TRY_ASSIGN(layer.bias_, src.load(name + ".bias", {out_features}, Slice::whole()));
  }
  return layer;
}

void Linear::forward(const DeviceContext& ctx, const Tensor& x, Tensor& out, Communicator* comm) const {
  const bool reduce = row_parallel_ && comm != nullptr && comm->world_size() > 1;
  if (!reduce) {  // the bias rides in the GEMM's epilogue
    ops::linear(ctx, x, weight_, bias_.defined() ? &bias_ : nullptr, out);
    return;
  }
  ops::linear(ctx, x, weight_, nullptr, out);
  // out is a contiguous [T, out] workspace view, so one collective covers it.
  comm->all_reduce_sum(out.raw_data(), size_t(out.numel()), out.dtype(), ctx.stream);
  if (bias_.defined()) {  // once, after the partial sums are reduced
    const float* b = bias_.data<float>();
    for (int64_t r = 0; r < out.size(0); ++r) {
      float* row = out.data<float>() + r * out.stride(0);
      for (int64_t j = 0; j < out.size(1); ++j) row[j] += b[j];
    }
  }
}

void Linear::forward_silu_mul(const DeviceContext& ctx, const Tensor& x, Tensor& scratch, Tensor& out) const {
  if (bias_.defined() || row_parallel_) {  // not the merged gate_up shape: projection, then activation
    ops::linear(ctx, x, weight_, bias_.defined() ? &bias_ : nullptr, scratch);
    ops::silu_and_mul(ctx, scratch, out);
    return;
  }
  ops::linear_silu_mul(ctx, x, weight_, scratch, out);
}

bool Linear::fusable(const DeviceContext& ctx, int64_t rows, bool silu_mul) const {
  if (silu_mul && (bias_.defined() || row_parallel_)) return false;  // forward_silu_mul's unfused shape
  return ops::fused_norm_linear_ok(ctx, rows, weight_, silu_mul);
}

void Linear::forward_normed(const DeviceContext& ctx, const Tensor& residual, const Tensor& norm_w, float eps,
                            Tensor& out) const {
  ops::norm_linear(ctx, residual, norm_w, eps, weight_, bias_.defined() ? &bias_ : nullptr, false, out);
}

void Linear::forward_silu_mul_normed(const DeviceContext& ctx, const Tensor& residual, const Tensor& norm_w,
                                     float eps, Tensor& out) const {
  ops::norm_linear(ctx, residual, norm_w, eps, weight_, nullptr, true, out);
}

bool Linear::fusable_qkv_prologue(const DeviceContext& ctx, int64_t rows, int64_t head_dim) const {
  return !row_parallel_ && ops::fused_qkv_prologue_ok(ctx, rows, weight_, head_dim);
}

void Linear::forward_qkv_prologue(const DeviceContext& ctx, const Tensor& in, const Tensor* norm_w, float eps,
                                  Tensor& out, const ops::QkvPrologue& p) const {
  ops::linear_qkv_prologue(ctx, in, norm_w, eps, weight_, bias_.defined() ? &bias_ : nullptr, out, p);
}

void Linear::forward_add(const DeviceContext& ctx, const Tensor& x, Tensor& residual) const {
  ops::linear_add(ctx, x, weight_, bias_.defined() ? &bias_ : nullptr, residual);
}

}  // namespace vela

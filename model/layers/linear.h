#pragma once
// Tensor-parallel linear layers, sharded at load time.
// Column-parallel: each rank keeps a slice of the output features (q/k/v by
// heads, gate/up by intermediate columns) and needs no communication. Several
// HF weights can be merged into one (q|k|v, gate|up) so one GEMM serves them.
// Row-parallel: each rank keeps a slice of the input features (o_proj,
// down_proj) and the partial outputs are summed across ranks.
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/device.h"
#include "model/tensor.h"
#include "model/weights.h"

namespace vela {

class Communicator;
namespace ops {
struct QkvPrologue;  // ops.h
}

class Linear {
 public:
  // One HF weight contributing rows [start, start + length) of its out_features.
  struct Part {
    std::string name;          // HF prefix, e.g. "model.layers.0.self_attn.q_proj"
    int64_t out_features = 0;  // full (unsharded) output features
    int64_t start = 0;
    int64_t length = 0;
  };
  // Column-parallel (merged when parts.size() > 1): weight [sum of lengths, in_features].
  static Result<Linear> load_column(WeightSource& src, const std::vector<Part>& parts, int64_t in_features,
                                    bool has_bias);
  // Row-parallel: weight [out_features, in_length], the rank's input columns.
  static Result<Linear> load_row(WeightSource& src, const std::string& name, int64_t out_features,
                                 int64_t in_features, int64_t in_start, int64_t in_length, bool has_bias);

  // out [T, out] = x [T, in] · W^T (+ b). A row-parallel layer all-reduces its
  // partial sums first and adds the bias once, after the reduction.
  void forward(const DeviceContext& ctx, const Tensor& x, Tensor& out, Communicator* comm) const;
  // The merged gate_up layer with the MLP's activation: out [T, I] =
  // silu(gate) * up of x · W^T [T, 2I] (ops::linear_silu_mul; scratch [T, 2I]
  // holds the projection where it is not fused).
  void forward_silu_mul(const DeviceContext& ctx, const Tensor& x, Tensor& scratch, Tensor& out) const;

  // The decode step's fusions at 1-2 rows on CUDA (ops::norm_linear / linear_add),
  // which DecoderModel takes at TP 1 where fusable() says so for every projection.
  // forward_normed: out = rms_norm(residual) * norm_w · W^T (+ b);
  // forward_silu_mul_normed: the same input into forward_silu_mul's activation;
  // forward_add: residual += x · W^T (+ b), a row-parallel layer's all-reduce excluded.
  bool fusable(const DeviceContext& ctx, int64_t rows, bool silu_mul = false) const;
  void forward_normed(const DeviceContext& ctx, const Tensor& residual, const Tensor& norm_w, float eps,
                      Tensor& out) const;
  void forward_silu_mul_normed(const DeviceContext& ctx, const Tensor& residual, const Tensor& norm_w, float eps,
                               Tensor& out) const;
  void forward_add(const DeviceContext& ctx, const Tensor& x, Tensor& residual) const;
  // The merged q|k|v layer with the attention prologue of a model without q/k norm
  // in its kernel (ops::linear_qkv_prologue): in is x, or with norm_w the residual
  // (as forward_normed).
  bool fusable_qkv_prologue(const DeviceContext& ctx, int64_t rows, int64_t head_dim) const;
  void forward_qkv_prologue(const DeviceContext& ctx, const Tensor& in, const Tensor* norm_w, float eps, Tensor& out,
                            const ops::QkvPrologue& p) const;

  int64_t out_features() const { return weight_.size(0); }
  size_t nbytes() const { return weight_.nbytes() + (bias_.defined() ? bias_.nbytes() : 0); }

 private:
  Tensor weight_;
  Tensor bias_;               // undefined when absent
  bool row_parallel_ = false;
};

}  // namespace vela

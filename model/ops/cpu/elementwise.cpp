// RMSNorm (plain and residual-fused), SiLU-and-mul, RoPE.
#include <cmath>

#include "model/ops/cpu/cpu_ops.h"
#include "model/ops/cpu/rows.h"

namespace vela::ops::cpu {

namespace {
// dst = src * rsqrt(mean(src^2) + eps) * w, in fp32 as HF's LlamaRMSNorm does.
void norm_row(const float* src, const float* w, int64_t dim, float eps, float* dst) {
  float sum_sq = 0.0f;
  for (int64_t i = 0; i < dim; ++i) sum_sq += src[i] * src[i];
  float inv = 1.0f / std::sqrt(sum_sq / float(dim) + eps);
  for (int64_t i = 0; i < dim; ++i) dst[i] = w[i] * (src[i] * inv);
}
}  // namespace

void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  int64_t dim = x.size(-1), rows = num_rows(x);
  assert(w.numel() == dim && num_rows(out) == rows);
  for (int64_t r = 0; r < rows; ++r) norm_row(row_ptr<float>(x, r), w.data<float>(), dim, eps, row_ptr<float>(out, r));
}

void add_rms_norm(Tensor& x, Tensor& residual, const Tensor& w, float eps) {
  int64_t dim = x.size(-1), rows = num_rows(x);
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = row_ptr<float>(x, r);
    float* res = row_ptr<float>(residual, r);
    for (int64_t i = 0; i < dim; ++i) res[i] += xr[i];
    norm_row(res, w.data<float>(), dim, eps, xr);
  }
}

void silu_and_mul(const Tensor& gate_up, Tensor& out) {
  int64_t inter = out.size(1), rows = out.size(0);
  assert(gate_up.size(1) == 2 * inter);
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = row_ptr<float>(gate_up, r);
    const float* u = g + inter;
    float* o = row_ptr<float>(out, r);
    for (int64_t i = 0; i < inter; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  }
}

namespace {
// Rotates every head of x [T, heads, hd] of token t by the cos/sin row of its position.
void rotate(Tensor& x, const int32_t* pos, const Tensor& cos_sin, bool interleaved) {
  int64_t tokens = x.size(0), heads = x.size(1), hd = x.size(2), half = hd / 2;
  for (int64_t t = 0; t < tokens; ++t) {
    const float* cs = cos_sin.data<float>() + int64_t(pos[t]) * hd;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = row_ptr<float>(x, t * heads + h);
      for (int64_t i = 0; i < half; ++i) {
        float c = cs[i], s = cs[half + i];
        float* a = interleaved ? v + 2 * i : v + i;
        float* b = interleaved ? v + 2 * i + 1 : v + half + i;
        float x1 = *a, x2 = *b;
        *a = x1 * c - x2 * s;
        *b = x2 * c + x1 * s;
      }
    }
  }
}
}  // namespace

void rope(const Tensor& positions, Tensor& q, Tensor& k, const Tensor& cos_sin, bool interleaved) {
  assert(q.ndim() == 3 && k.ndim() == 3 && cos_sin.size(1) == q.size(2));
  const int32_t* pos = positions.data<int32_t>();
  rotate(q, pos, cos_sin, interleaved);
  rotate(k, pos, cos_sin, interleaved);
}

}  // namespace vela::ops::cpu

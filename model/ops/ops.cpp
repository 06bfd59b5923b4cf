#include "model/ops/ops.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "model/ops/cpu/cpu_ops.h"
#ifdef VELA_HAVE_CUDA
#include "model/ops/cuda/cuda_ops.h"
#define VELA_DISPATCH_CUDA(call) \
  if (ctx.is_cuda()) return cuda::call
#else
#define VELA_DISPATCH_CUDA(call) \
  if (ctx.is_cuda()) return no_backend(#call)
#endif

namespace vela::ops {

namespace {
[[maybe_unused]] void no_backend(const char* op) {
  std::fprintf(stderr, "vela: op %s: CUDA tensors in a build without the CUDA backend\n", op);
  std::abort();
}
// The CPU backend reads host memory; a device tensor here is a programming error.
void require_cpu(const Tensor& t, const char* op) {
  if (t.device().type != DeviceType::kCPU) {
    std::fprintf(stderr, "vela: op %s: a %s tensor given to the CPU backend\n", op, device_name(t.device()).c_str());
    std::abort();
  }
}
}  // namespace

void embedding(const DeviceContext& ctx, const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out) {
  VELA_DISPATCH_CUDA(embedding(ctx, ids, table, vocab_start, out));
  require_cpu(table, "embedding");
  cpu::embedding(ids, table, vocab_start, out);
}
void linear(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) {
  VELA_DISPATCH_CUDA(linear(ctx, x, w, bias, out));
  require_cpu(w, "linear");
  cpu::linear(x, w, bias, out);
}
void rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  VELA_DISPATCH_CUDA(rms_norm(ctx, x, w, eps, out));
  require_cpu(x, "rms_norm");
  cpu::rms_norm(x, w, eps, out);
}
void add_rms_norm(const DeviceContext& ctx, Tensor& x, Tensor& residual, const Tensor& w, float eps, Residual mode) {
  VELA_DISPATCH_CUDA(add_rms_norm(ctx, x, residual, w, eps, mode == Residual::kStart));
  require_cpu(x, "add_rms_norm");
  if (mode == Residual::kStart) {
    for (int64_t t = 0; t < x.size(0); ++t)
      std::memcpy(residual.data<float>() + t * residual.stride(0), x.data<float>() + t * x.stride(0),
                  size_t(x.size(1)) * sizeof(float));
    cpu::rms_norm(x, w, eps, x);
    return;
  }
  cpu::add_rms_norm(x, residual, w, eps);
}
void rope(const DeviceContext& ctx, const Tensor& positions, Tensor& q, Tensor& k, const Tensor& cos_sin,
          bool interleaved) {
  VELA_DISPATCH_CUDA(rope(ctx, positions, q, k, cos_sin, interleaved));
  require_cpu(q, "rope");
  cpu::rope(positions, q, k, cos_sin, interleaved);
}
void linear_silu_mul(const DeviceContext& ctx, const Tensor& x, const Tensor& w, Tensor& gate_up, Tensor& out) {
  VELA_DISPATCH_CUDA(linear_silu_mul(ctx, x, w, gate_up, out));
  require_cpu(w, "linear_silu_mul");
  cpu::linear(x, w, nullptr, gate_up);
  cpu::silu_and_mul(gate_up, out);
}
bool fused_norm_linear_ok(const DeviceContext& ctx, int64_t rows, const Tensor& w, bool silu_mul) {
#ifdef VELA_HAVE_CUDA
  if (ctx.is_cuda()) return cuda::fused_norm_linear_ok(ctx, rows, w, silu_mul);
#endif
  (void)ctx, (void)rows, (void)w, (void)silu_mul;
  return false;  // the CPU backend runs the unfused ops
}
void linear_add(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& residual) {
  VELA_DISPATCH_CUDA(linear_add(ctx, x, w, bias, residual));
  (void)x, (void)w, (void)bias, (void)residual;
  std::fprintf(stderr, "vela: op linear_add: CUDA only (fused_norm_linear_ok is false on the CPU)\n");
  std::abort();
}
void norm_linear(const DeviceContext& ctx, const Tensor& residual, const Tensor& norm_w, float eps, const Tensor& w,
                 const Tensor* bias, bool silu_mul, Tensor& out) {
  VELA_DISPATCH_CUDA(norm_linear(ctx, residual, norm_w, eps, w, bias, silu_mul, out));
  (void)residual, (void)norm_w, (void)eps, (void)w, (void)bias, (void)silu_mul, (void)out;
  std::fprintf(stderr, "vela: op norm_linear: CUDA only (fused_norm_linear_ok is false on the CPU)\n");
  std::abort();
}
bool fused_qkv_prologue_ok(const DeviceContext& ctx, int64_t rows, const Tensor& w, int64_t head_dim) {
#ifdef VELA_HAVE_CUDA
  if (ctx.is_cuda()) return cuda::fused_qkv_prologue_ok(ctx, rows, w, head_dim);
#endif
  (void)ctx, (void)rows, (void)w, (void)head_dim;
  return false;  // the CPU backend runs linear, then qkv_rope_cache
}
void linear_qkv_prologue(const DeviceContext& ctx, const Tensor& in, const Tensor* norm_w, float eps, const Tensor& w,
                         const Tensor* bias, Tensor& out, const QkvPrologue& p) {
  VELA_DISPATCH_CUDA(linear_qkv_prologue(ctx, in, norm_w, eps, w, bias, out, p));
  (void)in, (void)norm_w, (void)eps, (void)w, (void)bias, (void)out, (void)p;
  std::fprintf(stderr, "vela: op linear_qkv_prologue: CUDA only (fused_qkv_prologue_ok is false on the CPU)\n");
  std::abort();
}
void silu_and_mul(const DeviceContext& ctx, const Tensor& gate_up, Tensor& out) {
  VELA_DISPATCH_CUDA(silu_and_mul(ctx, gate_up, out));
  require_cpu(gate_up, "silu_and_mul");
  cpu::silu_and_mul(gate_up, out);
}
void reshape_and_cache(const DeviceContext& ctx, const Tensor& k, const Tensor& v, LayerKVCache& cache,
                       const ForwardBatch& batch) {
  VELA_DISPATCH_CUDA(reshape_and_cache(ctx, k, v, cache, batch));
  require_cpu(cache.k, "reshape_and_cache");
  cpu::reshape_and_cache(k, v, cache, batch);
}
void qkv_rope_cache(const DeviceContext& ctx, Tensor& q, Tensor& k, const Tensor& v, const Tensor* q_norm,
                    const Tensor* k_norm, float eps, const Tensor& positions, const Tensor& cos_sin, bool interleaved,
                    LayerKVCache& cache, const ForwardBatch& batch) {
  VELA_DISPATCH_CUDA(qkv_rope_cache(ctx, q, k, v, q_norm, k_norm, eps, positions, cos_sin, interleaved, cache, batch));
  require_cpu(q, "qkv_rope_cache");
  if (q_norm != nullptr) cpu::rms_norm(q, *q_norm, eps, q);
  if (k_norm != nullptr) cpu::rms_norm(k, *k_norm, eps, k);
  cpu::rope(positions, q, k, cos_sin, interleaved);
  cpu::reshape_and_cache(k, v, cache, batch);
}
void paged_attention(const DeviceContext& ctx, const Tensor& q, const LayerKVCache& cache, const ForwardBatch& batch,
                     float scale, Tensor& out, Tensor& workspace) {
  VELA_DISPATCH_CUDA(paged_attention(ctx, q, cache, batch, scale, out, workspace));
  require_cpu(q, "paged_attention");
  (void)workspace;  // the CPU kernel needs none
  cpu::paged_attention(q, cache, batch, scale, out);
}
size_t attention_workspace_bytes(const DeviceContext& ctx, int64_t max_tokens, int64_t num_q_heads, int64_t head_dim) {
#ifdef VELA_HAVE_CUDA
  if (ctx.is_cuda()) return cuda::attention_workspace_bytes(max_tokens, num_q_heads, head_dim);
#else
  (void)ctx, (void)max_tokens, (void)num_q_heads, (void)head_dim;
#endif
  return 0;
}
void gather_rows(const DeviceContext& ctx, const Tensor& x, const Tensor& rows, Tensor& out) {
  VELA_DISPATCH_CUDA(gather_rows(ctx, x, rows, out));
  require_cpu(x, "gather_rows");
  cpu::gather_rows(x, rows, out);
}

}  // namespace vela::ops

#include "model/ops/ops.h"

#include <cstdio>
#include <cstdlib>

#include "model/ops/cpu/cpu_ops.h"

namespace vela::ops {

namespace {
// Only the CPU backend is built so far; a tensor elsewhere is a programming error.
void require_cpu(const Tensor& t, const char* op) {
  if (t.device().type != DeviceType::kCPU) {
    std::fprintf(stderr, "vela: op %s: tensor on a device without a backend in this build\n", op);
    std::abort();
  }
}
}  // namespace

void embedding(const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out) {
  require_cpu(table, "embedding");
  cpu::embedding(ids, table, vocab_start, out);
}
void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) {
  require_cpu(w, "linear");
  cpu::linear(x, w, bias, out);
}
void rms_norm(const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  require_cpu(x, "rms_norm");
  cpu::rms_norm(x, w, eps, out);
}
void add_rms_norm(Tensor& x, Tensor& residual, const Tensor& w, float eps) {
  require_cpu(x, "add_rms_norm");
  cpu::add_rms_norm(x, residual, w, eps);
}
void rope(const Tensor& positions, Tensor& q, Tensor& k, const Tensor& cos_sin, bool interleaved) {
  require_cpu(q, "rope");
  cpu::rope(positions, q, k, cos_sin, interleaved);
}
void silu_and_mul(const Tensor& gate_up, Tensor& out) {
  require_cpu(gate_up, "silu_and_mul");
  cpu::silu_and_mul(gate_up, out);
}
void reshape_and_cache(const Tensor& k, const Tensor& v, LayerKVCache& cache, const ForwardBatch& batch) {
  require_cpu(cache.k, "reshape_and_cache");
  cpu::reshape_and_cache(k, v, cache, batch);
}
void paged_attention(const Tensor& q, const LayerKVCache& cache, const ForwardBatch& batch, float scale,
                     Tensor& out) {
  require_cpu(q, "paged_attention");
  cpu::paged_attention(q, cache, batch, scale, out);
}
void gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) {
  require_cpu(x, "gather_rows");
  cpu::gather_rows(x, rows, out);
}

}  // namespace vela::ops

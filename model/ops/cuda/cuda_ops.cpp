#include "model/ops/cuda/cuda_ops.h"

#include <cstdio>
#include <cstdlib>

#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"

namespace vela::ops::cuda {

namespace {

using kernels::bf16;

cudaStream_t stream_of(const DeviceContext& ctx) { return reinterpret_cast<cudaStream_t>(ctx.stream); }

// A failed launch is a bug in the shapes the model passed (or a dead device): stop
// with the op's name rather than compute on. Faults inside kernels surface at the
// runner's stream synchronisation as an error of the step.
void check(cudaError_t err, const char* op) {
  if (err == cudaSuccess) return;
  std::fprintf(stderr, "vela: CUDA op %s failed to launch: %s (%s)\n", op, cudaGetErrorName(err),
               cudaGetErrorString(err));
  std::abort();
}

void require(bool ok, const char* op, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "vela: CUDA op %s: %s\n", op, what);
  std::abort();
}

template <class T>
T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

}  // namespace

void embedding(const DeviceContext& ctx, const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out) {
  require(table.dtype() == DType::kBF16 && out.is_contiguous(), "embedding", "bf16 table and contiguous out");
  kernels::EmbeddingParams p;
  p.ids = ptr<int32_t>(ids);
  p.table = ptr<bf16>(table);
  p.out = ptr<bf16>(out);
  p.num_tokens = ids.size(0);
  p.num_rows = table.size(0);
  p.hidden = table.size(1);
  p.vocab_start = vocab_start;
  check(kernels::embedding(p, stream_of(ctx)), "embedding");
}

void linear(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) {
  require(x.dtype() == DType::kBF16 && w.dtype() == DType::kBF16, "linear", "bf16 x and w");
  require(out.dtype() == DType::kBF16 || out.dtype() == DType::kF32, "linear", "bf16 or f32 out");
  kernels::GemmArgs a;
  a.x = ptr<bf16>(x);
  a.x_row_stride = x.stride(0);
  a.w = ptr<bf16>(w);
  a.bias = bias != nullptr ? ptr<bf16>(*bias) : nullptr;
  a.out = out.raw_data();
  a.out_row_stride = out.stride(0);
  a.out_f32 = out.dtype() == DType::kF32;
  a.m = x.size(0);
  a.n = w.size(0);
  a.k = w.size(1);
  if (a.m == 0) return;
  // One or two rows through a small matrix (qkv, o): the matrix-vector kernel
  // streams the weights faster than cuBLASLt there (75% vs 70% of copy bandwidth
  // for 8B's qkv, 65% vs 59% for o); at larger n, and from 4 rows on, cuBLASLt
  // is as fast or faster (PERF_NOTES: GEMV).
  if (a.m <= 2 && a.n <= 8192 && kernels::gemv_supported(a)) {
    check(kernels::gemv(a, stream_of(ctx)), "linear (gemv)");
    return;
  }
  auto ran = ctx.gemm->run(a, stream_of(ctx));
  if (!ran) {
    std::fprintf(stderr, "vela: CUDA op linear: %s\n", ran.error().message.c_str());
    std::abort();
  }
}

void rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  // [T, D] or a head view [T, n, hd] (heads contiguous inside a token).
  kernels::RmsNormParams p;
  p.x = ptr<bf16>(x);
  p.out = ptr<bf16>(out);
  p.weight = ptr<bf16>(w);
  p.num_tokens = x.size(0);
  p.num_heads = x.ndim() == 3 ? x.size(1) : 1;
  p.dim = x.size(-1);
  p.x_token_stride = x.stride(0);
  p.out_token_stride = out.stride(0);
  p.eps = eps;
  check(kernels::rms_norm(p, stream_of(ctx)), "rms_norm");
}

void add_rms_norm(const DeviceContext& ctx, Tensor& x, Tensor& residual, const Tensor& w, float eps, bool first_layer) {
  require(residual.dtype() == DType::kF32 && residual.is_contiguous(), "add_rms_norm", "contiguous fp32 residual");
  kernels::AddRmsNormParams p;
  p.x = ptr<bf16>(x);
  p.residual = ptr<float>(residual);
  p.weight = ptr<bf16>(w);
  p.num_tokens = x.size(0);
  p.dim = x.size(1);
  p.x_token_stride = x.stride(0);
  p.eps = eps;
  p.first_layer = first_layer;
  check(kernels::add_rms_norm(p, stream_of(ctx)), "add_rms_norm");
}

void rope(const DeviceContext& ctx, const Tensor& positions, Tensor& q, Tensor& k, const Tensor& cos_sin,
          bool interleaved) {
  kernels::RopeParams p;
  p.positions = ptr<int32_t>(positions);
  p.q = ptr<bf16>(q);
  p.k = ptr<bf16>(k);
  p.cos_sin = ptr<float>(cos_sin);
  p.num_tokens = q.size(0);
  p.num_q_heads = q.size(1);
  p.num_kv_heads = k.size(1);
  p.head_dim = q.size(2);
  p.q_token_stride = q.stride(0);
  p.k_token_stride = k.stride(0);
  p.interleaved = interleaved;
  check(kernels::rope(p, stream_of(ctx)), "rope");
}

void silu_and_mul(const DeviceContext& ctx, const Tensor& gate_up, Tensor& out) {
  require(gate_up.is_contiguous() && out.is_contiguous(), "silu_and_mul", "contiguous tensors");
  kernels::SiluAndMulParams p;
  p.gate_up = ptr<bf16>(gate_up);
  p.out = ptr<bf16>(out);
  p.num_tokens = gate_up.size(0);
  p.intermediate = out.size(1);
  check(kernels::silu_and_mul(p, stream_of(ctx)), "silu_and_mul");
}

void reshape_and_cache(const DeviceContext& ctx, const Tensor& k, const Tensor& v, LayerKVCache& cache,
                       const ForwardBatch& batch) {
  kernels::ReshapeAndCacheParams p;
  p.k = ptr<bf16>(k);
  p.v = ptr<bf16>(v);
  p.k_token_stride = k.stride(0);
  p.v_token_stride = v.stride(0);
  p.k_cache = ptr<bf16>(cache.k);
  p.v_cache = ptr<bf16>(cache.v);
  p.slot_mapping = ptr<int64_t>(batch.slot_mapping);
  p.num_tokens = batch.num_tokens;
  p.num_kv_heads = k.size(1);
  p.head_dim = k.size(2);
  check(kernels::reshape_and_cache(p, stream_of(ctx)), "reshape_and_cache");
}

void qkv_rope_cache(const DeviceContext& ctx, Tensor& q, Tensor& k, const Tensor& v, const Tensor* q_norm,
                    const Tensor* k_norm, float eps, const Tensor& positions, const Tensor& cos_sin, bool interleaved,
                    LayerKVCache& cache, const ForwardBatch& batch) {
  const int64_t hd = q.size(2);
  if (!kernels::qkv_rope_cache_supported(hd, {q.raw_data(), k.raw_data(), v.raw_data(), cache.k.raw_data(),
                                              cache.v.raw_data()},
                                         {q.stride(0), k.stride(0), v.stride(0)})) {
    if (q_norm != nullptr) rms_norm(ctx, q, *q_norm, eps, q);
    if (k_norm != nullptr) rms_norm(ctx, k, *k_norm, eps, k);
    rope(ctx, positions, q, k, cos_sin, interleaved);
    reshape_and_cache(ctx, k, v, cache, batch);
    return;
  }
  kernels::QkvRopeCacheParams p;
  p.q = ptr<bf16>(q);
  p.k = ptr<bf16>(k);
  p.v = ptr<bf16>(v);
  p.q_token_stride = q.stride(0);
  p.k_token_stride = k.stride(0);
  p.v_token_stride = v.stride(0);
  p.q_norm = q_norm != nullptr ? ptr<bf16>(*q_norm) : nullptr;
  p.k_norm = k_norm != nullptr ? ptr<bf16>(*k_norm) : nullptr;
  p.eps = eps;
  p.positions = ptr<int32_t>(positions);
  p.cos_sin = ptr<float>(cos_sin);
  p.interleaved = interleaved;
  p.k_cache = ptr<bf16>(cache.k);
  p.v_cache = ptr<bf16>(cache.v);
  p.slot_mapping = ptr<int64_t>(batch.slot_mapping);
  p.num_tokens = batch.num_tokens;
  p.num_q_heads = q.size(1);
  p.num_kv_heads = k.size(1);
  p.head_dim = hd;
  check(kernels::qkv_rope_cache(p, stream_of(ctx)), "qkv_rope_cache");
}

void paged_attention(const DeviceContext& ctx, const Tensor& q, const LayerKVCache& cache, const ForwardBatch& batch,
                     float scale, Tensor& out, Tensor& workspace) {
  kernels::PagedAttentionParams p;
  p.q = ptr<bf16>(q);
  p.q_token_stride = q.stride(0);
  p.k_cache = ptr<bf16>(cache.k);
  p.v_cache = ptr<bf16>(cache.v);
  p.block_tables = ptr<int32_t>(batch.block_tables);
  p.block_table_stride = int32_t(batch.block_tables.stride(0));
  p.query_start_loc = ptr<int32_t>(batch.query_start_loc);
  p.seq_lens = ptr<int32_t>(batch.seq_lens);
  p.out = ptr<bf16>(out);
  p.out_token_stride = out.stride(0);
  p.num_seqs = batch.num_seqs;
  p.num_tokens = batch.num_tokens;
  p.num_q_heads = int32_t(q.size(1));
  p.num_kv_heads = int32_t(cache.k.size(2));
  p.head_dim = int32_t(q.size(2));
  p.block_size = int32_t(cache.k.size(1));
  p.max_query_len = batch.max_query_len;
  p.max_seq_len = batch.max_seq_len;
  p.max_seq_len_is_bound = batch.max_seq_len_is_bound;
  p.shared_prefix_len = batch.shared_prefix_len;
  p.scale = scale;
  p.workspace = workspace.defined() ? workspace.raw_data() : nullptr;
  p.workspace_bytes = workspace.defined() ? workspace.nbytes() : 0;
  check(kernels::paged_attention(p, stream_of(ctx)), "paged_attention");
}

size_t attention_workspace_bytes(int64_t max_tokens, int64_t num_q_heads, int64_t head_dim) {
  return kernels::paged_attention_workspace_bytes(max_tokens, int32_t(num_q_heads), int32_t(head_dim));
}

void gather_rows(const DeviceContext& ctx, const Tensor& x, const Tensor& rows, Tensor& out) {
  kernels::GatherRowsParams p;
  p.x = ptr<bf16>(x);
  p.rows = ptr<int32_t>(rows);
  p.out = ptr<bf16>(out);
  p.num_rows = rows.size(0);
  p.dim = x.size(1);
  p.x_token_stride = x.stride(0);
  check(kernels::gather_rows(p, stream_of(ctx)), "gather_rows");
}

}  // namespace vela::ops::cuda

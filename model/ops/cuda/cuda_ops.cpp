#include "model/ops/cuda/cuda_ops.h"

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>

#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "model/ops/ops.h"

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

// The one place the compute dtype becomes the kernels' element type: calls
// f(T*{}) with T = bf16 or float after checking that every tensor is of that dtype
// (weights and activations share it; the fp32 residual, logits and cos/sin table
// are not passed here).
template <class F>
void with_element_type(const char* op, std::initializer_list<const Tensor*> tensors, F&& f) {
  const DType dt = (*tensors.begin())->dtype();
  for (const Tensor* t : tensors)
    if (t->dtype() != dt) {
      std::fprintf(stderr, "vela: CUDA op %s: mixed dtypes %s and %s\n", op, std::string(dtype_name(dt)).c_str(),
                   std::string(dtype_name(t->dtype())).c_str());
      std::abort();
    }
  switch (dt) {
    case DType::kBF16: f(static_cast<bf16*>(nullptr)); return;
    case DType::kF32: f(static_cast<float*>(nullptr)); return;
    default:
      std::fprintf(stderr, "vela: CUDA op %s: no kernel for dtype %s (bf16 or f32)\n", op,
                   std::string(dtype_name(dt)).c_str());
      std::abort();
  }
}

}  // namespace

void embedding(const DeviceContext& ctx, const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out) {
  require(out.is_contiguous(), "embedding", "contiguous out");
  with_element_type("embedding", {&table, &out}, [&]<class T>(T*) {
    kernels::EmbeddingParams<T> p;
    p.ids = ptr<int32_t>(ids);
    p.table = ptr<T>(table);
    p.out = ptr<T>(out);
    p.num_tokens = ids.size(0);
    p.num_rows = table.size(0);
    p.hidden = table.size(1);
    p.vocab_start = vocab_start;
    check(kernels::embedding(p, stream_of(ctx)), "embedding");
  });
}

namespace {
kernels::GemmArgs gemm_args(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) {
  kernels::GemmArgs a;
  a.x = x.raw_data();
  a.x_row_stride = x.stride(0);
  a.w = w.raw_data();
  a.bias = bias != nullptr ? bias->raw_data() : nullptr;
  a.out = out.raw_data();
  a.out_row_stride = out.stride(0);
  a.out_f32 = out.dtype() == DType::kF32;
  a.in_f32 = x.dtype() == DType::kF32;
  a.m = x.size(0);
  a.n = w.size(0);
  a.k = w.size(1);
  return a;
}

void run_gemm(const DeviceContext& ctx, const kernels::GemmArgs& a) {
  auto ran = ctx.gemm->run(a, stream_of(ctx));
  if (!ran) {
    std::fprintf(stderr, "vela: CUDA op linear: %s\n", ran.error().message.c_str());
    std::abort();
  }
}
}  // namespace

void linear(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) {
  const bool in_f32 = x.dtype() == DType::kF32;
  require((x.dtype() == DType::kBF16 || in_f32) && w.dtype() == x.dtype(), "linear", "x and w both bf16 or both f32");
  require(bias == nullptr || bias->dtype() == x.dtype(), "linear", "bias of x's dtype");
  require(out.dtype() == DType::kF32 || (!in_f32 && out.dtype() == DType::kBF16), "linear",
          "f32 out, or bf16 out from bf16 x and w");
  const kernels::GemmArgs a = gemm_args(x, w, bias, out);
  if (a.m == 0) return;
  // One or two rows through a small matrix (qkv, o): the matrix-vector kernel
  // streams the weights faster than cuBLASLt there (75% vs 70% of copy bandwidth
  // for 8B's qkv, 65% vs 59% for o); at larger n, and from 4 rows on, cuBLASLt
  // is as fast or faster (PERF_NOTES: GEMV). bf16 only: fp32 is all cuBLASLt.
  if (a.m <= 2 && a.n <= 8192 && kernels::gemv_supported(a)) {
    check(kernels::gemv(a, stream_of(ctx)), "linear (gemv)");
    return;
  }
  run_gemm(ctx, a);
}

void linear_silu_mul(const DeviceContext& ctx, const Tensor& x, const Tensor& w, Tensor& gate_up, Tensor& out) {
  require(x.dtype() == w.dtype() && out.dtype() == x.dtype() && gate_up.dtype() == x.dtype(), "linear_silu_mul",
          "x, w, gate_up and out of one dtype");
  require(w.size(0) == 2 * out.size(1) && gate_up.size(1) == w.size(0), "linear_silu_mul",
          "w [2I, H], gate_up [T, 2I], out [T, I]");
  kernels::GemmArgs a = gemm_args(x, w, nullptr, out);
  if (a.m == 0) return;
  // One or two rows: gate and up rows streamed together, the activation written
  // directly (no gate_up round trip, no silu launch; PERF_NOTES: the MLP at batch 1).
  a.silu_mul = true;
  a.n = out.size(1);
  if (a.m <= 2 && kernels::gemv_supported(a)) {
    check(kernels::gemv(a, stream_of(ctx)), "linear_silu_mul (gemv)");
    return;
  }
  linear(ctx, x, w, nullptr, gate_up);
  silu_and_mul(ctx, gate_up, out);
}

bool fused_norm_linear_ok(const DeviceContext& ctx, int64_t rows, const Tensor& w, bool silu_mul) {
  // The GEMV's rule in linear() (1-2 rows, n <= 8192 unless it is gate_up) and its
  // norm prologue's (kernels/gemm.h: the normalised rows in 48 KB of shared memory).
  return ctx.dtype == DType::kBF16 && w.dtype() == DType::kBF16 && w.ndim() == 2 && rows >= 1 && rows <= 2 &&
         w.size(1) % 8 == 0 && rows * w.size(1) * 2 <= 48 * 1024 && (silu_mul || w.size(0) <= 8192);
}

void linear_add(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& residual) {
  require(residual.dtype() == DType::kF32 && x.dtype() == DType::kBF16, "linear_add", "bf16 x into an fp32 residual");
  require(fused_norm_linear_ok(ctx, x.size(0), w, false), "linear_add", "1-2 rows of a bf16 GEMV shape");
  require(residual.size(0) == x.size(0) && residual.size(1) == w.size(0), "linear_add",
          "x [T, K], w [N, K], residual [T, N]");
  kernels::GemmArgs a = gemm_args(x, w, bias, residual);
  a.accumulate = true;
  require(kernels::gemv_supported(a), "linear_add", "a GEMV layout (16-byte aligned rows, k a multiple of 8)");
  check(kernels::gemv(a, stream_of(ctx)), "linear_add (gemv)");
}

namespace {
// norm_linear's arguments: the GEMV normalises the fp32 residual itself.
kernels::GemmArgs norm_gemm_args(const char* op, const Tensor& residual, const Tensor& norm_w, float eps,
                                 const Tensor& w, const Tensor* bias, Tensor& out) {
  require(residual.dtype() == DType::kF32 && residual.is_contiguous() && norm_w.dtype() == DType::kBF16 &&
              out.dtype() == DType::kBF16,
          op, "a contiguous fp32 residual, a bf16 norm weight and bf16 out");
  require(residual.size(1) == w.size(1) && norm_w.numel() == w.size(1), op,
          "residual [T, H], norm weight [H], w [N, H]");
  kernels::GemmArgs a = gemm_args(residual, w, bias, out);
  a.x = nullptr;
  a.x_row_stride = 0;
  a.in_f32 = false;
  a.norm_residual = ptr<float>(residual);
  a.norm_weight = norm_w.raw_data();
  a.norm_eps = eps;
  return a;
}
}  // namespace

void norm_linear(const DeviceContext& ctx, const Tensor& residual, const Tensor& norm_w, float eps, const Tensor& w,
                 const Tensor* bias, bool silu_mul, Tensor& out) {
  require(!silu_mul || (bias == nullptr && w.size(0) == 2 * out.size(1)), "norm_linear",
          "silu_mul: no bias, w [2I, H], out [T, I]");
  require(fused_norm_linear_ok(ctx, residual.size(0), w, silu_mul), "norm_linear", "1-2 rows of a bf16 GEMV shape");
  kernels::GemmArgs a = norm_gemm_args("norm_linear", residual, norm_w, eps, w, bias, out);
  a.silu_mul = silu_mul;
  if (silu_mul) a.n = out.size(1);
  require(kernels::gemv_supported(a), "norm_linear", "a GEMV layout (16-byte aligned rows, k a multiple of 8)");
  check(kernels::gemv(a, stream_of(ctx)), "norm_linear (gemv)");
}

bool fused_qkv_prologue_ok(const DeviceContext& ctx, int64_t rows, const Tensor& w, int64_t head_dim) {
  return fused_norm_linear_ok(ctx, rows, w, false) && head_dim > 0 && head_dim % 2 == 0 && w.size(0) % head_dim == 0;
}

void linear_qkv_prologue(const DeviceContext& ctx, const Tensor& in, const Tensor* norm_w, float eps, const Tensor& w,
                         const Tensor* bias, Tensor& out, const QkvPrologue& p) {
  const char* op = "linear_qkv_prologue";
  require(p.positions != nullptr && p.cos_sin != nullptr && p.cache != nullptr && p.batch != nullptr, op,
          "positions, the rope table, the layer's cache and the batch");
  require(fused_qkv_prologue_ok(ctx, in.size(0), w, p.head_dim), op, "1-2 rows of a bf16 GEMV shape, an even head dim");
  require(w.size(0) == (p.num_q_heads + 2 * p.num_kv_heads) * p.head_dim && out.size(1) == w.size(0), op,
          "w and out [T, (nq + 2 nk) hd]");
  const LayerKVCache& cache = *p.cache;
  require(cache.k.dtype() == DType::kBF16 && cache.v.dtype() == DType::kBF16 && cache.k.size(-1) == p.head_dim &&
              cache.k.size(-2) == p.num_kv_heads && p.cos_sin->dtype() == DType::kF32 &&
              p.cos_sin->size(-1) == p.head_dim && p.positions->dtype() == DType::kI32 &&
              p.batch->slot_mapping.dtype() == DType::kI64 && p.positions->size(0) >= in.size(0) &&
              p.batch->slot_mapping.size(0) >= in.size(0),
          op, "a bf16 cache [.., nk, hd], an fp32 rope table [.., hd], i32 positions and i64 slots for every row");
  kernels::GemmArgs a;
  if (norm_w != nullptr) {
    a = norm_gemm_args(op, in, *norm_w, eps, w, bias, out);
  } else {
    require(in.dtype() == DType::kBF16 && w.dtype() == DType::kBF16 && out.dtype() == DType::kBF16 &&
                (bias == nullptr || bias->dtype() == DType::kBF16),
            op, "bf16 x, w, bias and out");
    a = gemm_args(in, w, bias, out);
  }
  a.qkv.positions = ptr<int32_t>(*p.positions);
  a.qkv.cos_sin = ptr<float>(*p.cos_sin);
  a.qkv.slot_mapping = ptr<int64_t>(p.batch->slot_mapping);
  a.qkv.k_cache = cache.k.raw_data();
  a.qkv.v_cache = cache.v.raw_data();
  a.qkv.num_q_heads = int32_t(p.num_q_heads);
  a.qkv.num_kv_heads = int32_t(p.num_kv_heads);
  a.qkv.head_dim = int32_t(p.head_dim);
  a.qkv.interleaved = p.interleaved;
  require(kernels::gemv_supported(a), op, "a GEMV layout (16-byte aligned rows, k a multiple of 8)");
  check(kernels::gemv(a, stream_of(ctx)), "linear_qkv_prologue (gemv)");
}

void rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& w, float eps, Tensor& out) {
  // [T, D] or a head view [T, n, hd] (heads contiguous inside a token).
  with_element_type("rms_norm", {&x, &w, &out}, [&]<class T>(T*) {
    kernels::RmsNormParams<T> p;
    p.x = ptr<T>(x);
    p.out = ptr<T>(out);
    p.weight = ptr<T>(w);
    p.num_tokens = x.size(0);
    p.num_heads = x.ndim() == 3 ? x.size(1) : 1;
    p.dim = x.size(-1);
    p.x_token_stride = x.stride(0);
    p.out_token_stride = out.stride(0);
    p.eps = eps;
    check(kernels::rms_norm(p, stream_of(ctx)), "rms_norm");
  });
}

void add_rms_norm(const DeviceContext& ctx, Tensor& x, Tensor& residual, const Tensor& w, float eps, bool first_layer) {
  require(residual.dtype() == DType::kF32 && residual.is_contiguous(), "add_rms_norm", "contiguous fp32 residual");
  with_element_type("add_rms_norm", {&x, &w}, [&]<class T>(T*) {
    kernels::AddRmsNormParams<T> p;
    p.x = ptr<T>(x);
    p.residual = ptr<float>(residual);
    p.weight = ptr<T>(w);
    p.num_tokens = x.size(0);
    p.dim = x.size(1);
    p.x_token_stride = x.stride(0);
    p.eps = eps;
    p.first_layer = first_layer;
    check(kernels::add_rms_norm(p, stream_of(ctx)), "add_rms_norm");
  });
}

void rope(const DeviceContext& ctx, const Tensor& positions, Tensor& q, Tensor& k, const Tensor& cos_sin,
          bool interleaved) {
  require(cos_sin.dtype() == DType::kF32, "rope", "fp32 cos_sin");
  with_element_type("rope", {&q, &k}, [&]<class T>(T*) {
    kernels::RopeParams<T> p;
    p.positions = ptr<int32_t>(positions);
    p.q = ptr<T>(q);
    p.k = ptr<T>(k);
    p.cos_sin = ptr<float>(cos_sin);
    p.num_tokens = q.size(0);
    p.num_q_heads = q.size(1);
    p.num_kv_heads = k.size(1);
    p.head_dim = q.size(2);
    p.q_token_stride = q.stride(0);
    p.k_token_stride = k.stride(0);
    p.interleaved = interleaved;
    check(kernels::rope(p, stream_of(ctx)), "rope");
  });
}

void silu_and_mul(const DeviceContext& ctx, const Tensor& gate_up, Tensor& out) {
  require(gate_up.is_contiguous() && out.is_contiguous(), "silu_and_mul", "contiguous tensors");
  with_element_type("silu_and_mul", {&gate_up, &out}, [&]<class T>(T*) {
    kernels::SiluAndMulParams<T> p;
    p.gate_up = ptr<T>(gate_up);
    p.out = ptr<T>(out);
    p.num_tokens = gate_up.size(0);
    p.intermediate = out.size(1);
    check(kernels::silu_and_mul(p, stream_of(ctx)), "silu_and_mul");
  });
}

void reshape_and_cache(const DeviceContext& ctx, const Tensor& k, const Tensor& v, LayerKVCache& cache,
                       const ForwardBatch& batch) {
  with_element_type("reshape_and_cache", {&k, &v, &cache.k, &cache.v}, [&]<class T>(T*) {
    kernels::ReshapeAndCacheParams<T> p;
    p.k = ptr<T>(k);
    p.v = ptr<T>(v);
    p.k_token_stride = k.stride(0);
    p.v_token_stride = v.stride(0);
    p.k_cache = ptr<T>(cache.k);
    p.v_cache = ptr<T>(cache.v);
    p.slot_mapping = ptr<int64_t>(batch.slot_mapping);
    p.num_tokens = batch.num_tokens;
    p.num_kv_heads = k.size(1);
    p.head_dim = k.size(2);
    check(kernels::reshape_and_cache(p, stream_of(ctx)), "reshape_and_cache");
  });
}

void qkv_rope_cache(const DeviceContext& ctx, Tensor& q, Tensor& k, const Tensor& v, const Tensor* q_norm,
                    const Tensor* k_norm, float eps, const Tensor& positions, const Tensor& cos_sin, bool interleaved,
                    LayerKVCache& cache, const ForwardBatch& batch) {
  const int64_t hd = q.size(2);
  // The fused kernel is bf16 only; fp32 (and shapes it does not cover) run the ops
  // one by one.
  if (q.dtype() != DType::kBF16 ||
      !kernels::qkv_rope_cache_supported(hd, {q.raw_data(), k.raw_data(), v.raw_data(), cache.k.raw_data(),
                                              cache.v.raw_data()},
                                         {q.stride(0), k.stride(0), v.stride(0)})) {
    if (q_norm != nullptr) rms_norm(ctx, q, *q_norm, eps, q);
    if (k_norm != nullptr) rms_norm(ctx, k, *k_norm, eps, k);
    rope(ctx, positions, q, k, cos_sin, interleaved);
    reshape_and_cache(ctx, k, v, cache, batch);
    return;
  }
  require(k.dtype() == DType::kBF16 && v.dtype() == DType::kBF16 && cache.k.dtype() == DType::kBF16 &&
              cache.v.dtype() == DType::kBF16 && (q_norm == nullptr || q_norm->dtype() == DType::kBF16) &&
              (k_norm == nullptr || k_norm->dtype() == DType::kBF16),
          "qkv_rope_cache", "bf16 q, k, v, norms and cache");
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
  with_element_type("paged_attention", {&q, &cache.k, &cache.v, &out}, [&]<class T>(T*) {
    kernels::PagedAttentionParams<T> p;
    p.q = ptr<T>(q);
    p.q_token_stride = q.stride(0);
    p.k_cache = ptr<T>(cache.k);
    p.v_cache = ptr<T>(cache.v);
    p.num_blocks = cache.k.size(0);
    p.block_tables = ptr<int32_t>(batch.block_tables);
    p.block_table_stride = int32_t(batch.block_tables.stride(0));
    p.query_start_loc = ptr<int32_t>(batch.query_start_loc);
    p.seq_lens = ptr<int32_t>(batch.seq_lens);
    p.out = ptr<T>(out);
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
    p.shared_prefix_seqs = batch.shared_prefix_seqs;
    if (batch.shared_prefix_len_device.defined()) p.shared_prefix_len_device = ptr<int32_t>(batch.shared_prefix_len_device);
    p.scale = scale;
    p.workspace = workspace.defined() ? workspace.raw_data() : nullptr;
    p.workspace_bytes = workspace.defined() ? workspace.nbytes() : 0;
    p.side_stream = reinterpret_cast<cudaStream_t>(ctx.side_stream);
    p.side_fork = reinterpret_cast<cudaEvent_t>(ctx.side_fork);
    p.side_join = reinterpret_cast<cudaEvent_t>(ctx.side_join);
    p.side_priority = ctx.side_priority;
    check(kernels::paged_attention(p, stream_of(ctx)), "paged_attention");
  });
}

size_t attention_workspace_bytes(int64_t max_tokens, int64_t num_q_heads, int64_t head_dim) {
  return kernels::paged_attention_workspace_bytes(max_tokens, int32_t(num_q_heads), int32_t(head_dim));
}

void gather_rows(const DeviceContext& ctx, const Tensor& x, const Tensor& rows, Tensor& out) {
  with_element_type("gather_rows", {&x, &out}, [&]<class T>(T*) {
    kernels::GatherRowsParams<T> p;
    p.x = ptr<T>(x);
    p.rows = ptr<int32_t>(rows);
    p.out = ptr<T>(out);
    p.num_rows = rows.size(0);
    p.dim = x.size(1);
    p.x_token_stride = x.stride(0);
    check(kernels::gather_rows(p, stream_of(ctx)), "gather_rows");
  });
}

}  // namespace vela::ops::cuda

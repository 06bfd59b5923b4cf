#include "perf/roofline.h"

#include <algorithm>
#include <filesystem>

#include "model/hf_config.h"

namespace vela::perf {
namespace fs = std::filesystem;

Result<ModelShape> read_model_shape(const std::string& path, int32_t bytes_per_param) {
  const std::string dir = fs::path(path).filename() == "config.json" ? fs::path(path).parent_path().string() : path;
  VELA_TRY_ASSIGN(const HFConfig c, load_hf_config(dir));
  const int64_t h = c.hidden_size, heads = c.num_attention_heads, kv = c.num_key_value_heads;
  const int64_t d = c.head_dim, inter = c.intermediate_size;
  int64_t per_layer = h * heads * d + 2 * h * kv * d + heads * d * h  // q, k, v, o
                      + 3 * h * inter                                  // gate, up, down
                      + 2 * h;                                         // two RMSNorms
  if (c.qk_norm) per_layer += 2 * d;
  if (c.qkv_bias) per_layer += (heads + 2 * kv) * d;
  if (c.o_bias) per_layer += h;
  if (c.mlp_bias) per_layer += 2 * inter + h;
  ModelShape s;
  s.embedding_params = c.vocab_size * h;
  s.lm_head_params = c.vocab_size * h;
  s.tied_embeddings = c.tie_word_embeddings;
  s.num_params = s.embedding_params + c.num_hidden_layers * per_layer + h + (s.tied_embeddings ? 0 : s.lm_head_params);
  s.bytes_per_param = bytes_per_param;
  s.kv_bytes_per_token = 2 * c.num_hidden_layers * kv * d * bytes_per_param;
  s.attn_flops_per_token_key = 4 * c.num_hidden_layers * heads * d;
  return s;
}

namespace {

// FLOPs to compute `computed` prompt tokens that follow `cached` tokens already in the
// KV cache: through the body weights, and causal attention (token i sees cached + i + 1
// keys). Both need the tensor cores, so both count at the GEMM rate.
double prompt_flops(const ModelShape& shape, int64_t cached, int64_t computed) {
  const double keys = static_cast<double>(computed) * static_cast<double>(cached) +
                      static_cast<double>(computed) * static_cast<double>(computed + 1) / 2.0;
  return 2.0 * static_cast<double>(shape.body_params()) * static_cast<double>(computed) +
         static_cast<double>(shape.attn_flops_per_token_key) * keys;
}

}  // namespace

WorkloadBound workload_bound(const Workload& w, const ModelShape& shape, const Ceilings& ceil, int32_t max_num_seqs) {
  WorkloadBound b;
  double prompt_work = 0;  // FLOPs
  double kv_token_reads = 0;  // sum over decode steps of live context tokens
  int64_t longest_output = 0;
  // A shared prefix (P1) is the same KV blocks for every request: a step must read
  // them once, not once per sequence, so the fewest bytes count it once per step.
  const int64_t shared = std::max<int32_t>(0, w.shared_prefix_tokens);
  bool first = true;
  for (const auto& r : w.requests) {
    const int64_t in = static_cast<int64_t>(r.prompt_token_ids.size()), out = r.max_tokens;
    // A shared prefix is computed by the first request; the others attend to it.
    const int64_t cached = first ? 0 : std::min(in, shared);
    prompt_work += prompt_flops(shape, cached, in - cached);
    first = false;
    b.prompt_tokens += in;
    b.output_tokens += out;
    longest_output = std::max(longest_output, out);
    // Decode step t (1..out-1) reads in + t tokens of context; the first token comes from prefill.
    kv_token_reads += static_cast<double>(out - 1) * static_cast<double>(in - std::min(in, shared)) +
                      static_cast<double>(out - 1) * out / 2.0;
  }
  if (shared > 0 && !w.requests.empty())
    b.prompt_tokens -= static_cast<int64_t>(w.requests.size() - 1) * shared;
  const int64_t concurrent = std::max<int64_t>(1, std::min<int64_t>(max_num_seqs, w.requests.size()));
  b.decode_steps = std::max<int64_t>(longest_output - 1, (b.output_tokens - static_cast<int64_t>(w.requests.size()) + concurrent - 1) / concurrent);
  kv_token_reads += static_cast<double>(b.decode_steps) * static_cast<double>(shared);
  // Prompt tokens multiply through the body (the lm_head is needed for the last one
  // only) and attend to their context.
  b.prefill_s = prompt_work / ceil.gemm_flops_per_s;
  b.decode_weights_s = static_cast<double>(b.decode_steps) * shape.streamed_params() * shape.bytes_per_param /
                       ceil.hbm_bytes_per_s;
  b.decode_kv_s = kv_token_reads * shape.kv_bytes_per_token / ceil.hbm_bytes_per_s;
  return b;
}

LatencyBound latency_bound(const BenchRequest& r, const ModelShape& shape, const Ceilings& ceil) {
  LatencyBound b;
  b.ttft_s = prompt_flops(shape, 0, static_cast<int64_t>(r.prompt_token_ids.size())) / ceil.gemm_flops_per_s +
             static_cast<double>(shape.streamed_params()) * shape.bytes_per_param / ceil.hbm_bytes_per_s;
  b.tpot_s = (static_cast<double>(shape.streamed_params()) * shape.bytes_per_param +
              static_cast<double>(shape.kv_bytes_per_token) * (r.prompt_token_ids.size() + r.max_tokens / 2)) /
             ceil.hbm_bytes_per_s;
  return b;
}

}  // namespace vela::perf

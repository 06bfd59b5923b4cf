#pragma once
// Lower bounds for a workload from two measured ceilings (BENCHMARKS.md):
//   decode step time >= (weight bytes + KV bytes read by the batch) / HBM bandwidth
//   prefill time     >= 2 x params x prompt tokens / bf16 GEMM rate
#include <cstdint>
#include <string>

#include "common/result.h"
#include "perf/workloads.h"

namespace vela::perf {

// The few numbers of a model's shape the bounds need (from its HF config.json).
struct ModelShape {
  int64_t num_params = 0;             // all weights, counting tied embeddings once
  int64_t lm_head_params = 0;         // vocab x hidden (read every decode step)
  int64_t embedding_params = 0;       // vocab x hidden (gathered, not streamed, in decode)
  // Transformer-body weights: every prompt token multiplies through these.
  int64_t body_params() const { return num_params - embedding_params - (tied_embeddings ? 0 : lm_head_params); }
  // Weights one decode step streams: the body plus the lm_head.
  int64_t streamed_params() const { return body_params() + lm_head_params; }
  int64_t kv_bytes_per_token = 0;     // K + V over all layers at the KV dtype
  // Attention FLOPs of one query token per key it sees, over all layers
  // (Q K^T and P V: 2 x 2 x num_heads x head_dim per layer).
  int64_t attn_flops_per_token_key = 0;
  bool tied_embeddings = false;       // lm_head is the embedding table
  int32_t bytes_per_param = 2;        // bf16
};

// From a model directory or its config.json (parsed by model/hf_config).
Result<ModelShape> read_model_shape(const std::string& model_dir_or_config_json, int32_t bytes_per_param = 2);

struct Ceilings {
  double hbm_bytes_per_s = 0;   // device-to-device copy: bytes read + written per second
  double gemm_flops_per_s = 0;  // large GEMM at the backend's compute dtype
  int32_t bytes_per_param = 2;  // what the backend streams per weight / KV element (bf16 GPU, fp32 CPU)
};

struct WorkloadBound {
  double prefill_s = 0;         // GEMM-bound prompt compute (body weights and causal attention)
  double decode_weights_s = 0;  // streaming the weights once per decode step
  double decode_kv_s = 0;       // reading the KV cache of every running sequence per step
  double total_s() const { return prefill_s + decode_weights_s + decode_kv_s; }
  int64_t output_tokens = 0;
  int64_t prompt_tokens = 0;    // prompt tokens that must be computed (a shared prefix once)
  int64_t decode_steps = 0;
};

// Latency floors of one request of the workload alone: TTFT >= its prefill,
// TPOT >= one decode step streaming the weights.
struct LatencyBound {
  double ttft_s = 0;
  double tpot_s = 0;
};
LatencyBound latency_bound(const BenchRequest& r, const ModelShape& shape, const Ceilings& ceilings);

// Assumes every request of the workload runs concurrently (max_num_seqs >= requests
// and enough KV cache), which is the most favourable schedule: decode steps =
// the longest output; each step streams the weights once (less the embedding table)
// and reads the KV of every live sequence.
WorkloadBound workload_bound(const Workload& w, const ModelShape& shape, const Ceilings& ceilings,
                             int32_t max_num_seqs = 1 << 30);

}  // namespace vela::perf

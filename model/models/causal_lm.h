#pragma once
// CausalLM: what the runner needs from a model, whatever its architecture.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/result.h"
#include "model/forward_batch.h"
#include "model/tensor.h"

namespace vela {

class WeightSource;

// Shapes the runner sizes the KV cache and sampler with (this rank's shard).
struct ModelShape {
  int64_t num_layers = 0;
  int64_t num_kv_heads = 0;   // per rank
  int64_t head_dim = 0;
  int64_t vocab_size = 0;     // full vocabulary (logits are gathered)
  int64_t max_positions = 0;  // RoPE table length
};

class CausalLM {
 public:
  virtual ~CausalLM() = default;
  virtual Status load_weights(WeightSource& weights) = 0;
  virtual const ModelShape& shape() const = 0;
  virtual size_t weight_bytes() const = 0;
  // Allocates the activations for steps of up to max_tokens tokens and max_logit_rows
  // sampled rows, once: a step within those limits allocates nothing and every
  // buffer keeps its address (CUDA graphs rely on it). Returns the bytes taken.
  // Without it the CPU path grows its buffers on demand.
  virtual Result<size_t> reserve(int64_t max_tokens, int64_t max_logit_rows) = 0;
  // Runs every layer over the batch, writing K/V into kv (one entry per layer).
  // Returns the final-normed hidden states [num_tokens, hidden] (compute dtype);
  // the view stays valid until the next forward().
  virtual Tensor forward(const ForwardBatch& batch, std::vector<LayerKVCache>& kv) = 0;
  // logits [rows, vocab] fp32 for hidden[rows[i]] (rows [S] i32, on the model's
  // device); valid until the next call.
  virtual Tensor compute_logits(const Tensor& hidden, const Tensor& rows) = 0;
};

}  // namespace vela

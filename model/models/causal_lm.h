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
  virtual Result<bool> load_weights(WeightSource& weights) = 0;
  virtual const ModelShape& shape() const = 0;
  virtual size_t weight_bytes() const = 0;
  // Runs every layer over the batch, writing K/V into kv (one entry per layer).
  // Returns the final-normed hidden states [num_tokens, hidden]; the view stays
  // valid until the next forward().
  virtual Tensor forward(const ForwardBatch& batch, std::vector<LayerKVCache>& kv) = 0;
  // logits [rows, vocab] for hidden[rows[i]] (rows [S] i32); valid until the next call.
  virtual Tensor compute_logits(const Tensor& hidden, const Tensor& rows) = 0;
};

}  // namespace vela

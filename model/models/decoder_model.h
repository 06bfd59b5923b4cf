#pragma once
// The pre-norm decoder shared by Llama/Mistral, Qwen2 and Qwen3:
//   x = embed(ids)
//   per layer: h = x + o(attn(rope(qk_norm?(q, k)), v)) on rms_norm(x);
//              x = h + down(silu(gate) * up) on rms_norm(h)
//   logits = lm_head(rms_norm(x))
// Architecture differences (q/k/v bias, q/k norm, tied embeddings) come from HFConfig.
#include <memory>
#include <optional>
#include <vector>

#include "model/hf_config.h"
#include "model/layers/embedding.h"
#include "model/layers/linear.h"
#include "model/models/causal_lm.h"
#include "model/models/registry.h"

namespace vela {

class Communicator;

class DecoderModel final : public CausalLM {
 public:
  static Result<std::unique_ptr<DecoderModel>> create(const HFConfig& config, const ParallelInfo& parallel,
                                                      Communicator* comm, const DeviceContext& ctx);
  Status load_weights(WeightSource& weights) override;
  const ModelShape& shape() const override { return shape_; }
  size_t weight_bytes() const override;
  Result<size_t> reserve(int64_t max_tokens, int64_t max_logit_rows) override;
  Tensor forward(const ForwardBatch& batch, std::vector<LayerKVCache>& kv) override;
  Tensor compute_logits(const Tensor& hidden, const Tensor& rows) override;

 private:
  struct Layer {
    Tensor input_norm, post_attention_norm;  // [H]
    Tensor q_norm, k_norm;                   // [hd], Qwen3 only
    Linear qkv;                              // [(nq_r + 2 nk_r) hd, H]
    Linear o;                                // [H, nq_r hd]
    Linear gate_up;                          // [2 I_r, H]
    Linear down;                             // [H, I_r]
  };
  // Scratch reused across steps (compute dtype; residual and logits fp32); grows
  // when a step needs more than it holds, unless reserve() fixed it.
  struct Workspace {
    int64_t token_capacity = 0;
    Tensor hidden, residual, qkv, attn, gate_up, act, attn_scratch;
    int64_t logit_capacity = 0;
    Tensor selected, logits, logits_shard, logits_gather;
    bool fixed = false;  // reserve() was called: never reallocate
  };

  DecoderModel(const HFConfig& config, const ParallelInfo& parallel, Communicator* comm, const DeviceContext& ctx)
      : config_(config), parallel_(parallel), comm_(comm), ctx_(ctx) {}
  void reserve_tokens(int64_t num_tokens);
  void reserve_logit_rows(int64_t rows);
  // normed_input: qkv takes rms_norm(residual) * input_norm itself (forward_normed);
  // add_output: o adds into the residual (forward_add) instead of writing hidden;
  // fused_prologue: qkv's kernel also does the attention prologue (RoPE, cache write).
  void attention_block(Layer& layer, const ForwardBatch& batch, LayerKVCache& kv, int64_t num_tokens,
                       bool normed_input, bool add_output, bool fused_prologue);
  // Whether a step of num_tokens rows runs the fused norms (forward()), and, asked
  // only where it does, the attention prologue inside the qkv projection.
  bool fuse_norms(int64_t num_tokens) const;
  bool fuse_qkv_prologue(int64_t num_tokens) const;

  HFConfig config_;
  ParallelInfo parallel_;
  Communicator* comm_;
  DeviceContext ctx_;
  ModelShape shape_;
  int64_t num_q_heads_ = 0;     // per rank
  int64_t kv_head_start_ = 0;   // first kv head this rank keeps
  int64_t intermediate_ = 0;    // per rank
  std::optional<VocabParallelEmbedding> embed_;
  std::optional<VocabParallelEmbedding> lm_head_;  // absent when tied to embed_
  std::vector<Layer> layers_;
  Tensor final_norm_;
  Tensor rope_table_;
  Workspace ws_;
};

}  // namespace vela

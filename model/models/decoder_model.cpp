#include "model/models/decoder_model.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "model/communicator.h"
#include "model/layers/rotary.h"
#include "model/ops/ops.h"

namespace vela {

Result<std::unique_ptr<DecoderModel>> DecoderModel::create(const HFConfig& config, const ParallelInfo& parallel,
                                                           Communicator* comm, const DeviceContext& ctx) {
  const int tp = parallel.tp_size;
  auto unsupported = [&](const std::string& what) {
    return make_error("unsupported", config.source + ": tensor parallel size " + std::to_string(tp) + ": " + what);
  };
  if (tp < 1 || parallel.tp_rank < 0 || parallel.tp_rank >= tp)
    return make_error("bad_parallel", "tp_rank " + std::to_string(parallel.tp_rank) + " outside tp_size " +
                                          std::to_string(tp));
  if (config.num_attention_heads % tp != 0) return unsupported("does not divide num_attention_heads");
  if (config.intermediate_size % tp != 0) return unsupported("does not divide intermediate_size");
  const int64_t nk = config.num_key_value_heads;
  if (nk >= tp ? nk % tp != 0 : tp % nk != 0)
    return unsupported("and num_key_value_heads must divide one another");

  auto model = std::unique_ptr<DecoderModel>(new DecoderModel(config, parallel, comm, ctx));
  model->num_q_heads_ = config.num_attention_heads / tp;
  // With fewer KV heads than ranks each KV head is replicated on tp / nk ranks.
  int64_t nk_rank = nk >= tp ? nk / tp : 1;
  model->kv_head_start_ = nk >= tp ? parallel.tp_rank * nk_rank : parallel.tp_rank * nk / tp;
  model->intermediate_ = config.intermediate_size / tp;
  model->shape_.num_layers = config.num_hidden_layers;
  model->shape_.num_kv_heads = nk_rank;
  model->shape_.head_dim = config.head_dim;
  model->shape_.vocab_size = config.vocab_size;
  model->shape_.max_positions = config.max_position_embeddings;
  return model;
}

Status DecoderModel::load_weights(WeightSource& src) {
  const HFConfig& c = config_;
  const int rank = parallel_.tp_rank, tp = parallel_.tp_size;
  const int64_t H = c.hidden_size, hd = c.head_dim, nq = c.num_attention_heads, nk = c.num_key_value_heads;
  const int64_t nq_r = num_q_heads_, nk_r = shape_.num_kv_heads, I = c.intermediate_size, I_r = intermediate_;

  VELA_TRY_ASSIGN(embed_, VocabParallelEmbedding::load(src, "model.embed_tokens.weight", c.vocab_size, H, rank, tp));
  if (!c.tie_word_embeddings) {
    VELA_TRY_ASSIGN(lm_head_, VocabParallelEmbedding::load(src, "lm_head.weight", c.vocab_size, H, rank, tp));
  }
  auto norm = [&](const std::string& name, int64_t dim) { return src.load(name, {dim}, Slice::whole()); };

  layers_.clear();
  layers_.reserve(size_t(c.num_hidden_layers));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Layer layer;
    VELA_TRY_ASSIGN(layer.input_norm, norm(p + "input_layernorm.weight", H));
    VELA_TRY_ASSIGN(layer.post_attention_norm, norm(p + "post_attention_layernorm.weight", H));
    if (c.qk_norm) {
      VELA_TRY_ASSIGN(layer.q_norm, norm(p + "self_attn.q_norm.weight", hd));
      VELA_TRY_ASSIGN(layer.k_norm, norm(p + "self_attn.k_norm.weight", hd));
    }
    VELA_TRY_ASSIGN(layer.qkv, Linear::load_column(src,
                                                   {{p + "self_attn.q_proj", nq * hd, rank * nq_r * hd, nq_r * hd},
                                                    {p + "self_attn.k_proj", nk * hd, kv_head_start_ * hd, nk_r * hd},
                                                    {p + "self_attn.v_proj", nk * hd, kv_head_start_ * hd, nk_r * hd}},
                                                   H, c.qkv_bias));
    VELA_TRY_ASSIGN(layer.o,
                    Linear::load_row(src, p + "self_attn.o_proj", H, nq * hd, rank * nq_r * hd, nq_r * hd, c.o_bias));
    VELA_TRY_ASSIGN(layer.gate_up, Linear::load_column(src,
                                                       {{p + "mlp.gate_proj", I, rank * I_r, I_r},
                                                        {p + "mlp.up_proj", I, rank * I_r, I_r}},
                                                       H, c.mlp_bias));
    VELA_TRY_ASSIGN(layer.down, Linear::load_row(src, p + "mlp.down_proj", H, I, rank * I_r, I_r, c.mlp_bias));
    layers_.push_back(std::move(layer));
  }
  VELA_TRY_ASSIGN(final_norm_, norm("model.norm.weight", H));
  VELA_TRY_ASSIGN(rope_table_, to_device(make_rope_table(c.rope, hd, shape_.max_positions), DType::kF32, ctx_));
  return ok_status();
}

size_t DecoderModel::weight_bytes() const {
  size_t n = (embed_ ? embed_->nbytes() : 0) + (lm_head_ ? lm_head_->nbytes() : 0) + final_norm_.nbytes();
  for (const auto& l : layers_) {
    n += l.input_norm.nbytes() + l.post_attention_norm.nbytes() + l.qkv.nbytes() + l.o.nbytes() +
         l.gate_up.nbytes() + l.down.nbytes();
    if (l.q_norm.defined()) n += l.q_norm.nbytes() + l.k_norm.nbytes();
  }
  return n;
}

Result<size_t> DecoderModel::reserve(int64_t max_tokens, int64_t max_logit_rows) {
  try {
    reserve_tokens(max_tokens);
    reserve_logit_rows(max_logit_rows);
  } catch (const std::bad_alloc& e) {
    return make_error("out_of_memory", config_.source + ": activations for " + std::to_string(max_tokens) +
                                           " tokens: " + e.what());
  }
  ws_.fixed = true;
  size_t bytes = 0;
  for (const Tensor* t : {&ws_.hidden, &ws_.residual, &ws_.qkv, &ws_.attn, &ws_.gate_up, &ws_.act, &ws_.attn_scratch,
                          &ws_.selected, &ws_.logits, &ws_.logits_shard, &ws_.logits_gather})
    if (t->defined()) bytes += t->nbytes();
  return bytes;
}

namespace {
[[noreturn]] void beyond_reserve(const char* what, int64_t need, int64_t have) {
  std::fprintf(stderr, "vela: a step needs %lld %s but the model reserved %lld\n", (long long)need, what,
               (long long)have);
  std::abort();
}
}  // namespace

void DecoderModel::reserve_tokens(int64_t num_tokens) {
  if (num_tokens <= ws_.token_capacity) return;
  if (ws_.fixed) beyond_reserve("tokens", num_tokens, ws_.token_capacity);
  int64_t cap = std::max<int64_t>(num_tokens, 2 * ws_.token_capacity);
  const int64_t H = config_.hidden_size, hd = config_.head_dim;
  const int64_t qkv_width = (num_q_heads_ + 2 * shape_.num_kv_heads) * hd;
  const DType dt = ctx_.dtype;
  const Device dev = ctx_.device;
  ws_.hidden = Tensor::zeros({cap, H}, dt, dev);
  ws_.residual = Tensor::zeros({cap, H}, DType::kF32, dev);
  ws_.qkv = Tensor::zeros({cap, qkv_width}, dt, dev);
  ws_.attn = Tensor::zeros({cap, num_q_heads_ * hd}, dt, dev);
  ws_.gate_up = Tensor::zeros({cap, 2 * intermediate_}, dt, dev);
  ws_.act = Tensor::zeros({cap, intermediate_}, dt, dev);
  const size_t scratch = ops::attention_workspace_bytes(ctx_, cap, num_q_heads_, hd);
  ws_.attn_scratch = scratch > 0 ? Tensor::zeros({int64_t((scratch + 3) / 4)}, DType::kF32, dev) : Tensor();
  ws_.token_capacity = cap;
}

void DecoderModel::reserve_logit_rows(int64_t rows) {
  if (rows <= ws_.logit_capacity) return;
  if (ws_.fixed) beyond_reserve("logit rows", rows, ws_.logit_capacity);
  const VocabParallelEmbedding& head = lm_head_ ? *lm_head_ : *embed_;
  const int64_t cap = std::max<int64_t>(rows, 2 * ws_.logit_capacity);
  const Device dev = ctx_.device;
  ws_.selected = Tensor::zeros({cap, config_.hidden_size}, ctx_.dtype, dev);
  ws_.logits = Tensor::zeros({cap, config_.vocab_size}, DType::kF32, dev);
  if (parallel_.tp_size > 1) {
    ws_.logits_shard = Tensor::zeros({cap, head.rows_per_rank()}, DType::kF32, dev);
    ws_.logits_gather = Tensor::zeros({parallel_.tp_size * cap * head.rows_per_rank()}, DType::kF32, dev);
  }
  ws_.logit_capacity = cap;
}

void DecoderModel::attention_block(Layer& layer, const ForwardBatch& batch, LayerKVCache& kv, int64_t num_tokens,
                                   bool normed_input, bool add_output, bool fused_prologue) {
  const int64_t hd = config_.head_dim, nq = num_q_heads_, nk = shape_.num_kv_heads;
  const float eps = float(config_.rms_norm_eps);
  Tensor x = ws_.hidden.narrow(0, 0, num_tokens);
  Tensor residual = ws_.residual.narrow(0, 0, num_tokens);
  Tensor qkv = ws_.qkv.narrow(0, 0, num_tokens);
  // q/k/v are row-strided views into the fused [T, (nq + 2 nk) hd] output.
  Tensor q = qkv.narrow(1, 0, nq * hd).unflatten_last(nq, hd);
  if (fused_prologue) {
    const ops::QkvPrologue pro{nq, nk, hd, &batch.positions, &rope_table_, config_.rope.interleaved, &kv, &batch};
    layer.qkv.forward_qkv_prologue(ctx_, normed_input ? residual : x, normed_input ? &layer.input_norm : nullptr, eps,
                                   qkv, pro);
  } else {
    if (normed_input) layer.qkv.forward_normed(ctx_, residual, layer.input_norm, eps, qkv);
    else layer.qkv.forward(ctx_, x, qkv, comm_);
    Tensor k = qkv.narrow(1, nq * hd, nk * hd).unflatten_last(nk, hd);
    Tensor v = qkv.narrow(1, (nq + nk) * hd, nk * hd).unflatten_last(nk, hd);
    ops::qkv_rope_cache(ctx_, q, k, v, config_.qk_norm ? &layer.q_norm : nullptr,
                        config_.qk_norm ? &layer.k_norm : nullptr, eps, batch.positions, rope_table_,
                        config_.rope.interleaved, kv, batch);
  }
  Tensor attn = ws_.attn.narrow(0, 0, num_tokens);
  Tensor attn_heads = attn.unflatten_last(nq, hd);
  ops::paged_attention(ctx_, q, kv, batch, 1.0f / std::sqrt(float(hd)), attn_heads, ws_.attn_scratch);
  if (add_output) layer.o.forward_add(ctx_, attn, residual);
  else layer.o.forward(ctx_, attn, x, comm_);
}

// Steps of 1-2 tokens (decode at batch 1-2) at TP 1 on CUDA in bf16: the residual
// add after o / down rides in their GEMV (out += result) and the RMSNorm before
// qkv / gate_up in the next GEMV's prologue, so of the 2 L + 1 add_rms_norm launches
// of a step only the first layer's input norm and the final norm remain (S1 on the
// H200: PERF_NOTES). Every layer has the first one's shapes, so it speaks for all.
// VELA_FUSED_NORM=0 in the environment keeps the unfused ops (A/B runs).
bool DecoderModel::fuse_norms(int64_t num_tokens) const {
  static const bool enabled = [] {
    const char* e = std::getenv("VELA_FUSED_NORM");
    return e == nullptr || std::string(e) != "0";
  }();
  if (!enabled || parallel_.tp_size != 1 || layers_.empty()) return false;
  const Layer& l = layers_[0];
  return l.qkv.fusable(ctx_, num_tokens) && l.o.fusable(ctx_, num_tokens) &&
         l.gate_up.fusable(ctx_, num_tokens, true) && l.down.fusable(ctx_, num_tokens);
}

// Where the norms are fused (forward() asks only then), a model without q/k norm
// also runs the attention prologue (RoPE on q and k, k and v into the cache) in the
// qkv projection's kernel: one launch a layer fewer between the projection and
// attention (PERF_NOTES: S1). VELA_FUSED_ROPE=0 keeps qkv_rope_cache separate (A/B runs).
bool DecoderModel::fuse_qkv_prologue(int64_t num_tokens) const {
  static const bool enabled = [] {
    const char* e = std::getenv("VELA_FUSED_ROPE");
    return e == nullptr || std::string(e) != "0";
  }();
  return enabled && !config_.qk_norm && layers_[0].qkv.fusable_qkv_prologue(ctx_, num_tokens, config_.head_dim);
}

Tensor DecoderModel::forward(const ForwardBatch& batch, std::vector<LayerKVCache>& kv) {
  const int64_t T = batch.num_tokens;
  const float eps = float(config_.rms_norm_eps);
  reserve_tokens(T);
  Tensor x = ws_.hidden.narrow(0, 0, T);
  Tensor residual = ws_.residual.narrow(0, 0, T);
  Tensor gate_up = ws_.gate_up.narrow(0, 0, T);
  Tensor act = ws_.act.narrow(0, 0, T);
  embed_->forward(ctx_, batch.input_ids, x, comm_);
  const bool fused = fuse_norms(T), fused_prologue = fused && fuse_qkv_prologue(T);
  for (size_t l = 0; l < layers_.size(); ++l) {
    Layer& layer = layers_[l];
    const bool last = l + 1 == layers_.size();
    if (!fused || l == 0)
      ops::add_rms_norm(ctx_, x, residual, layer.input_norm, eps, l == 0 ? ops::Residual::kStart : ops::Residual::kAdd);
    attention_block(layer, batch, kv[l], T, fused && l > 0, fused, fused_prologue);
    if (fused) {
      layer.gate_up.forward_silu_mul_normed(ctx_, residual, layer.post_attention_norm, eps, act);
    } else {
      ops::add_rms_norm(ctx_, x, residual, layer.post_attention_norm, eps);
      layer.gate_up.forward_silu_mul(ctx_, x, gate_up, act);
    }
    if (fused && !last) layer.down.forward_add(ctx_, act, residual);  // the last one feeds the final norm
    else layer.down.forward(ctx_, act, x, comm_);
  }
  ops::add_rms_norm(ctx_, x, residual, final_norm_, eps);
  return x;
}

Tensor DecoderModel::compute_logits(const Tensor& hidden, const Tensor& rows) {
  const int64_t S = rows.size(0);
  const VocabParallelEmbedding& head = lm_head_ ? *lm_head_ : *embed_;
  reserve_logit_rows(S);
  Tensor selected = ws_.selected.narrow(0, 0, S);
  Tensor logits = ws_.logits.narrow(0, 0, S);
  Tensor shard = parallel_.tp_size > 1 ? ws_.logits_shard.narrow(0, 0, S) : Tensor();
  ops::gather_rows(ctx_, hidden, rows, selected);
  head.logits(ctx_, selected, logits, shard, ws_.logits_gather, comm_);
  return logits;
}

}  // namespace vela

#include "workers/model_runner.h"

#include <algorithm>
#include <chrono>

#include "model/communicator.h"
#include "model/forward_batch.h"
#include "model/hf_config.h"
#include "model/models/causal_lm.h"
#include "model/models/registry.h"
#include "model/weights.h"
#include "workers/memory_profile.h"
#include "workers/persistent_batch.h"
#include "workers/sampler.h"

namespace vela {

namespace {

class ModelRunner final : public Runner {
 public:
  ModelRunner(Communicator* comm, const ModelRunnerOptions& options)
      : comm_(comm != nullptr ? comm : &single_rank_), options_(options) {}

  Result<ProfileResult> load(const LoadModel& request) override;
  Result<bool> init_kv_cache(const InitKVCache& request) override;
  Result<ModelRunnerOutput> execute(const SchedulerOutput& step) override;

 private:
  ForwardBatch make_forward_batch();
  void sample(ModelRunnerOutput& out, const Tensor& logits);

  SingleRankCommunicator single_rank_;
  Communicator* comm_;
  ModelRunnerOptions options_;
  HFConfig config_;
  std::unique_ptr<CausalLM> model_;
  std::vector<LayerKVCache> kv_;
  int32_t block_size_ = 16;
  int32_t num_blocks_ = 0;
  PersistentBatch batch_;
  StepInputs inputs_;
  Sampler sampler_;
  std::vector<SampleRow> sample_rows_;
  std::vector<int32_t> sampled_tokens_;
};

Result<ProfileResult> ModelRunner::load(const LoadModel& request) {
  if (request.tensor_parallel_size != comm_->world_size() || request.tp_rank != comm_->rank())
    return make_error("bad_parallel", "LoadModel asks for rank " + std::to_string(request.tp_rank) + " of " +
                                          std::to_string(request.tensor_parallel_size) + " but the communicator is rank " +
                                          std::to_string(comm_->rank()) + " of " + std::to_string(comm_->world_size()));
  if (request.dtype != "auto" && request.dtype != "float32" && request.dtype != "bfloat16" && request.dtype != "float16")
    return make_error("bad_dtype", "dtype '" + request.dtype + "' (supported: auto, float32, bfloat16, float16)");
  if (request.block_size_tokens <= 0)
    return make_error("bad_config", "block_size_tokens must be positive, got " + std::to_string(request.block_size_tokens));
  auto config = load_hf_config(request.model_path);
  if (!config) return config.error();
  config_ = config.value();
  auto model = create_model(config_, ParallelInfo{request.tp_rank, request.tensor_parallel_size}, comm_);
  if (!model) return model.error();
  model_ = std::move(model.value());
  if (request.max_model_len > model_->shape().max_positions)
    return make_error("bad_config", "max_model_len " + std::to_string(request.max_model_len) +
                                        " exceeds the model's max_position_embeddings " +
                                        std::to_string(model_->shape().max_positions));
  std::unique_ptr<WeightSource> weights;
  if (request.load_format == "dummy") {
    weights = make_dummy_weights(request.seed, config_.initializer_range);
  } else if (request.load_format == "auto" || request.load_format == "safetensors") {
    auto opened = open_safetensors_weights(request.model_path);
    if (!opened) return opened.error();
    weights = std::move(opened.value());
  } else {
    return make_error("bad_config", "load_format '" + request.load_format + "' (supported: auto, safetensors, dummy)");
  }
  auto loaded = model_->load_weights(*weights);
  if (!loaded) return loaded.error();
  batch_.set_base_seed(request.seed);
  block_size_ = request.block_size_tokens;

  const ModelShape& s = model_->shape();
  ProfileResult profile;
  profile.rank = request.tp_rank;
  profile.bytes_per_block = cpu_kv_bytes_per_block(s.num_layers, s.num_kv_heads, s.head_dim, block_size_);
  profile.kv_cache_bytes_available =
      cpu_kv_cache_bytes(options_.cpu_kv_cache_bytes ? options_.cpu_kv_cache_bytes : request.cpu_kv_cache_bytes, request.memory_utilization, model_->weight_bytes());
  profile.vocab_size = int32_t(s.vocab_size);
  profile.eos_token_id = config_.eos_token_ids.empty() ? -1 : config_.eos_token_ids[0];
  return profile;
}

Result<bool> ModelRunner::init_kv_cache(const InitKVCache& request) {
  if (!model_) return make_error("not_loaded", "init_kv_cache before load");
  if (request.num_blocks <= 0 || request.block_size_tokens <= 0)
    return make_error("bad_config", "InitKVCache needs positive num_blocks and block_size_tokens");
  block_size_ = request.block_size_tokens;
  num_blocks_ = request.num_blocks;
  const ModelShape& s = model_->shape();
  kv_.clear();
  for (int64_t l = 0; l < s.num_layers; ++l)
    kv_.push_back({Tensor::zeros({num_blocks_, block_size_, s.num_kv_heads, s.head_dim}, DType::kF32),
                   Tensor::zeros({num_blocks_, block_size_, s.num_kv_heads, s.head_dim}, DType::kF32)});
  return true;
}

ForwardBatch ModelRunner::make_forward_batch() {
  // Host vectors viewed in place: the CPU backend reads them directly.
  const int64_t T = inputs_.num_tokens(), S = int64_t(inputs_.requests.size());
  ForwardBatch b;
  b.input_ids = Tensor::from_blob(inputs_.input_ids.data(), {T}, DType::kI32);
  b.positions = Tensor::from_blob(inputs_.positions.data(), {T}, DType::kI32);
  b.slot_mapping = Tensor::from_blob(inputs_.slot_mapping.data(), {T}, DType::kI64);
  b.block_tables = Tensor::from_blob(inputs_.block_tables.data(), {S, inputs_.max_blocks_per_seq}, DType::kI32);
  b.query_start_loc = Tensor::from_blob(inputs_.query_start_loc.data(), {S + 1}, DType::kI32);
  b.seq_lens = Tensor::from_blob(inputs_.seq_lens.data(), {S}, DType::kI32);
  b.num_tokens = int32_t(T);
  b.num_seqs = int32_t(S);
  b.max_seq_len = inputs_.max_seq_len;
  return b;
}

void ModelRunner::sample(ModelRunnerOutput& out, const Tensor& logits) {
  sample_rows_.clear();
  int32_t num_top = -1;
  for (int32_t i : inputs_.sampled_request_index) {
    const RequestState& r = *inputs_.requests[size_t(i)];
    std::span<const int32_t> all(r.token_ids);
    sample_rows_.push_back({&r.sampling_params, r.seed, all.first(size_t(r.num_prompt_tokens)),
                            all.subspan(size_t(r.num_prompt_tokens))});
    num_top = std::max(num_top, r.sampling_params.logprobs);
  }
  StepLogprobs* lp = num_top >= 0 ? &out.logprobs : nullptr;
  if (lp != nullptr) lp->num_top = num_top;
  sampler_.sample(logits, sample_rows_, num_top, sampled_tokens_, lp);
  for (size_t j = 0; j < inputs_.sampled_request_index.size(); ++j)
    out.sampled_token_ids[size_t(inputs_.sampled_request_index[j])].push_back(sampled_tokens_[j]);
  if (lp != nullptr) {
    // Rows follow the requests' order; a request not sampled this step has none.
    int32_t row = 0;
    for (const auto& tokens : out.sampled_token_ids) {
      lp->row_offsets.push_back(row);
      row += int32_t(tokens.size());
    }
  }
}

Result<ModelRunnerOutput> ModelRunner::execute(const SchedulerOutput& step) {
  auto start = std::chrono::steady_clock::now();
  if (kv_.empty()) return make_error("not_initialised", "execute before init_kv_cache");
  auto updated = batch_.update(step);
  if (!updated) return updated.error();
  auto prepared = batch_.prepare(step, block_size_, inputs_);
  if (!prepared) return prepared.error();
  for (size_t i = 0; i < inputs_.requests.size(); ++i) {
    const RequestState& r = *inputs_.requests[i];
    if (inputs_.seq_lens[i] > model_->shape().max_positions)
      return make_error("bad_step", "request '" + r.request_id + "': " + std::to_string(inputs_.seq_lens[i]) +
                                        " tokens exceed max_position_embeddings");
    for (int32_t b : r.block_ids)
      if (b < 0 || b >= num_blocks_)
        return make_error("bad_step", "request '" + r.request_id + "': block id " + std::to_string(b) +
                                          " outside the pool of " + std::to_string(num_blocks_));
  }
  ModelRunnerOutput out;
  out.step_id = step.step_id;
  out.request_ids.reserve(inputs_.requests.size());
  for (const RequestState* r : inputs_.requests) out.request_ids.push_back(r->request_id);
  out.sampled_token_ids.resize(inputs_.requests.size());
  if (inputs_.num_tokens() > 0) {
    ForwardBatch batch = make_forward_batch();
    Tensor hidden = model_->forward(batch, kv_);
    if (!inputs_.sample_rows.empty()) {
      // Every rank takes part (the logits are all-gathered); rank 0 samples.
      Tensor rows = Tensor::from_blob(inputs_.sample_rows.data(), {int64_t(inputs_.sample_rows.size())}, DType::kI32);
      Tensor logits = model_->compute_logits(hidden, rows);
      if (comm_->rank() == 0) sample(out, logits);
    }
  }
  batch_.advance(inputs_);
  out.execute_time_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace

std::unique_ptr<Runner> make_model_runner(Communicator* comm) { return make_model_runner(comm, {}); }

std::unique_ptr<Runner> make_model_runner(Communicator* comm, const ModelRunnerOptions& options) {
  return std::make_unique<ModelRunner>(comm, options);
}

}  // namespace vela

#include "workers/noop_runner.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <string>
#include <thread>

#include "model/hf_config.h"
#include "workers/memory_profile.h"
#include "workers/persistent_batch.h"
#include "workers/synthetic_runner.h"

namespace vela {

namespace {

class NoopRunner final : public Runner {
 public:
  explicit NoopRunner(const NoopRunnerOptions& options) : options_(options) {}

  Result<ProfileResult> load(const LoadModel& request) override {
    assert(request.block_size_tokens > 0 && "checked by the engine (validate_scheduler_limits)");
    ProfileResult profile;
    profile.rank = request.tp_rank;
    profile.vocab_size = options_.vocab_size;
    profile.bytes_per_block = kv_bytes_per_block(1, 1, 1, request.block_size_tokens, sizeof(float));
    // The model's config, when there is one, gives realistic vocab/EOS/block sizes
    // (the synthetic runner keeps its own: it never stops by EOS).
    auto config = options_.synthetic_tokens ? Result<HFConfig>(make_error("synthetic", ""))
                                            : load_hf_config(request.model_path);
    if (config) {
      profile.vocab_size = int32_t(config->vocab_size);
      if (!config->eos_token_ids.empty()) profile.eos_token_id = config->eos_token_ids[0];
      profile.bytes_per_block = kv_bytes_per_block(config->num_hidden_layers, config->num_key_value_heads,
                                                   config->head_dim, request.block_size_tokens, sizeof(float));
      while (std::find(config->eos_token_ids.begin(), config->eos_token_ids.end(), token_) !=
             config->eos_token_ids.end())
        ++token_;
    }
    if (options_.bytes_per_token > 0)
      profile.bytes_per_block = options_.bytes_per_token * static_cast<uint64_t>(request.block_size_tokens);
    profile.kv_cache_bytes_available =
        options_.kv_cache_bytes > 0 ? options_.kv_cache_bytes
                                    : cpu_kv_cache_bytes(request.cpu_kv_cache_bytes, request.memory_utilization, 0);
    vocab_size_ = profile.vocab_size;
    block_size_ = request.block_size_tokens;
    rank_ = request.tp_rank;
    return profile;
  }

  Status init_kv_cache(const InitKVCache&) override { return ok_status(); }

  Result<ModelRunnerOutput> execute(const SchedulerOutput& step) override {
    ModelRunnerOutput out;
    VELA_TRY(execute_into(step, out));
    return out;
  }

  // Fills `out` in place: its id strings and token vectors keep their capacity.
  Status execute_into(const SchedulerOutput& step, ModelRunnerOutput& out) override {
    auto start = std::chrono::steady_clock::now();
    VELA_TRY(batch_.update(step));
    VELA_TRY(batch_.prepare(step, block_size_, inputs_));
    out.step_id = step.step_id;
    out.logprobs = {};
    const size_t n = rank_ == 0 ? inputs_.requests.size() : 0;
    out.request_ids.resize(n);
    out.sampled_token_ids.resize(n);
    for (size_t i = 0; i < n; ++i) {
      out.request_ids[i] = inputs_.requests[i]->request_id;
      out.sampled_token_ids[i].clear();
    }
    if (rank_ == 0)
      for (int32_t i : inputs_.sampled_request_index) {
        const auto& tokens = inputs_.requests[size_t(i)]->token_ids;
        out.sampled_token_ids[size_t(i)].push_back(
            options_.synthetic_tokens ? synthetic_next_token(tokens.back(), int64_t(tokens.size()), vocab_size_) : token_);
      }
    batch_.advance(inputs_);
    if (options_.step_time_us > 0) std::this_thread::sleep_until(start + std::chrono::microseconds(options_.step_time_us));
    out.execute_time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
    return ok_status();
  }

 private:
  NoopRunnerOptions options_;
  int32_t vocab_size_ = 32000;
  PersistentBatch batch_;
  StepInputs inputs_;
  int32_t block_size_ = 16;
  int32_t rank_ = 0;
  int32_t token_ = 0;
};

}  // namespace

std::unique_ptr<Runner> make_noop_runner(const NoopRunnerOptions& options) {
  return std::make_unique<NoopRunner>(options);
}

}  // namespace vela

#include "workers/synthetic_runner.h"

#include <string>
#include <unordered_map>
#include <vector>

namespace vela {

int32_t synthetic_next_token(int32_t last_token, int64_t num_tokens, int32_t vocab_size) {
  // splitmix64 of (last token, length): deterministic, spread over the vocabulary.
  uint64_t z = (static_cast<uint64_t>(static_cast<uint32_t>(last_token)) << 32) ^
               static_cast<uint64_t>(num_tokens) ^ 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<int32_t>(z % static_cast<uint64_t>(vocab_size));
}

namespace {

class SyntheticRunner final : public Runner {
 public:
  explicit SyntheticRunner(const SyntheticRunnerOptions& options) : options_(options) {}

  Result<ProfileResult> load(const LoadModel& request) override {
    if (request.block_size_tokens < 1)
      return make_error("bad_block_size", "block_size_tokens must be >= 1, got " +
                                              std::to_string(request.block_size_tokens));
    ProfileResult p;
    p.rank = request.tp_rank;
    p.kv_cache_bytes_available = options_.kv_cache_bytes;
    p.bytes_per_block = options_.bytes_per_token * static_cast<uint64_t>(request.block_size_tokens);
    p.vocab_size = options_.vocab_size;
    p.eos_token_id = -1;  // never stops by EOS: requests run to max_tokens or a stop id
    return p;
  }

  Result<bool> init_kv_cache(const InitKVCache& request) override {
    num_blocks_ = request.num_blocks;
    return true;
  }

  Result<ModelRunnerOutput> execute(const SchedulerOutput& step) override {
    for (const auto& id : step.finished_req_ids) requests_.erase(id);
    for (const auto& nr : step.scheduled_new_reqs) {
      auto& r = requests_[nr.request_id];
      r.tokens = nr.prompt_token_ids;
      r.num_computed_tokens = nr.num_computed_tokens;
      r.num_blocks = static_cast<int32_t>(nr.block_ids.size());
    }
    const auto& cached = step.scheduled_cached_reqs;
    for (size_t i = 0; i < cached.size(); ++i) {
      auto it = requests_.find(cached.request_ids[i]);
      if (it == requests_.end())
        return make_error("unknown_request", "step " + std::to_string(step.step_id) +
                                                 ": cached request '" + cached.request_ids[i] + "' was never sent");
      auto& r = it->second;
      const auto& toks = cached.new_token_ids[i];
      r.tokens.insert(r.tokens.end(), toks.begin(), toks.end());
      r.num_computed_tokens = cached.num_computed_tokens[i];
      if (cached.resumed_from_preemption[i]) r.num_blocks = 0;
      r.num_blocks += static_cast<int32_t>(cached.new_block_ids[i].size());
    }
    ModelRunnerOutput out;
    out.step_id = step.step_id;
    out.request_ids.reserve(step.num_scheduled_tokens.size());
    out.sampled_token_ids.reserve(step.num_scheduled_tokens.size());
    for (const auto& [id, num_tokens] : step.num_scheduled_tokens) {
      auto it = requests_.find(id);
      if (it == requests_.end())
        return make_error("unknown_request", "step " + std::to_string(step.step_id) + ": scheduled request '" +
                                                 id + "' is not in the batch");
      auto& r = it->second;
      r.num_computed_tokens += num_tokens;
      if (r.num_computed_tokens > static_cast<int64_t>(r.tokens.size()))
        return make_error("overrun", "request '" + id + "' computes " + std::to_string(r.num_computed_tokens) +
                                         " tokens but has " + std::to_string(r.tokens.size()));
      out.request_ids.push_back(id);
      if (r.num_computed_tokens == static_cast<int64_t>(r.tokens.size()) && !r.tokens.empty()) {
        out.sampled_token_ids.push_back(
            {synthetic_next_token(r.tokens.back(), static_cast<int64_t>(r.tokens.size()), options_.vocab_size)});
      } else {
        out.sampled_token_ids.emplace_back();  // a partial prefill chunk samples nothing
      }
    }
    return out;
  }

 private:
  struct RequestState {
    std::vector<int32_t> tokens;      // prompt + outputs the engine has sent back
    int64_t num_computed_tokens = 0;
    int32_t num_blocks = 0;
  };
  SyntheticRunnerOptions options_;
  int32_t num_blocks_ = 0;
  std::unordered_map<std::string, RequestState> requests_;
};

}  // namespace

std::unique_ptr<Runner> make_synthetic_runner(const SyntheticRunnerOptions& options) {
  return std::make_unique<SyntheticRunner>(options);
}

}  // namespace vela

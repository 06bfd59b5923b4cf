#pragma once
// A minimal scheduler for driving the runner in tests (workers must not depend on
// engine_core). Blocks come from a counter; prompts can be chunked and token
// budgets capped so prefill and decode mix; a request can reuse another's full
// prompt blocks (a prefix-cache hit) or be preempted and resumed. It checks the
// runner's answers against the protocol: a token exactly when a request's KV has
// caught up with all its tokens.
#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "messages/model_runner_output.h"
#include "messages/scheduler_output.h"
#include "workers/runner.h"

namespace vela::testing {

class MiniScheduler {
 public:
  struct Options {
    int32_t block_size = 16;
    int32_t max_chunk_tokens = 1 << 30;  // per request per step
    int32_t token_budget = 1 << 30;      // per step
    int32_t first_block = 0;             // blocks are handed out from here (1 keeps the null block 0 free)
  };
  struct Request {
    std::string id;
    std::vector<int32_t> prompt;
    std::vector<int32_t> outputs;
    SamplingParams params;
    int32_t max_tokens = 0;
    std::vector<int32_t> blocks;
    int32_t num_computed = 0;
    int32_t num_prefix_hit = 0;     // tokens the request started with in the cache
    int32_t num_scheduled_total = 0;
    size_t outputs_sent = 0, blocks_sent = 0;
    bool sent = false, finished = false, resumed = false;
    int32_t total() const { return int32_t(prompt.size() + outputs.size()); }
  };

  explicit MiniScheduler(Options options) : options_(options), next_block_(options.first_block) {}

  // prefix_source: an earlier request whose full prompt blocks this one reuses
  // where the prompts agree (and the source has computed them).
  void add(const std::string& id, std::vector<int32_t> prompt, SamplingParams params, int32_t max_tokens,
           const std::string& prefix_source = "") {
    Request r;
    r.id = id;
    r.prompt = std::move(prompt);
    r.params = params;
    r.max_tokens = max_tokens;
    if (!prefix_source.empty()) {
      const Request& src = requests_.at(prefix_source);
      int32_t limit = std::min<int32_t>(src.num_computed, int32_t(r.prompt.size()) - 1);  // compute >= 1 token
      int32_t common = 0;
      while (common < limit && size_t(common) < src.prompt.size() && src.prompt[size_t(common)] == r.prompt[size_t(common)])
        ++common;
      int32_t blocks = common / options_.block_size;
      r.blocks.assign(src.blocks.begin(), src.blocks.begin() + blocks);
      r.num_computed = r.num_prefix_hit = blocks * options_.block_size;
    }
    order_.push_back(id);
    requests_[id] = std::move(r);
  }

  // Next step's plan requests: preempt drops the request's blocks and KV progress.
  void preempt(const std::string& id) {
    Request& r = requests_.at(id);
    r.blocks.clear();
    r.num_computed = 0;
    r.resumed = true;
    pending_preempted_.push_back(id);
  }

  SchedulerOutput schedule() {
    SchedulerOutput out;
    out.step_id = ++step_id_;
    out.finished_req_ids = std::move(pending_finished_);
    pending_finished_.clear();
    out.preempted_req_ids = std::move(pending_preempted_);
    pending_preempted_.clear();
    int32_t budget = options_.token_budget;
    for (const auto& id : order_) {
      Request& r = requests_.at(id);
      if (r.finished || budget == 0) continue;
      if (std::find(out.preempted_req_ids.begin(), out.preempted_req_ids.end(), id) != out.preempted_req_ids.end())
        continue;  // resumes next step
      int32_t n = std::min({r.total() - r.num_computed, options_.max_chunk_tokens, budget});
      if (n <= 0) continue;
      budget -= n;
      int32_t blocks_needed = (r.num_computed + n + options_.block_size - 1) / options_.block_size;
      while (int32_t(r.blocks.size()) < blocks_needed) r.blocks.push_back(next_block_++);
      if (!r.sent) {
        NewRequestData nr{r.id, r.prompt, r.params, r.blocks, r.num_computed};
        out.scheduled_new_reqs.push_back(nr);
        r.sent = true;
      } else {
        auto& c = out.scheduled_cached_reqs;
        c.request_ids.push_back(r.id);
        c.resumed_from_preemption.push_back(r.resumed ? 1 : 0);
        c.new_token_ids.emplace_back(r.outputs.begin() + ptrdiff_t(r.outputs_sent), r.outputs.end());
        size_t from = r.resumed ? 0 : r.blocks_sent;
        c.new_block_ids.emplace_back(r.blocks.begin() + ptrdiff_t(from), r.blocks.end());
        c.num_computed_tokens.push_back(r.num_computed);
        r.resumed = false;
      }
      r.outputs_sent = r.outputs.size();
      r.blocks_sent = r.blocks.size();
      out.num_scheduled_tokens.emplace_back(r.id, n);
      out.total_num_scheduled_tokens += n;
    }
    return out;
  }

  void update(const SchedulerOutput& step, const ModelRunnerOutput& result) {
    REQUIRE(result.request_ids.size() == step.num_scheduled_tokens.size());
    for (size_t i = 0; i < step.num_scheduled_tokens.size(); ++i) {
      const auto& [id, n] = step.num_scheduled_tokens[i];
      REQUIRE(result.request_ids[i] == id);
      Request& r = requests_.at(id);
      r.num_computed += n;
      r.num_scheduled_total += n;
      bool complete = r.num_computed == r.total();
      INFO("request " << id << " step " << step.step_id);
      REQUIRE(result.sampled_token_ids[i].size() == (complete ? 1u : 0u));
      if (!complete) continue;
      r.outputs.push_back(result.sampled_token_ids[i][0]);
      if (int32_t(r.outputs.size()) >= r.max_tokens) {
        r.finished = true;
        pending_finished_.push_back(id);
      }
    }
  }

  bool done() const {
    return std::all_of(requests_.begin(), requests_.end(), [](const auto& kv) { return kv.second.finished; });
  }

  // Runs steps until every request finished; on_step(step_number) may add or preempt.
  template <class OnStep>
  void run(Runner& runner, OnStep on_step, int32_t max_steps = 10000) {
    for (int32_t s = 0; s < max_steps; ++s) {
      on_step(s);
      if (done()) return;
      SchedulerOutput step = schedule();
      auto result = runner.execute(step);
      if (!result) FAIL(result.error().message);
      update(step, result.value());
    }
    FAIL("requests did not finish");
  }
  void run(Runner& runner) { run(runner, [](int32_t) {}); }

  const Request& request(const std::string& id) const { return requests_.at(id); }
  int32_t num_blocks_used() const { return next_block_ - options_.first_block; }
  uint64_t num_steps() const { return step_id_; }

 private:
  Options options_;
  std::map<std::string, Request> requests_;
  std::vector<std::string> order_;
  std::vector<std::string> pending_finished_, pending_preempted_;
  int32_t next_block_ = 0;
  uint64_t step_id_ = 0;
};

}  // namespace vela::testing

#pragma once
// FakeRunner: a model runner stand-in for engine-core tests. It keeps the workers'
// view of each request purely from SchedulerOutput diffs (so it checks the diff
// protocol), "writes" each computed token's id into a fake KV array at its slot,
// checks that every context it reads holds the request's own tokens (so a wrong
// prefix-cache hit or a block shared by mistake is caught), and samples a
// deterministic token when a request's computed count reaches its token count.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "messages/model_runner_output.h"
#include "messages/scheduler_output.h"

namespace vela::testing {

class FakeRunner {
 public:
  // token_fn(request_id, output_index) is the token sampled for that output.
  FakeRunner(int32_t num_blocks, int32_t block_size_tokens,
             std::function<int32_t(const std::string&, int32_t)> token_fn)
      : block_size_(block_size_tokens),
        kv_(static_cast<size_t>(num_blocks) * static_cast<size_t>(block_size_tokens), -1),
        token_fn_(std::move(token_fn)) {}

  // Reverse the rows of every answer (exercises the scheduler's lookup by id).
  bool reverse_rows = false;
  int64_t num_tokens_computed = 0;

  size_t num_live_requests() const { return requests_.size(); }

  ModelRunnerOutput execute(const SchedulerOutput& so) {
    for (const std::string& id : so.finished_req_ids) {
      auto it = requests_.find(id);
      REQUIRE(it != requests_.end());
      // Its blocks were freed in the last update but nobody has written them since.
      if (!it->second.preempted) verify_context(id, it->second, it->second.num_computed);
      requests_.erase(it);
    }
    for (const std::string& id : so.preempted_req_ids) {
      REQUIRE(requests_.count(id) == 1);
      requests_[id].preempted = true;  // its blocks may be reused from now on
    }
    for (const NewRequestData& n : so.scheduled_new_reqs) {
      INFO("new request " << n.request_id);
      REQUIRE(requests_.count(n.request_id) == 0);
      View& v = requests_[n.request_id];
      v.tokens = n.prompt_token_ids;
      v.num_prompt_tokens = static_cast<int32_t>(n.prompt_token_ids.size());
      v.blocks = n.block_ids;
      v.num_computed = n.num_computed_tokens;
      v.verify_all = true;
      v.last_listed_step = so.step_id;
    }
    const CachedRequestData& c = so.scheduled_cached_reqs;
    REQUIRE(c.resumed_from_preemption.size() == c.size());
    REQUIRE(c.new_token_ids.size() == c.size());
    REQUIRE(c.new_block_ids.size() == c.size());
    REQUIRE(c.num_computed_tokens.size() == c.size());
    for (size_t i = 0; i < c.size(); ++i) {
      INFO("cached request " << c.request_ids[i]);
      auto it = requests_.find(c.request_ids[i]);
      REQUIRE(it != requests_.end());
      View& v = it->second;
      v.tokens.insert(v.tokens.end(), c.new_token_ids[i].begin(), c.new_token_ids[i].end());
      if (c.resumed_from_preemption[i]) {
        REQUIRE(v.preempted);
        v.preempted = false;
        v.blocks = c.new_block_ids[i];
        v.verify_all = true;
      } else {
        REQUIRE(!v.preempted);
        REQUIRE(c.num_computed_tokens[i] == v.num_computed);
        v.blocks.insert(v.blocks.end(), c.new_block_ids[i].begin(), c.new_block_ids[i].end());
      }
      v.num_computed = c.num_computed_tokens[i];
      v.last_listed_step = so.step_id;
    }
    REQUIRE(so.num_scheduled_tokens.size() == so.scheduled_new_reqs.size() + c.size());

    // Write the whole batch's KV first (as a real runner does per layer), then read.
    int32_t total = 0;
    for (const auto& [id, n] : so.num_scheduled_tokens) {
      INFO("scheduled request " << id);
      auto it = requests_.find(id);
      REQUIRE(it != requests_.end());
      View& v = it->second;
      REQUIRE(v.last_listed_step == so.step_id);  // listed as new or cached this step
      REQUIRE(!v.preempted);
      REQUIRE(n > 0);
      REQUIRE(v.num_computed + n <= static_cast<int32_t>(v.tokens.size()));
      REQUIRE(v.num_computed + n <= static_cast<int32_t>(v.blocks.size()) * block_size_);
      for (int32_t pos = v.num_computed; pos < v.num_computed + n; ++pos) kv_[slot(v, pos)] = v.tokens[pos];
      total += n;
    }
    REQUIRE(total == so.total_num_scheduled_tokens);
    num_tokens_computed += total;

    ModelRunnerOutput out;
    out.step_id = so.step_id;
    for (const auto& [id, n] : so.num_scheduled_tokens) {
      View& v = requests_[id];
      // Read: the full context for requests new or resumed this step (that is where
      // prefix hits enter), else the block being extended and the new chunk.
      const int32_t from = v.verify_all ? 0 : (v.num_computed / block_size_) * block_size_;
      v.verify_all = false;
      v.num_computed += n;
      verify_range(id, v, from, v.num_computed);
      out.request_ids.push_back(id);
      if (v.num_computed == static_cast<int32_t>(v.tokens.size())) {
        const auto output_index = static_cast<int32_t>(v.tokens.size()) - v.num_prompt_tokens;
        out.sampled_token_ids.push_back({token_fn_(id, output_index)});
      } else {
        out.sampled_token_ids.emplace_back();
      }
    }
    if (reverse_rows) {
      std::reverse(out.request_ids.begin(), out.request_ids.end());
      std::reverse(out.sampled_token_ids.begin(), out.sampled_token_ids.end());
    }
    return out;
  }

 private:
  struct View {
    std::vector<int32_t> tokens;  // prompt + outputs, as sent by the scheduler
    int32_t num_prompt_tokens = 0;
    std::vector<int32_t> blocks;
    int32_t num_computed = 0;
    bool verify_all = false;
    bool preempted = false;
    uint64_t last_listed_step = 0;
  };

  size_t slot(const View& v, int32_t pos) const {
    const auto block = static_cast<size_t>(v.blocks[static_cast<size_t>(pos / block_size_)]);
    return block * static_cast<size_t>(block_size_) + static_cast<size_t>(pos % block_size_);
  }
  void verify_range(const std::string& id, const View& v, int32_t from, int32_t to) const {
    for (int32_t pos = from; pos < to; ++pos) {
      if (kv_[slot(v, pos)] != v.tokens[static_cast<size_t>(pos)]) {
        FAIL("request " << id << ": KV at position " << pos << " (block " << v.blocks[pos / block_size_]
                        << ") holds token " << kv_[slot(v, pos)] << ", expected " << v.tokens[pos]);
      }
    }
  }
  void verify_context(const std::string& id, const View& v, int32_t num_computed) const {
    verify_range(id, v, 0, num_computed);
  }

  int32_t block_size_;
  std::vector<int32_t> kv_;  // [num_blocks * block_size]: token id written at each slot
  std::function<int32_t(const std::string&, int32_t)> token_fn_;
  std::unordered_map<std::string, View> requests_;
};

}  // namespace vela::testing

#pragma once
// SchedulerOutput: one step's plan, broadcast by the executor to every worker.
// It carries diffs: a new request travels once (NewRequestData); later steps send
// only what changed for it (CachedRequestData). Workers keep a persistent batch.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "messages/sampling_params.h"

namespace vela {

struct NewRequestData {
  std::string request_id;
  std::vector<int32_t> prompt_token_ids;
  SamplingParams sampling_params;
  std::vector<int32_t> block_ids;       // KV blocks in order, covering computed + scheduled tokens
  int32_t num_computed_tokens = 0;      // tokens already in the KV cache (prefix-cache hit)
  bool operator==(const NewRequestData&) const = default;
};

// Column-wise: entry i of every vector belongs to request_ids[i].
struct CachedRequestData {
  std::vector<std::string> request_ids;
  std::vector<uint8_t> resumed_from_preemption;     // 1: new_block_ids replace the request's blocks
  std::vector<std::vector<int32_t>> new_token_ids;  // output tokens the workers have not seen yet
  std::vector<std::vector<int32_t>> new_block_ids;  // blocks appended (or all blocks when resumed)
  std::vector<int32_t> num_computed_tokens;         // tokens in the KV cache before this step
  size_t size() const { return request_ids.size(); }
  bool operator==(const CachedRequestData&) const = default;
};

struct SchedulerOutput {
  uint64_t step_id = 0;
  std::vector<NewRequestData> scheduled_new_reqs;
  CachedRequestData scheduled_cached_reqs;
  // Tokens to compute this step, per scheduled request (new and cached).
  std::vector<std::pair<std::string, int32_t>> num_scheduled_tokens;
  int32_t total_num_scheduled_tokens = 0;
  std::vector<std::string> finished_req_ids;   // workers free their state for these
  std::vector<std::string> preempted_req_ids;  // workers drop these from the running batch
  bool operator==(const SchedulerOutput&) const = default;
};

}  // namespace vela

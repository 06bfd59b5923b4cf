#pragma once
// ModelRunnerOutput: rank 0's answer to one SchedulerOutput.
#include <cstdint>
#include <string>
#include <vector>

namespace vela {

// Log-probabilities for a step, flattened for transport as bulk frames.
// For request i, its sampled token j occupies row r = row_offsets[i] + j;
// sampled_logprobs[r] is the sampled token's logprob and top_ids/top_logprobs
// hold num_top entries starting at r * num_top.
struct StepLogprobs {
  int32_t num_top = 0;                  // N of "top N" (the largest asked for in the batch)
  std::vector<int32_t> row_offsets;     // [num_reqs]
  std::vector<float> sampled_logprobs;  // [num_rows]
  std::vector<int32_t> top_ids;         // [num_rows * num_top]
  std::vector<float> top_logprobs;      // [num_rows * num_top]
  bool empty() const { return sampled_logprobs.empty(); }
  bool operator==(const StepLogprobs&) const = default;
};

struct ModelRunnerOutput {
  uint64_t step_id = 0;
  std::vector<std::string> request_ids;                // order of the rows below
  std::vector<std::vector<int32_t>> sampled_token_ids; // per request; empty for a partial prefill chunk
  StepLogprobs logprobs;                               // only for requests that asked
  int64_t execute_time_ns = 0;                         // forward + sample time on rank 0
  bool operator==(const ModelRunnerOutput&) const = default;
};

}  // namespace vela

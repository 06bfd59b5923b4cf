#pragma once
// Helpers shared by the scheduler tests.
#include <string>
#include <vector>

#include "engine_core/scheduler.h"

namespace vela::testing {

inline EngineCoreRequest make_request(const std::string& id, std::vector<int32_t> prompt, int32_t max_tokens,
                                      int32_t priority = 0) {
  EngineCoreRequest r;
  r.request_id = id;
  r.prompt_token_ids = std::move(prompt);
  r.sampling_params.max_tokens = max_tokens;
  r.sampling_params.ignore_eos = true;
  r.priority = priority;
  return r;
}

inline std::vector<int32_t> tokens(int32_t n, int32_t start = 100) {
  std::vector<int32_t> v;
  for (int32_t i = 0; i < n; ++i) v.push_back(start + i);
  return v;
}

inline int32_t scheduled_tokens_of(const SchedulerOutput& so, const std::string& id) {
  for (const auto& [rid, n] : so.num_scheduled_tokens)
    if (rid == id) return n;
  return 0;
}

inline bool contains(const std::vector<std::string>& ids, const std::string& id) {
  for (const auto& x : ids)
    if (x == id) return true;
  return false;
}

}  // namespace vela::testing

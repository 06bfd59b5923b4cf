#pragma once
// EngineCoreRequest: a validated, tokenized request entering the engine core.
#include <cstdint>
#include <string>
#include <vector>

#include "messages/sampling_params.h"

namespace vela {

struct EngineCoreRequest {
  std::string request_id;
  std::vector<int32_t> prompt_token_ids;
  SamplingParams sampling_params;
  double arrival_time = 0.0;   // seconds since the Unix epoch
  int32_t priority = 0;        // lower value = scheduled earlier (vLLM convention)
  int32_t eos_token_id = -1;   // -1: the model has none
  bool operator==(const EngineCoreRequest&) const = default;
};

// The client asked to stop these requests.
struct AbortRequests {
  std::vector<std::string> request_ids;
  bool operator==(const AbortRequests&) const = default;
};

}  // namespace vela

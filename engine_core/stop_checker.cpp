#include "engine_core/stop_checker.h"

#include <algorithm>

namespace vela {

StopDecision check_stop(const Request& request, int32_t max_model_len) {
  const SamplingParams& params = request.sampling_params();
  const int32_t num_outputs = request.num_output_tokens();
  if (num_outputs == 0) return {};
  const int32_t last_token = request.output_token_ids().back();
  if (num_outputs >= params.min_tokens) {
    if (!params.ignore_eos && request.eos_token_id() >= 0 && last_token == request.eos_token_id())
      return {RequestStatus::kFinishedStopped, -1};
    const auto& stop_ids = params.stop_token_ids;
    if (std::find(stop_ids.begin(), stop_ids.end(), last_token) != stop_ids.end())
      return {RequestStatus::kFinishedStopped, last_token};
  }
  if (num_outputs >= params.max_tokens || request.num_tokens() >= max_model_len)
    return {RequestStatus::kFinishedLength, -1};
  return {};
}

}  // namespace vela

#pragma once
// Stop rules applied after each appended output token. Stop strings are not here:
// the frontend checks them on detokenized text and aborts the request.
#include <cstdint>

#include "engine_core/request.h"

namespace vela {

struct StopDecision {
  RequestStatus status = RequestStatus::kRunning;  // kRunning: keep going
  int32_t stop_token_id = -1;                      // the stop_token_ids entry that matched
};

// Judges the request's latest output token, in this order:
//  1. once min_tokens outputs exist: EOS (unless ignore_eos) -> STOPPED;
//     a stop_token_ids entry -> STOPPED (stop_token_id set);
//  2. max_tokens outputs, or max_model_len tokens in all -> LENGTH.
// A stop token that is also the last allowed token reports STOPPED, the more
// informative reason.
StopDecision check_stop(const Request& request, int32_t max_model_len);

}  // namespace vela

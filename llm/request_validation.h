#pragma once
// Checks a request against the model and the engine before it reaches an engine
// core: each failure is an Error naming the field. The frontend (client requests)
// and the in-process engine (vela generate, vela bench) run the same checks; whether
// it could ever fit the KV cache is engine_core's one admission rule.
#include <cstdint>
#include <vector>

#include "common/result.h"
#include "engine_core/admission.h"
#include "messages/sampling_params.h"

namespace vela {

struct ValidationLimits {
  int32_t vocab_size = 0;         // token ids must be in [0, vocab_size)
  AdmissionLimits admission;      // prompt + max_tokens must fit max_model_len and the pool
};

// prompt_token_ids: the request's tokens (given, or the tokenized prompt);
// ids_given: they came from the client (so each id is checked against the vocab).
Status validate_request(const std::vector<int32_t>& prompt_token_ids, bool ids_given, const SamplingParams& params,
                        const ValidationLimits& limits);

}  // namespace vela

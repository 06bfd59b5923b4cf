#pragma once
// Checks a request against the model and the engine before it reaches an engine
// core: each failure names the field. The frontend (client requests) and the
// in-process engine (vela generate, vela bench) run the same checks.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "messages/sampling_params.h"

namespace vela {

struct ValidationLimits {
  int32_t max_model_len = 4096;   // prompt + max_tokens must fit
  int32_t vocab_size = 0;         // token ids must be in [0, vocab_size)
  int32_t num_blocks = 0;         // KV blocks per replica (block 0 is the null block)
  int32_t block_size_tokens = 16;
};

struct FieldError {
  std::string field;    // "params.temperature", "prompt_token_ids[3]", ...
  std::string message;  // what is wrong, with the value
};

// prompt_token_ids: the request's tokens (given, or the tokenized prompt);
// ids_given: they came from the client (so each id is checked against the vocab).
std::optional<FieldError> validate_request(const std::vector<int32_t>& prompt_token_ids, bool ids_given,
                                           const SamplingParams& params, const ValidationLimits& limits);

}  // namespace vela

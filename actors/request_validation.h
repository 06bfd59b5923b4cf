#pragma once
// Checks a client's request against the model and the engine before it reaches an
// engine core: each failure names the field. No CAF here.
#include <optional>
#include <vector>

#include "client/protocol.h"

namespace vela {

struct ValidationLimits {
  int32_t max_model_len = 4096;   // prompt + max_tokens must fit
  int32_t vocab_size = 0;         // token ids must be in [0, vocab_size)
  int32_t num_blocks = 0;         // KV blocks per replica (block 0 is the null block)
  int32_t block_size_tokens = 16;
};

// prompt_token_ids: the request's tokens (given, or the tokenized prompt).
std::optional<client::ProtocolError> validate_request(const client::GenerateRequest& request,
                                                      const std::vector<int32_t>& prompt_token_ids,
                                                      const ValidationLimits& limits);

}  // namespace vela

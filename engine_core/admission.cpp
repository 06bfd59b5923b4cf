#include "engine_core/admission.h"

#include <algorithm>
#include <string>

namespace vela {

int64_t max_blocks_needed(int64_t num_prompt_tokens, int64_t max_tokens, const AdmissionLimits& limits) {
  const int64_t max_total_tokens = std::min<int64_t>(num_prompt_tokens + max_tokens, limits.max_model_len);
  const int64_t max_kv_tokens = max_total_tokens - 1 + limits.num_lookahead_tokens;
  return (max_kv_tokens + limits.block_size_tokens - 1) / limits.block_size_tokens;
}

Status check_admission(int64_t num_prompt_tokens, int64_t max_tokens, const AdmissionLimits& limits) {
  const std::string prompt = std::to_string(num_prompt_tokens);
  if (num_prompt_tokens >= limits.max_model_len)
    return field_error("never_fits", "prompt_token_ids",
                       "prompt of " + prompt + " tokens leaves no room for output in max_model_len " +
                           std::to_string(limits.max_model_len));
  if (!limits.enable_chunked_prefill && num_prompt_tokens > limits.max_num_batched_tokens)
    return field_error("never_fits", "prompt_token_ids",
                       "prompt of " + prompt + " tokens exceeds max_num_batched_tokens " +
                           std::to_string(limits.max_num_batched_tokens) + " and chunked prefill is off");
  const int64_t blocks = max_blocks_needed(num_prompt_tokens, max_tokens, limits);
  if (blocks > limits.num_usable_blocks) {
    const int64_t max_kv_tokens =
        std::min<int64_t>(num_prompt_tokens + max_tokens, limits.max_model_len) - 1 + limits.num_lookahead_tokens;
    return field_error("never_fits", "params.max_tokens",
                       "needs up to " + std::to_string(blocks) + " KV blocks (" + std::to_string(max_kv_tokens) +
                           " tokens) but the whole pool has " + std::to_string(limits.num_usable_blocks) +
                           " usable (the null block aside): it could never run");
  }
  return ok_status();
}

}  // namespace vela

#pragma once
// Admission: could a request ever run on this engine? One rule, used by the frontend
// (before a request reaches an engine core) and by the Scheduler (add_request), so
// the two can never disagree.
#include <cstdint>

#include "common/result.h"

namespace vela {

struct AdmissionLimits {
  int32_t max_model_len = 4096;
  int32_t max_num_batched_tokens = 2048;
  bool enable_chunked_prefill = true;
  int32_t block_size_tokens = 16;
  int32_t num_usable_blocks = 0;      // KV blocks a request may hold (the pool less the null block)
  int32_t num_lookahead_tokens = 0;   // extra slots per request (speculative decoding)
};

// The KV blocks a request needs at its largest: every token but the last sampled one
// (its KV is never written), plus the lookahead slots.
int64_t max_blocks_needed(int64_t num_prompt_tokens, int64_t max_tokens, const AdmissionLimits& limits);

// Ok when the request fits the engine at its largest; else an Error naming the field
// at fault ("prompt_token_ids" or "params.max_tokens") and the figures.
Status check_admission(int64_t num_prompt_tokens, int64_t max_tokens, const AdmissionLimits& limits);

}  // namespace vela

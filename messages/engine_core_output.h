#pragma once
// EngineCoreOutput(s): what the engine core reports per request per step.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vela {

enum class FinishReason : uint8_t {
  kNone = 0,     // still running
  kStop = 1,     // EOS, a stop token id or a stop string
  kLength = 2,   // max_tokens or max_model_len
  kAbort = 3,    // aborted by the client or the engine
  kError = 4,    // rejected or failed (see EngineCoreOutput::error)
};

const char* finish_reason_name(FinishReason r);

// Log-probabilities for one generated token.
struct TokenLogprobs {
  int32_t token_id = 0;
  float logprob = 0.0f;               // of the sampled token
  std::vector<int32_t> top_ids;       // top N token ids, most likely first
  std::vector<float> top_logprobs;    // same length as top_ids
  bool operator==(const TokenLogprobs&) const = default;
};

struct EngineCoreOutput {
  std::string request_id;
  std::vector<int32_t> new_token_ids;          // tokens produced this step
  FinishReason finish_reason = FinishReason::kNone;
  std::optional<int32_t> stop_token_id;        // the token that stopped it, if any
  std::vector<TokenLogprobs> logprobs;         // one per new token when requested
  int32_t num_cached_tokens = 0;               // prompt tokens served from the prefix cache
  std::string error;                           // set when finish_reason == kError
  bool operator==(const EngineCoreOutput&) const = default;
};

struct EngineCoreOutputs {
  int32_t engine_index = 0;            // data-parallel replica
  std::vector<EngineCoreOutput> outputs;
  int64_t timestamp_ns = 0;            // wall clock when produced
  bool operator==(const EngineCoreOutputs&) const = default;
};

}  // namespace vela

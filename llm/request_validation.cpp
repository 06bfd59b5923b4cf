#include "llm/request_validation.h"

#include <cmath>
#include <string>

namespace vela {
namespace {

Error invalid(std::string field, std::string message) {
  return field_error("invalid_value", std::move(field), std::move(message));
}

}  // namespace

Status validate_request(const std::vector<int32_t>& ids, bool ids_given, const SamplingParams& p,
                        const ValidationLimits& limits) {
  const std::string prompt_field = ids_given ? "prompt_token_ids" : "prompt";
  if (ids.empty()) return invalid(prompt_field, prompt_field + " is empty");
  if (ids_given) {
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] < 0 || ids[i] >= limits.vocab_size)
        return invalid("prompt_token_ids[" + std::to_string(i) + "]",
                       "token id " + std::to_string(ids[i]) + " is outside the vocabulary [0, " +
                           std::to_string(limits.vocab_size) + ")");
  }
  if (p.n < 1) return invalid("params.n", "n must be >= 1, got " + std::to_string(p.n));
  if (p.n > 1) return invalid("params.n", "n > 1 is not supported by this server; send n requests");
  if (p.max_tokens < 1) return invalid("params.max_tokens", "max_tokens must be >= 1, got " + std::to_string(p.max_tokens));
  if (p.min_tokens < 0 || p.min_tokens > p.max_tokens)
    return invalid("params.min_tokens", "min_tokens must be in [0, max_tokens], got " + std::to_string(p.min_tokens));
  if (!std::isfinite(p.temperature) || p.temperature < 0)
    return invalid("params.temperature", "temperature must be finite and >= 0, got " + std::to_string(p.temperature));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    return invalid("params.top_p", "top_p must be in (0, 1], got " + std::to_string(p.top_p));
  if (p.top_k < 0) return invalid("params.top_k", "top_k must be >= 0, got " + std::to_string(p.top_k));
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
    return invalid("params.min_p", "min_p must be in [0, 1], got " + std::to_string(p.min_p));
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f))
    return invalid("params.presence_penalty", "presence_penalty must be in [-2, 2]");
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f))
    return invalid("params.frequency_penalty", "frequency_penalty must be in [-2, 2]");
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty))
    return invalid("params.repetition_penalty", "repetition_penalty must be finite and > 0");
  if (p.logprobs < -1 || p.logprobs > 20)
    return invalid("params.logprobs", "logprobs must be in [-1, 20], got " + std::to_string(p.logprobs));
  for (size_t i = 0; i < p.stop_token_ids.size(); ++i)
    if (p.stop_token_ids[i] < 0 || p.stop_token_ids[i] >= limits.vocab_size)
      return invalid("params.stop_token_ids[" + std::to_string(i) + "]",
                     "stop token id " + std::to_string(p.stop_token_ids[i]) + " is outside the vocabulary [0, " +
                         std::to_string(limits.vocab_size) + ")");
  for (size_t i = 0; i < p.stop.size(); ++i)
    if (p.stop[i].empty()) return invalid("params.stop[" + std::to_string(i) + "]", "stop strings must be non-empty");
  const int64_t total = static_cast<int64_t>(ids.size()) + p.max_tokens;
  const int32_t max_model_len = limits.admission.max_model_len;
  if (total > max_model_len)
    return invalid("params.max_tokens",
                   "prompt (" + std::to_string(ids.size()) + " tokens) + max_tokens (" + std::to_string(p.max_tokens) +
                       ") = " + std::to_string(total) + " exceeds max_model_len " + std::to_string(max_model_len));
  if (limits.admission.num_usable_blocks > 0) {
    auto fits = check_admission(static_cast<int64_t>(ids.size()), p.max_tokens, limits.admission);
    if (!fits) return invalid(fits.error().field, fits.error().message);
  }
  return ok_status();
}

}  // namespace vela

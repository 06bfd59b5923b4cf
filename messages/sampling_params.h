#pragma once
// SamplingParams: how one request's tokens are chosen and when it stops.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vela {

struct SamplingParams {
  int32_t n = 1;                     // completions per prompt (>= 1)
  float temperature = 1.0f;          // 0 = greedy; must be finite and >= 0
  float top_p = 1.0f;                // nucleus mass in (0, 1]
  int32_t top_k = 0;                 // 0 = disabled, else keep the k most likely
  float min_p = 0.0f;                // in [0, 1]: drop tokens below min_p * p(max)
  std::optional<uint64_t> seed;      // per-request generator seed (batch-independent)
  int32_t max_tokens = 16;           // output tokens at most (>= 1)
  int32_t min_tokens = 0;            // EOS / stop ids ignored before this many outputs
  std::vector<std::string> stop;     // stop strings (checked on detokenized text by the frontend)
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  int32_t logprobs = -1;             // -1: none; 0: sampled token only; N: plus the top N
  float presence_penalty = 0.0f;     // OpenAI semantics, in [-2, 2]
  float frequency_penalty = 0.0f;    // OpenAI semantics, in [-2, 2]
  float repetition_penalty = 1.0f;   // HF semantics, > 0; 1 = off
  bool operator==(const SamplingParams&) const = default;
};

}  // namespace vela

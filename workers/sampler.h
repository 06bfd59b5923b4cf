#pragma once
// Sampler: picks one token per row of logits. Per row, in order:
//   logprobs of the raw logits (sampled token and top N), if asked;
//   repetition penalty (HF: over prompt + output tokens), presence and frequency
//   penalties (OpenAI: over output tokens);
//   greedy (temperature 0) = first argmax; otherwise temperature, then min-p,
//   top-k and top-p filters, and one draw by inverse CDF.
// The draw uses a generator seeded from (request seed, output tokens so far), so
// a request's tokens do not depend on what else is in the batch.
#include <cstdint>
#include <span>
#include <vector>

#include "messages/model_runner_output.h"
#include "messages/sampling_params.h"
#include "model/tensor.h"

namespace vela {

struct SampleRow {
  const SamplingParams* params = nullptr;
  uint64_t seed = 0;
  std::span<const int32_t> prompt_ids;
  std::span<const int32_t> output_ids;  // its size is the generator's counter
};

class Sampler {
 public:
  // logits [rows, vocab] (read only). tokens gets one id per row. When num_top >= 0,
  // logprobs rows 0..rows-1 are filled (sampled_logprobs, and num_top top entries).
  void sample(const Tensor& logits, std::span<const SampleRow> rows, int32_t num_top, std::vector<int32_t>& tokens,
              StepLogprobs* logprobs);

  // Uniform in [0, 1) from (seed, counter): the request's draw for one step.
  static double uniform(uint64_t seed, uint64_t counter);

 private:
  int32_t sample_row(const float* raw, int64_t vocab, const SampleRow& row);
  void apply_penalties(float* w, int64_t vocab, const SampleRow& row);

  std::vector<float> work_;       // [vocab] the processed logits of one row
  std::vector<int32_t> counts_;   // [vocab] output-token counts (reset after each row)
  std::vector<uint8_t> seen_;     // [vocab] prompt/output membership (reset after each row)
  std::vector<int32_t> candidates_;
  std::vector<int32_t> order_;
};

}  // namespace vela

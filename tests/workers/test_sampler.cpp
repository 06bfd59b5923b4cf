// Sampler on synthetic logits: filters, penalties, logprobs, seeding.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <set>

#include "workers/sampler.h"

using namespace vela;

namespace {

struct Fixture {
  std::vector<float> logits;
  SamplingParams params;
  std::vector<int32_t> prompt, output;
  Sampler sampler;

  int32_t draw(uint64_t seed, StepLogprobs* lp = nullptr, int32_t num_top = -1) {
    Tensor t = Tensor::from_blob(logits.data(), {1, int64_t(logits.size())}, DType::kF32);
    SampleRow row{&params, seed, prompt, output};
    std::vector<int32_t> tokens;
    sampler.sample(t, std::span<const SampleRow>(&row, 1), num_top, tokens, lp);
    return tokens[0];
  }
  std::map<int32_t, int> histogram(int n) {
    std::map<int32_t, int> h;
    for (int s = 0; s < n; ++s) ++h[draw(uint64_t(s))];
    return h;
  }
};

}  // namespace

TEST_CASE("greedy takes the first argmax", "[sampler]") {
  Fixture f;
  f.logits = {0.5f, 2.0f, 2.0f, -1.0f};
  f.params.temperature = 0.0f;
  CHECK(f.draw(1) == 1);
}

TEST_CASE("temperature sampling follows the softmax; filters cut the tail", "[sampler]") {
  Fixture f;
  f.logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  auto h = f.histogram(4000);
  CHECK(std::abs(h[0] / 4000.0 - 0.5) < 0.03);
  CHECK(std::abs(h[1] / 4000.0 - 0.3) < 0.03);
  CHECK(std::abs(h[2] / 4000.0 - 0.2) < 0.03);

  f.params.top_k = 2;
  h = f.histogram(1000);
  CHECK(h.count(2) == 0);
  CHECK(std::abs(h[0] / 1000.0 - 0.625) < 0.05);  // renormalised over {0, 1}

  f.params.top_k = 0;
  f.params.top_p = 0.6f;  // 0.5 < 0.6 <= 0.5 + 0.3
  h = f.histogram(1000);
  CHECK(h.count(2) == 0);
  CHECK(h.count(1) > 0);

  f.params.top_p = 1.0f;
  f.params.min_p = 0.5f;  // keeps p >= 0.25
  h = f.histogram(1000);
  CHECK(h.count(2) == 0);
  CHECK(h.count(1) > 0);

  f.params.min_p = 0.0f;
  f.params.temperature = 0.05f;  // nearly greedy
  h = f.histogram(200);
  CHECK(h[0] == 200);
}

TEST_CASE("the draw depends only on the seed and the number of generated tokens", "[sampler]") {
  Fixture f;
  f.logits.assign(1000, 0.0f);
  int32_t a = f.draw(99);
  CHECK(f.draw(99) == a);
  std::set<int32_t> over_steps;
  for (int i = 0; i < 20; ++i) {
    over_steps.insert(f.draw(99));
    f.output.push_back(7);  // a new output token advances the generator
  }
  CHECK(over_steps.size() > 10);
}

TEST_CASE("repetition, presence and frequency penalties", "[sampler]") {
  Fixture f;
  f.params.temperature = 0.0f;
  f.logits = {2.0f, 1.9f, -1.0f};
  CHECK(f.draw(0) == 0);
  f.params.repetition_penalty = 2.0f;  // positive logits divided: 2.0 -> 1.0
  f.prompt = {0};
  CHECK(f.draw(0) == 1);
  f.params.repetition_penalty = 1.0f;
  f.prompt.clear();

  f.output = {0};
  f.params.presence_penalty = 0.5f;  // 2.0 - 0.5 < 1.9
  CHECK(f.draw(0) == 1);
  f.params.presence_penalty = 0.0f;
  f.output = {1, 1};
  f.params.frequency_penalty = 0.1f;  // 1.9 - 0.2
  f.logits = {1.8f, 1.9f, -1.0f};
  CHECK(f.draw(0) == 0);

  // Repetition on a negative logit multiplies (pushes it further down).
  f.params.frequency_penalty = 0.0f;
  f.output.clear();
  f.logits = {-1.0f, -1.2f};
  f.prompt = {0};
  f.params.repetition_penalty = 1.5f;  // -1.0 -> -1.5
  CHECK(f.draw(0) == 1);
}

TEST_CASE("logprobs of the sampled token and the top N come from the raw logits", "[sampler]") {
  Fixture f;
  f.params.temperature = 0.0f;
  f.logits = {1.0f, 3.0f, 2.0f, 0.0f};
  StepLogprobs lp;
  int32_t tok = f.draw(0, &lp, 2);
  double lse = std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0) + std::exp(0.0));
  CHECK(tok == 1);
  REQUIRE(lp.sampled_logprobs.size() == 1);
  CHECK(lp.sampled_logprobs[0] == Approx(3.0 - lse).margin(1e-5));
  CHECK(lp.top_ids == std::vector<int32_t>{1, 2});
  CHECK(lp.top_logprobs[1] == Approx(2.0 - lse).margin(1e-5));
}

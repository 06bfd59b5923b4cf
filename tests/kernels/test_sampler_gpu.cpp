// CudaSampler against the CPU Sampler on the same fp32 logits.
//
// Expectation: identical tokens. The GPU path repeats the CPU's float arithmetic
// operation for operation; its double prefix sums are parallel but only trusted when
// the decision is > 2·(n+8)·2^-50·total away from its threshold (else one thread
// redoes the CPU's sequential loop), so they decide as the CPU does. The one known
// source of difference is exp: the CPU's glibc expf is not correctly rounded in a
// tiny fraction of inputs (max error ~0.502 ulp), the GPU rounds a double exp. A
// 1-ulp difference in one e changes the token only when the draw lands within
// ~1e-7 relative of a CDF boundary, or reorders two e values that differ by one ulp
// and the draw lands on one of them: expected << 1 in the draws below. So the test
// allows at most 1 mismatch per 1000 sampled draws (and 0 for greedy rows), prints
// every mismatch with the two tokens' e values so a boundary case is recognisable,
// while a real bug (an ordering, a cutoff, a penalty, a seed) mismatches most draws.
// Logprobs: top ids exact, values within 1e-4 absolute.
#include <catch2/catch.hpp>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "tests/kernels/gpu_test_util.h"
#include "workers/cuda_sampler.h"
#include "workers/sampler.h"

using namespace vela;

namespace {

// Row styles: flat-ish random logits, a peaked distribution, and quantised logits
// full of exact ties (tie-breaking in argmax, top-k, the top-p sort and top-N).
void fill_row(float* row, int32_t vocab, int style, testing::SplitMix& rng) {
  for (int32_t i = 0; i < vocab; ++i) {
    float x = 2.0f * rng.normal();
    if (style == 2) x = std::round(x * 4.0f) / 4.0f;
    row[i] = x;
  }
  if (style == 1)
    for (int j = 0; j < 8; ++j) row[rng.below(vocab)] += 8.0f + float(j);
}

struct Config {
  const char* name;
  SamplingParams params;
};

std::vector<Config> configs() {
  std::vector<Config> c;
  auto add = [&c](const char* name, auto edit) {
    SamplingParams p;
    edit(p);
    c.push_back({name, p});
  };
  add("greedy", [](SamplingParams& p) { p.temperature = 0.0f; });
  add("t0.7", [](SamplingParams& p) { p.temperature = 0.7f; });
  add("t1.0", [](SamplingParams& p) { p.temperature = 1.0f; });
  add("t1.5", [](SamplingParams& p) { p.temperature = 1.5f; });
  add("topk1", [](SamplingParams& p) { p.temperature = 1.0f; p.top_k = 1; });
  add("topk20", [](SamplingParams& p) { p.temperature = 0.7f; p.top_k = 20; });
  add("topk50", [](SamplingParams& p) { p.temperature = 1.5f; p.top_k = 50; });
  add("topp0.9", [](SamplingParams& p) { p.temperature = 1.0f; p.top_p = 0.9f; });
  add("topp0.5", [](SamplingParams& p) { p.temperature = 0.7f; p.top_p = 0.5f; });
  add("minp0.05", [](SamplingParams& p) { p.temperature = 1.0f; p.min_p = 0.05f; });
  add("topk50+topp0.9+minp", [](SamplingParams& p) { p.temperature = 1.0f; p.top_k = 50; p.top_p = 0.9f; p.min_p = 0.05f; });
  add("rep1.3", [](SamplingParams& p) { p.temperature = 1.0f; p.repetition_penalty = 1.3f; });
  add("pres+freq", [](SamplingParams& p) { p.temperature = 0.7f; p.presence_penalty = 0.5f; p.frequency_penalty = 0.3f; });
  add("greedy+all penalties", [](SamplingParams& p) {
    p.temperature = 0.0f; p.repetition_penalty = 0.8f; p.presence_penalty = -0.4f; p.frequency_penalty = 1.1f; });
  add("all", [](SamplingParams& p) {
    p.temperature = 1.5f; p.top_k = 20; p.top_p = 0.9f; p.repetition_penalty = 1.2f; p.frequency_penalty = 0.2f; });
  return c;
}

struct Stats {
  int64_t draws = 0, sampled_draws = 0, mismatches = 0, greedy_mismatches = 0, logprob_bad = 0, sequential = 0;
};

// One batch: rows rows of vocab logits, each row a random config, seed, history.
void run_batch(CudaSampler& gpu, int32_t rows, int32_t vocab, int32_t num_top, uint64_t seed, Stats& st) {
  testing::SplitMix rng{seed};
  const auto cfgs = configs();
  std::vector<float> logits(size_t(rows) * size_t(vocab));
  std::vector<std::vector<int32_t>> histories(static_cast<size_t>(rows));
  std::vector<SampleRow> sample_rows(static_cast<size_t>(rows));
  std::vector<int> row_cfg(static_cast<size_t>(rows));
  for (int32_t r = 0; r < rows; ++r) {
    fill_row(logits.data() + size_t(r) * vocab, vocab, rng.below(3), rng);
    row_cfg[size_t(r)] = rng.below(int64_t(cfgs.size()));
    const int32_t num_prompt = rng.below(400), num_output = rng.below(300);
    auto& h = histories[size_t(r)];
    // Repeats on purpose (penalties count them): ids from a narrow window of the vocab.
    const int32_t window = std::min<int32_t>(vocab, 2000);
    for (int32_t i = 0; i < num_prompt + num_output; ++i) h.push_back(rng.below(window));
    SampleRow& s = sample_rows[size_t(r)];
    s.params = &cfgs[size_t(row_cfg[size_t(r)])].params;
    s.seed = rng.next();
    s.prompt_ids = std::span<const int32_t>(h).first(size_t(num_prompt));
    s.output_ids = std::span<const int32_t>(h).subspan(size_t(num_prompt));
  }
  testing::DeviceArray<float> d(logits);
  Tensor cpu_t = Tensor::from_blob(logits.data(), {rows, vocab}, DType::kF32);
  Tensor gpu_t = Tensor::from_blob(d.get(), {rows, vocab}, DType::kF32, Device{DeviceType::kCUDA, 0});

  Sampler cpu;
  std::vector<int32_t> want, got;
  StepLogprobs want_lp, got_lp;
  cpu.sample(cpu_t, sample_rows, num_top, want, num_top >= 0 ? &want_lp : nullptr);
  auto r = gpu.sample(gpu_t, sample_rows, num_top, got, num_top >= 0 ? &got_lp : nullptr);
  if (!r.ok()) FAIL(r.error().message);
  REQUIRE(got.size() == want.size());
  st.sequential += gpu.last_sequential_rows();
  for (int32_t i = 0; i < rows; ++i) {
    const Config& c = cfgs[size_t(row_cfg[size_t(i)])];
    const bool greedy = c.params.temperature < 1e-5f;
    ++st.draws;
    st.sampled_draws += !greedy;
    if (got[size_t(i)] != want[size_t(i)]) {
      const float* row = logits.data() + size_t(i) * vocab;
      const int32_t g = got[size_t(i)], w = want[size_t(i)];
      std::printf("MISMATCH vocab=%d row=%d cfg=%s cpu=%d (logit %.9g) gpu=%d (logit %.9g)\n", vocab, i, c.name, w,
                  w >= 0 && w < vocab ? row[w] : NAN, g, g >= 0 && g < vocab ? row[g] : NAN);
      (greedy ? st.greedy_mismatches : st.mismatches)++;
    }
  }
  if (num_top >= 0) {
    REQUIRE(got_lp.sampled_logprobs.size() == want_lp.sampled_logprobs.size());
    REQUIRE(got_lp.top_ids.size() == want_lp.top_ids.size());
    REQUIRE(got_lp.top_logprobs.size() == want_lp.top_logprobs.size());
    for (size_t i = 0; i < got_lp.sampled_logprobs.size(); ++i)
      if (got[i] == want[i] && !(std::fabs(got_lp.sampled_logprobs[i] - want_lp.sampled_logprobs[i]) <= 1e-4f)) {
        if (st.logprob_bad++ < 5)
          std::printf("sampled logprob row %zu: gpu %.9g cpu %.9g\n", i, got_lp.sampled_logprobs[i],
                      want_lp.sampled_logprobs[i]);
      }
    for (size_t i = 0; i < got_lp.top_ids.size(); ++i)
      if (got_lp.top_ids[i] != want_lp.top_ids[i] ||
          !(std::fabs(got_lp.top_logprobs[i] - want_lp.top_logprobs[i]) <= 1e-4f)) {
        if (st.logprob_bad++ < 5)
          std::printf("top entry %zu: gpu (%d, %.9g) cpu (%d, %.9g)\n", i, got_lp.top_ids[i], got_lp.top_logprobs[i],
                      want_lp.top_ids[i], want_lp.top_logprobs[i]);
      }
  }
}

void check_stats(const Stats& st) {
  std::printf("draws %lld (sampled %lld): mismatches %lld, greedy mismatches %lld, bad logprobs %lld, "
              "rows on the sequential path %lld\n",
              (long long)st.draws, (long long)st.sampled_draws, (long long)st.mismatches,
              (long long)st.greedy_mismatches, (long long)st.logprob_bad, (long long)st.sequential);
  CHECK(st.greedy_mismatches == 0);
  CHECK(st.logprob_bad == 0);
  CHECK(st.mismatches * 1000 <= std::max<int64_t>(st.sampled_draws, 1000));
}

}  // namespace

TEST_CASE("CudaSampler draws the CPU Sampler's tokens", "[sampler]") {
  for (int32_t vocab : {151936, 128256, 1000}) {
    auto gpu = CudaSampler::create(256, vocab, nullptr);
    if (!gpu.ok()) FAIL(gpu.error().message);
    Stats st;
    uint64_t seed = uint64_t(vocab) * 1000;
    for (int32_t rows : {1, 7, 256})
      for (int32_t num_top : {-1, 0, 5, 20}) {
        INFO("vocab " << vocab << " rows " << rows << " num_top " << num_top);
        run_batch(**gpu, rows, vocab, num_top, ++seed, st);
      }
    INFO("vocab " << vocab);
    check_stats(st);
  }
}

TEST_CASE("CudaSampler: the one-thread exact path agrees too", "[sampler]") {
  auto gpu = CudaSampler::create(64, 151936, nullptr);
  if (!gpu.ok()) FAIL(gpu.error().message);
  (*gpu)->set_force_sequential(true);
  Stats st;
  for (int i = 0; i < 2; ++i) run_batch(**gpu, 64, 151936, 5, 777 + uint64_t(i), st);
  check_stats(st);
  CHECK(st.sequential == st.sampled_draws);
}

TEST_CASE("CudaSampler: many draws of one peaked row (seed-driven CDF positions)", "[sampler]") {
  // The same logits, 256 rows with different seeds: every draw lands somewhere new
  // on the CDF, which is where summation-order bugs would show.
  const int32_t vocab = 151936, rows = 256;
  auto gpu = CudaSampler::create(rows, vocab, nullptr);
  if (!gpu.ok()) FAIL(gpu.error().message);
  testing::SplitMix rng{4242};
  std::vector<float> one(static_cast<size_t>(vocab));
  fill_row(one.data(), vocab, 1, rng);
  std::vector<float> logits;
  for (int32_t r = 0; r < rows; ++r) logits.insert(logits.end(), one.begin(), one.end());
  testing::DeviceArray<float> d(logits);
  Tensor cpu_t = Tensor::from_blob(logits.data(), {rows, vocab}, DType::kF32);
  Tensor gpu_t = Tensor::from_blob(d.get(), {rows, vocab}, DType::kF32, Device{DeviceType::kCUDA, 0});
  int64_t draws = 0, mismatches = 0;
  for (const Config& c : configs()) {
    if (c.params.temperature < 1e-5f) continue;
    std::vector<SampleRow> rs(static_cast<size_t>(rows));
    for (int32_t r = 0; r < rows; ++r) rs[size_t(r)] = {&c.params, rng.next(), {}, {}};
    Sampler cpu;
    std::vector<int32_t> want, got;
    cpu.sample(cpu_t, rs, -1, want, nullptr);
    auto res = (*gpu)->sample(gpu_t, rs, -1, got, nullptr);
    if (!res.ok()) FAIL(res.error().message);
    for (int32_t r = 0; r < rows; ++r) {
      ++draws;
      if (got[size_t(r)] != want[size_t(r)]) {
        ++mismatches;
        std::printf("MISMATCH cfg=%s row=%d cpu=%d gpu=%d\n", c.name, r, want[size_t(r)], got[size_t(r)]);
      }
    }
  }
  std::printf("peaked row: %lld draws, %lld mismatches\n", (long long)draws, (long long)mismatches);
  CHECK(mismatches * 1000 <= std::max<int64_t>(draws, 1000));
}

TEST_CASE("CudaSampler greedy picks the first of tied maxima", "[sampler]") {
  const int32_t vocab = 151936, rows = 3;
  auto gpu = CudaSampler::create(rows, vocab, nullptr);
  if (!gpu.ok()) FAIL(gpu.error().message);
  std::vector<float> logits(size_t(rows) * vocab, -1.0f);
  // Row 0: ties at 5, 77, 150000. Row 1: ties at 70000 and 70001 (same warp/chunk).
  // Row 2: all equal -> 0.
  for (int32_t i : {150000, 77, 5}) logits[size_t(i)] = 3.0f;
  logits[size_t(vocab) + 70001] = 2.0f;
  logits[size_t(vocab) + 70000] = 2.0f;
  for (int32_t i = 0; i < vocab; ++i) logits[size_t(2) * vocab + size_t(i)] = 0.5f;
  testing::DeviceArray<float> d(logits);
  Tensor gpu_t = Tensor::from_blob(d.get(), {rows, vocab}, DType::kF32, Device{DeviceType::kCUDA, 0});
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  SamplingParams greedy_pen = greedy;  // through the penalty path (work copy + argmax)
  greedy_pen.presence_penalty = 0.5f;
  for (const SamplingParams* p : {&greedy, &greedy_pen}) {
    std::vector<SampleRow> rs(size_t(rows), SampleRow{p, 0, {}, {}});
    std::vector<int32_t> got;
    StepLogprobs lp;
    auto r = (*gpu)->sample(gpu_t, rs, 3, got, &lp);
    if (!r.ok()) FAIL(r.error().message);
    CHECK(got == std::vector<int32_t>{5, 70000, 0});
    // Top-3 also breaks ties by index.
    CHECK(std::vector<int32_t>(lp.top_ids.begin(), lp.top_ids.begin() + 3) == std::vector<int32_t>{5, 77, 150000});
    CHECK(std::vector<int32_t>(lp.top_ids.begin() + 6, lp.top_ids.end()) == std::vector<int32_t>{0, 1, 2});
  }
}

TEST_CASE("CudaSampler bench", "[.bench]") {
  const int32_t vocab = 151936, rows = 256;
  auto gpu = CudaSampler::create(rows, vocab, nullptr);
  if (!gpu.ok()) FAIL(gpu.error().message);
  testing::SplitMix rng{9};
  std::vector<float> logits(size_t(rows) * vocab);
  for (int32_t r = 0; r < rows; ++r) fill_row(logits.data() + size_t(r) * vocab, vocab, 0, rng);
  testing::DeviceArray<float> d(logits);
  Tensor gpu_t = Tensor::from_blob(d.get(), {rows, vocab}, DType::kF32, Device{DeviceType::kCUDA, 0});
  for (const Config& c : configs()) {
    std::vector<SampleRow> rs(size_t(rows), SampleRow{&c.params, 1, {}, {}});
    std::vector<int32_t> got;
    for (int32_t num_top : {-1, 20}) {
      StepLogprobs lp;
      for (int i = 0; i < 2; ++i) REQUIRE((*gpu)->sample(gpu_t, rs, num_top, got, num_top >= 0 ? &lp : nullptr).ok());
      const int iters = 10;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iters; ++i) (void)(*gpu)->sample(gpu_t, rs, num_top, got, num_top >= 0 ? &lp : nullptr);
      const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
      std::printf("sampler %d x %d %-22s logprobs %-3d %9.1f us/step\n", rows, vocab, c.name, num_top, us);
    }
  }
}

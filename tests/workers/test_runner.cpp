// ModelRunner behaviour beyond greedy: seeded sampling independent of the batch,
// logprob rows, bad steps, the KV profile, and the no-op runner.
#include <catch2/catch.hpp>

#include "messages/step_placeholders.h"
#include "tests/model/golden.h"
#include "tests/workers/mini_scheduler.h"
#include "tests/workers/runner_fixture.h"
#include "workers/noop_runner.h"

using namespace vela;
using vela::testing::MiniScheduler;

TEST_CASE("a seeded request samples the same tokens whatever else is in the batch", "[runner]") {
  // The draw depends only on (seed, tokens so far). The two batches have the same
  // shape at every step (neighbours of the same lengths, same chunking): OpenBLAS
  // picks its kernels by matrix size and CPU, so logits are bit-identical across
  // batches of one shape but not across shapes, and a temperature-1 draw near a
  // CDF boundary would flip on the last bit.
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.9f;
  p.seed = 42;
  std::vector<int32_t> prompt{9707, 11, 847, 5562, 374, 18838};
  MiniScheduler::Options chunked{.block_size = 16, .max_chunk_tokens = 3, .token_budget = 8};

  auto run = [&](MiniScheduler& s, std::vector<int32_t> y_prompt, uint64_t y_seed, std::vector<int32_t> z_prompt) {
    auto runner = testing::loaded_runner("qwen2-tiny");
    SamplingParams other = p;
    other.seed = y_seed;
    s.add("y", std::move(y_prompt), other, 12);
    s.add("x", prompt, p, 12);
    SamplingParams unseeded = p;
    unseeded.seed.reset();
    s.add("z", std::move(z_prompt), unseeded, 12);
    s.run(*runner);
  };
  MiniScheduler first(chunked), second(chunked);
  run(first, {1, 2, 3, 4, 5, 6, 7, 8}, 7, prompt);
  run(second, {21, 22, 23, 24, 25, 26, 27, 28}, 99, {5, 6, 7, 8, 9, 10});

  CHECK(second.request("x").outputs == first.request("x").outputs);
  CHECK(second.request("y").outputs != first.request("y").outputs);  // the neighbours did change
  CHECK(first.request("y").outputs != first.request("x").outputs);
  // Unseeded requests draw from LoadModel.seed mixed with the request id.
  CHECK(first.request("z").outputs != first.request("x").outputs);
}

TEST_CASE("logprob rows follow the requests, only sampled ones have rows", "[runner]") {
  auto runner = testing::loaded_runner("llama3-tiny");
  SamplingParams p = testing::greedy();
  p.logprobs = 3;
  SchedulerOutput step;
  step.step_id = 1;
  step.scheduled_new_reqs.push_back({"partial", {1, 2, 3, 4, 5, 6}, p, {0}, 0});
  step.scheduled_new_reqs.push_back({"whole", {7, 8, 9}, p, {1}, 0});
  step.num_scheduled_tokens = {{"partial", 4}, {"whole", 3}};
  step.total_num_scheduled_tokens = 7;
  auto out = runner->execute(step);
  REQUIRE(out.ok());
  CHECK(out->request_ids == std::vector<std::string>{"partial", "whole"});
  CHECK(out->sampled_token_ids[0].empty());
  REQUIRE(out->sampled_token_ids[1].size() == 1);
  CHECK(out->logprobs.num_top == 3);
  CHECK(out->logprobs.row_offsets == std::vector<int32_t>{0, 0});
  REQUIRE(out->logprobs.sampled_logprobs.size() == 1);
  CHECK(out->logprobs.top_ids[0] == out->sampled_token_ids[1][0]);  // greedy = top-1
  CHECK(out->logprobs.top_logprobs[0] == Approx(out->logprobs.sampled_logprobs[0]));
  CHECK(out->logprobs.top_logprobs[0] >= out->logprobs.top_logprobs[1]);
  CHECK(out->logprobs.sampled_logprobs[0] < 0.0f);
}

TEST_CASE("bad steps are errors naming the request", "[runner]") {
  auto runner = testing::loaded_runner("qwen2-tiny", 4);
  SchedulerOutput step;
  step.num_scheduled_tokens = {{"ghost", 1}};
  auto out = runner->execute(step);
  REQUIRE(!out.ok());
  CHECK_THAT(out.error().message, Catch::Matchers::Contains("ghost"));

  SchedulerOutput no_blocks;
  no_blocks.scheduled_new_reqs.push_back({"short", std::vector<int32_t>(20, 5), testing::greedy(), {0}, 0});
  no_blocks.num_scheduled_tokens = {{"short", 20}};
  out = runner->execute(no_blocks);
  REQUIRE(!out.ok());
  CHECK_THAT(out.error().message, Catch::Matchers::Contains("short") && Catch::Matchers::Contains("blocks"));

  SchedulerOutput outside;
  outside.scheduled_new_reqs.push_back({"far", {1, 2}, testing::greedy(), {9}, 0});
  outside.num_scheduled_tokens = {{"far", 2}};
  out = runner->execute(outside);
  REQUIRE(!out.ok());
  CHECK_THAT(out.error().message, Catch::Matchers::Contains("far") && Catch::Matchers::Contains("block id 9"));
}

TEST_CASE("the profile sizes KV blocks for the CPU cache", "[runner]") {
  auto runner = make_model_runner(nullptr);
  auto profile = runner->load(testing::load_request("qwen3-tiny"));
  REQUIRE(profile.ok());
  // 2 (K, V) x 2 layers x 1 kv head x 64 head_dim x 16 tokens x 4 bytes
  CHECK(profile->bytes_per_block == 2u * 2 * 1 * 64 * 16 * 4);
  CHECK(profile->vocab_size == 151936);
  CHECK(profile->eos_token_id == 151645);
  CHECK(profile->kv_cache_bytes_available > 0);  // memory_utilization x RAM fallback

  LoadModel dummy = testing::load_request("llama3-tiny");
  dummy.load_format = "dummy";
  CHECK(make_model_runner(nullptr)->load(dummy).ok());
  dummy.load_format = "gguf";
  auto bad = make_model_runner(nullptr)->load(dummy);
  REQUIRE(!bad.ok());
  CHECK_THAT(bad.error().message, Catch::Matchers::Contains("gguf"));
}

TEST_CASE("the no-op runner answers one fixed token per completed request", "[runner]") {
  auto runner = make_noop_runner();
  auto profile = runner->load(testing::load_request("qwen3-tiny"));
  REQUIRE(profile.ok());
  REQUIRE(runner->init_kv_cache(InitKVCache{64}).ok());
  MiniScheduler sched({.block_size = 16, .max_chunk_tokens = 4, .token_budget = 6});
  sched.add("a", std::vector<int32_t>(10, 3), testing::greedy(), 5);
  sched.add("b", {1, 2}, testing::greedy(), 3);
  sched.run(*runner);  // the scheduler checks a token comes exactly when a prompt completes
  CHECK(sched.request("a").outputs == std::vector<int32_t>(5, 0));
  CHECK(sched.request("b").outputs == std::vector<int32_t>(3, 0));
}

namespace {

// Async-style steps by hand: step 1 prefills two prompts; each later step decodes
// every live request one token, its input a placeholder for the token the step before
// sampled; `finish_at` finishes r1 (as an abort would) in that step.
std::vector<SchedulerOutput> placeholder_steps(int num_steps, int finish_at) {
  std::vector<SchedulerOutput> steps;
  const std::vector<std::vector<int32_t>> prompts = {{9707, 11, 847, 5562, 374}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
  SchedulerOutput first;
  first.step_id = 1;
  for (int i = 0; i < 2; ++i) {
    NewRequestData r;
    r.request_id = "r" + std::to_string(i);
    r.prompt_token_ids = prompts[size_t(i)];
    r.sampling_params = testing::greedy();
    r.block_ids = {2 * i, 2 * i + 1};
    first.num_scheduled_tokens.emplace_back(r.request_id, int32_t(r.prompt_token_ids.size()));
    first.total_num_scheduled_tokens += int32_t(r.prompt_token_ids.size());
    first.scheduled_new_reqs.push_back(r);
  }
  steps.push_back(first);
  for (int n = 2; n <= num_steps; ++n) {
    SchedulerOutput s;
    s.step_id = uint64_t(n);
    for (int i = 0; i < 2; ++i) {
      const std::string id = "r" + std::to_string(i);
      if (i == 1 && n >= finish_at) {
        if (n == finish_at) s.finished_req_ids.push_back(id);
        continue;
      }
      s.scheduled_cached_reqs.request_ids.push_back(id);
      s.scheduled_cached_reqs.resumed_from_preemption.push_back(0);
      s.scheduled_cached_reqs.new_token_ids.push_back({kPlaceholderToken});
      s.scheduled_cached_reqs.new_block_ids.push_back({});
      s.scheduled_cached_reqs.num_computed_tokens.push_back(int32_t(prompts[size_t(i)].size()) + n - 2);
      s.num_scheduled_tokens.emplace_back(id, 1);
      s.total_num_scheduled_tokens += 1;
    }
    steps.push_back(s);
  }
  return steps;
}

// Runs the steps in order, filling each one's placeholders from the output before;
// with `lookahead`, the runner is shown the next step (placeholders unfilled) while
// it runs the current one, as the worker's loop does.
std::vector<ModelRunnerOutput> run_steps(Runner& runner, std::vector<SchedulerOutput> steps, bool lookahead) {
  std::vector<ModelRunnerOutput> outs;
  size_t current = 0;
  if (lookahead)
    runner.set_lookahead([&]() -> const SchedulerOutput* {
      return current + 1 < steps.size() ? &steps[current + 1] : nullptr;
    });
  for (current = 0; current < steps.size(); ++current) {
    if (current > 0) REQUIRE(fill_placeholders(steps[current], outs.back()).ok());
    auto out = runner.execute(steps[current]);
    if (!out) FAIL(out.error().message);
    outs.push_back(std::move(out.value()));
  }
  runner.set_lookahead(nullptr);
  return outs;
}

}  // namespace

TEST_CASE("inputs built ahead (while the step before runs) give the same tokens", "[runner][lookahead]") {
  for (int finish_at : {100, 4}) {  // r1 lives throughout; r1 aborted in step 4 (the lookahead frees it)
    INFO("finish_at " << finish_at);
    const auto steps = placeholder_steps(8, finish_at);
    auto plain = testing::loaded_runner("qwen3-tiny");
    auto ahead = testing::loaded_runner("qwen3-tiny");
    const auto expected = run_steps(*plain, steps, false);
    const auto got = run_steps(*ahead, steps, true);
    REQUIRE(got.size() == expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].request_ids == expected[i].request_ids);
      CHECK(got[i].sampled_token_ids == expected[i].sampled_token_ids);
    }
    const auto stats = model_runner_stats(*ahead);
    REQUIRE(stats.has_value());
    CHECK(stats->ahead_steps == steps.size() - 1);  // every step but the first
    CHECK(model_runner_stats(*plain)->ahead_steps == 0);
  }
}

TEST_CASE("a step other than the one prepared ahead is refused by name, and the runner recovers", "[runner][lookahead]") {
  auto steps = placeholder_steps(4, 100);
  auto runner = testing::loaded_runner("qwen3-tiny");
  const SchedulerOutput* shown = &steps[1];
  runner->set_lookahead([&]() { return shown; });
  auto first = runner->execute(steps[0]);  // prepares step 2 ahead
  REQUIRE(first.ok());
  runner->set_lookahead(nullptr);
  SchedulerOutput other = steps[2];
  REQUIRE(fill_placeholders_from(other, std::vector<int32_t>{5, 6}).ok());
  auto refused = runner->execute(other);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("prepared ahead") != std::string::npos);
}

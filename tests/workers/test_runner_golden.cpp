// Greedy generation through the ModelRunner reproduces HF transformers' tokens,
// whatever the batching: whole prompts, chunked prefill mixed with decodes,
// staggered arrivals, preemption with recompute, and prefix-cache hits.
#include <catch2/catch.hpp>

#include "tests/model/golden.h"
#include "tests/workers/mini_scheduler.h"
#include "tests/workers/runner_fixture.h"

using namespace vela;
using vela::testing::MiniScheduler;

namespace {

void check_tokens(const std::string& model, const MiniScheduler& sched, const std::string& id,
                  const testing::GoldenCase& gc) {
  const auto& out = sched.request(id).outputs;
  size_t n = gc.num_reliable_tokens();
  INFO(model << " request " << id << ": " << n << " tokens before the first margin < 1e-2");
  REQUIRE(out.size() == gc.generated.size());
  CHECK(std::vector<int32_t>(out.begin(), out.begin() + ptrdiff_t(n)) ==
        std::vector<int32_t>(gc.generated.begin(), gc.generated.begin() + ptrdiff_t(n)));
}

const char* kModels[] = {"qwen3-tiny", "llama3-tiny", "qwen2-tiny"};

}  // namespace

TEST_CASE("greedy generation matches HF with whole prompts in one batch", "[golden][runner]") {
  for (const char* model : kModels) {
    auto cases = testing::load_golden(model);
    auto runner = testing::loaded_runner(model);
    MiniScheduler sched({});
    for (size_t i = 0; i < cases.size(); ++i)
      sched.add("r" + std::to_string(i), cases[i].prompt, testing::greedy(), int32_t(cases[i].generated.size()));
    sched.run(*runner);
    for (size_t i = 0; i < cases.size(); ++i) check_tokens(model, sched, "r" + std::to_string(i), cases[i]);
  }
}

TEST_CASE("chunked prefill, staggered arrivals and preemption keep HF's tokens", "[golden][runner]") {
  for (const char* model : kModels) {
    auto cases = testing::load_golden(model);
    auto runner = testing::loaded_runner(model);
    // 5-token chunks under a 24-token budget: prompts span several steps and share
    // them with other requests' decodes.
    MiniScheduler sched({.block_size = 16, .max_chunk_tokens = 5, .token_budget = 24});
    size_t next = 0;
    bool preempted = false;
    sched.run(*runner, [&](int32_t step) {
      if (next < cases.size() && step % 2 == 0) {
        sched.add("r" + std::to_string(next), cases[next].prompt, testing::greedy(),
                  int32_t(cases[next].generated.size()));
        ++next;
      }
      // Preempt the first request mid-generation; it resumes with new blocks and recomputes.
      if (!preempted && sched.request("r0").outputs.size() == 10) {
        sched.preempt("r0");
        preempted = true;
      }
    });
    CHECK(preempted);
    for (size_t i = 0; i < cases.size(); ++i) check_tokens(model, sched, "r" + std::to_string(i), cases[i]);
  }
}

TEST_CASE("prefix-cache hits reuse another request's KV blocks", "[golden][runner]") {
  for (const char* model : kModels) {
    auto cases = testing::load_golden(model);
    auto runner = testing::loaded_runner(model);
    MiniScheduler sched({.block_size = 16, .max_chunk_tokens = 64, .token_budget = 128});
    std::vector<size_t> long_cases;
    for (size_t i = 0; i < cases.size(); ++i)
      if (cases[i].prompt.size() > 16) long_cases.push_back(i);
    REQUIRE(!long_cases.empty());
    for (size_t i : long_cases)
      sched.add("a" + std::to_string(i), cases[i].prompt, testing::greedy(), int32_t(cases[i].generated.size()));
    // Once a source has computed its prompt, a twin arrives and hits its full blocks
    // while the source keeps decoding in the same batches.
    std::vector<bool> added(cases.size(), false);
    sched.run(*runner, [&](int32_t) {
      for (size_t i : long_cases) {
        const auto& src = sched.request("a" + std::to_string(i));
        if (!added[i] && src.outputs.size() == 2) {
          sched.add("b" + std::to_string(i), cases[i].prompt, testing::greedy(), int32_t(cases[i].generated.size()),
                    "a" + std::to_string(i));
          added[i] = true;
        }
      }
    });
    for (size_t i : long_cases) {
      const auto& twin = sched.request("b" + std::to_string(i));
      CHECK(twin.num_prefix_hit == int32_t((cases[i].prompt.size() - 1) / 16 * 16));
      CHECK(twin.num_prefix_hit > 0);
      check_tokens(model, sched, "a" + std::to_string(i), cases[i]);
      check_tokens(model, sched, "b" + std::to_string(i), cases[i]);
    }
  }
}

// InProcessExecutor's order of calls on its Runner: a step is launched at submit and
// finished only when the next step is submitted (with that step shown as the
// lookahead, its placeholders still unfilled) or its output is collected, so the
// engine's own work between the two overlaps the device.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "llm/in_process_executor.h"
#include "messages/step_placeholders.h"

using namespace vela;

namespace {

// Records each call; every step samples token 100 + step id for request "r".
class RecordingRunner final : public Runner {
 public:
  explicit RecordingRunner(std::vector<std::string>& log) : log_(log) {}
  Result<ProfileResult> load(const LoadModel&) override { return ProfileResult{}; }
  Status init_kv_cache(const InitKVCache&) override { return ok_status(); }
  Result<ModelRunnerOutput> execute(const SchedulerOutput& step) override {
    VELA_TRY(launch(step));
    ModelRunnerOutput out;
    VELA_TRY(finish_into(out));
    return out;
  }
  Status launch(const SchedulerOutput& step) override {
    std::string entry = "launch " + std::to_string(step.step_id);
    for (const auto& tokens : step.scheduled_cached_reqs.new_token_ids)
      for (int32_t t : tokens) entry += " token " + std::to_string(t);
    log_.push_back(entry);
    launched_ = step.step_id;
    return ok_status();
  }
  Status finish_into(ModelRunnerOutput& out) override {
    const SchedulerOutput* next = lookahead_ ? lookahead_() : nullptr;
    std::string entry = "finish " + std::to_string(launched_);
    if (next != nullptr) {
      entry += " ahead " + std::to_string(next->step_id);
      for (const auto& tokens : next->scheduled_cached_reqs.new_token_ids)
        for (int32_t t : tokens) entry += t == kPlaceholderToken ? " (placeholder)" : " (filled)";
    }
    log_.push_back(entry);
    out = ModelRunnerOutput{};
    out.step_id = launched_;
    out.request_ids = {"r"};
    out.sampled_token_ids = {{int32_t(100 + launched_)}};
    return ok_status();
  }
  void set_lookahead(Lookahead lookahead) override { lookahead_ = std::move(lookahead); }

 private:
  std::vector<std::string>& log_;
  uint64_t launched_ = 0;
  Lookahead lookahead_;
};

// Step `id` continues request "r" with one token, a placeholder after the first.
SchedulerOutput step_of(uint64_t id) {
  SchedulerOutput s;
  s.step_id = id;
  s.scheduled_cached_reqs.request_ids = {"r"};
  s.scheduled_cached_reqs.new_token_ids = {{id == 1 ? 7 : kPlaceholderToken}};
  s.scheduled_cached_reqs.num_computed_tokens = {int32_t(id)};
  s.scheduled_cached_reqs.new_block_ids = {{}};
  s.scheduled_cached_reqs.resumed_from_preemption = {0};
  s.num_scheduled_tokens = {{"r", 1}};
  s.total_num_scheduled_tokens = 1;
  return s;
}

}  // namespace

TEST_CASE("the in-process executor launches at submit and finishes when the next step comes", "[executor]") {
  std::vector<std::string> log;
  InProcessExecutor exec(std::make_unique<RecordingRunner>(log));
  SchedulerOutput s1 = step_of(1), s2 = step_of(2), s3 = step_of(3);
  REQUIRE(exec.submit(s1).ok());
  CHECK(log == std::vector<std::string>{"launch 1 token 7"});  // submit returned with step 1 running
  REQUIRE(exec.submit(s2).ok());  // async scheduling: step 2 before step 1's output is collected
  CHECK(log == std::vector<std::string>{"launch 1 token 7", "finish 1 ahead 2 (placeholder)", "launch 2 token 101"});
  ModelRunnerOutput out;
  auto got = exec.collect(out, 0);
  REQUIRE(got.ok());
  REQUIRE(*got);
  CHECK(out.step_id == 1);
  CHECK(log.size() == 3);  // step 2 still running
  got = exec.collect(out, 0);  // nothing submitted behind it: collect finishes it
  REQUIRE(got.ok());
  REQUIRE(*got);
  CHECK(out.step_id == 2);
  CHECK(log.back() == "finish 2");
  got = exec.collect(out, 0);
  REQUIRE(got.ok());
  CHECK_FALSE(*got);
  // A step left running when the executor goes is finished first.
  {
    std::vector<std::string> log2;
    {
      InProcessExecutor e2(std::make_unique<RecordingRunner>(log2));
      REQUIRE(e2.submit(s3 = step_of(1)).ok());
    }
    CHECK(log2 == std::vector<std::string>{"launch 1 token 7", "finish 1"});
  }
}

TEST_CASE("VELA_INPROCESS_OVERLAP=0 finishes each step inside its submit", "[executor]") {
  ::setenv("VELA_INPROCESS_OVERLAP", "0", 1);
  std::vector<std::string> log;
  InProcessExecutor exec(std::make_unique<RecordingRunner>(log));
  ::unsetenv("VELA_INPROCESS_OVERLAP");
  SchedulerOutput s1 = step_of(1), s2 = step_of(2);
  REQUIRE(exec.submit(s1).ok());
  REQUIRE(exec.submit(s2).ok());
  CHECK(log == std::vector<std::string>{"launch 1 token 7", "finish 1", "launch 2 token 101", "finish 2"});
}

TEST_CASE("the Runner's default halves keep one step between launch and finish", "[executor]") {
  struct Plain final : Runner {
    Result<ProfileResult> load(const LoadModel&) override { return ProfileResult{}; }
    Status init_kv_cache(const InitKVCache&) override { return ok_status(); }
    Result<ModelRunnerOutput> execute(const SchedulerOutput& step) override {
      ModelRunnerOutput out;
      out.step_id = step.step_id;
      return out;
    }
  } plain;
  ModelRunnerOutput out;
  auto unlaunched = plain.finish_into(out);
  REQUIRE_FALSE(unlaunched.ok());
  CHECK(unlaunched.error().code == "not_launched");
  REQUIRE(plain.launch(step_of(4)).ok());
  auto twice = plain.launch(step_of(5));
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().message.find("launched before the last was finished") != std::string::npos);
  REQUIRE(plain.finish_into(out).ok());
  CHECK(out.step_id == 4);
}

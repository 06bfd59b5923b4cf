// Scheduler unit tests: the step protocol, chunking, the long-prefill cap,
// preemption, policies, admission control, aborts and stop rules.
#include <catch2/catch.hpp>

#include <map>

#include "engine_core/scheduler.h"
#include "fake_runner.h"
#include "scheduler_test_util.h"

using namespace vela;
using namespace vela::testing;

namespace {

SchedulerLimits small_limits() {
  SchedulerLimits l;
  l.block_size_tokens = 4;
  l.num_blocks = 64;
  l.max_num_batched_tokens = 100;
  l.max_num_seqs = 8;
  l.max_model_len = 200;
  return l;
}

int32_t token_for(const std::string& id, int32_t index) {
  return 1000 + static_cast<int32_t>(std::hash<std::string>{}(id) % 1000) + index;
}

// One step: schedule, run the fake model, apply. Checks integrity on the way.
EngineCoreOutputs step(Scheduler& s, FakeRunner& runner, SchedulerOutput* plan = nullptr) {
  SchedulerOutput so = s.schedule();
  REQUIRE(s.check_integrity().ok());
  const ModelRunnerOutput mro = runner.execute(so);
  EngineCoreOutputs out = s.update_from_output(so, mro);
  REQUIRE(s.check_integrity().ok());
  if (plan) *plan = std::move(so);
  return out;
}

}  // namespace

TEST_CASE("scheduler: one request, prefill then decodes; diffs carry only what changed", "[engine_core][scheduler]") {
  Scheduler s(small_limits());
  FakeRunner runner(64, 4, token_for);
  REQUIRE_FALSE(s.add_request(make_request("a", tokens(10), 3)).has_value());
  CHECK(s.num_waiting() == 1);

  SchedulerOutput so = s.schedule();
  REQUIRE(so.scheduled_new_reqs.size() == 1);
  const NewRequestData& n = so.scheduled_new_reqs[0];
  CHECK(n.request_id == "a");
  CHECK(n.prompt_token_ids == tokens(10));
  CHECK(n.block_ids.size() == 3);  // 10 tokens in blocks of 4
  CHECK(n.num_computed_tokens == 0);
  CHECK(so.scheduled_cached_reqs.size() == 0);
  CHECK(so.total_num_scheduled_tokens == 10);
  EngineCoreOutputs out = s.update_from_output(so, runner.execute(so));
  REQUIRE(out.outputs.size() == 1);
  CHECK(out.outputs[0].new_token_ids == std::vector<int32_t>{token_for("a", 0)});
  CHECK(out.outputs[0].finish_reason == FinishReason::kNone);

  so = s.schedule();
  CHECK(so.scheduled_new_reqs.empty());
  REQUIRE(so.scheduled_cached_reqs.size() == 1);
  CHECK(so.scheduled_cached_reqs.new_token_ids[0] == std::vector<int32_t>{token_for("a", 0)});
  CHECK(so.scheduled_cached_reqs.new_block_ids[0].empty());  // token 11 fits block 3
  CHECK(so.scheduled_cached_reqs.num_computed_tokens[0] == 10);
  CHECK(so.scheduled_cached_reqs.resumed_from_preemption[0] == 0);
  CHECK(so.total_num_scheduled_tokens == 1);
  out = s.update_from_output(so, runner.execute(so));

  so = s.schedule();
  CHECK(so.scheduled_cached_reqs.num_computed_tokens[0] == 11);
  CHECK(so.scheduled_cached_reqs.new_block_ids[0].empty());
  out = s.update_from_output(so, runner.execute(so));
  REQUIRE(out.outputs.size() == 1);
  CHECK(out.outputs[0].finish_reason == FinishReason::kLength);
  CHECK_FALSE(s.has_unfinished_requests());
  CHECK(s.has_finished_requests_to_report());

  so = s.schedule();  // the finished id travels in the next step
  CHECK(so.finished_req_ids == std::vector<std::string>{"a"});
  CHECK(so.total_num_scheduled_tokens == 0);
  runner.execute(so);
  CHECK(runner.num_live_requests() == 0);
  CHECK(s.kv_cache_manager().num_free_blocks() == 63);
}

TEST_CASE("scheduler: a prompt larger than the budget is chunked; sampled only at the end", "[engine_core][scheduler]") {
  SchedulerLimits l = small_limits();
  l.max_num_batched_tokens = 8;
  Scheduler s(l);
  FakeRunner runner(64, 4, token_for);
  s.add_request(make_request("a", tokens(20), 2));
  std::vector<int32_t> chunks;
  for (int i = 0; i < 3; ++i) {
    SchedulerOutput so;
    EngineCoreOutputs out = step(s, runner, &so);
    chunks.push_back(so.total_num_scheduled_tokens);
    CHECK(out.outputs.size() == (i == 2 ? 1u : 0u));
  }
  CHECK(chunks == std::vector<int32_t>{8, 8, 4});
}

TEST_CASE("scheduler: the long-prefill cap keeps a prompt from starving decodes behind it", "[engine_core][scheduler]") {
  SchedulerLimits l = small_limits();
  l.max_num_batched_tokens = 8;
  l.long_prefill_token_threshold = 4;
  Scheduler s(l);
  FakeRunner runner(64, 4, token_for);
  s.add_request(make_request("long", tokens(40), 2));
  step(s, runner);  // admitted alone: a full 8-token chunk (no cap at admission)
  s.add_request(make_request("short", tokens(3, 500), 5));
  SchedulerOutput so;
  step(s, runner, &so);  // long capped at 4, short admitted with 3, long topped up by 1
  CHECK(scheduled_tokens_of(so, "short") == 3);
  CHECK(scheduled_tokens_of(so, "long") == 5);
  step(s, runner, &so);  // short decodes even though long comes first in running order
  CHECK(scheduled_tokens_of(so, "short") == 1);
  CHECK(scheduled_tokens_of(so, "long") == 7);
  CHECK(so.total_num_scheduled_tokens == 8);
}

TEST_CASE("scheduler: preemption by recompute when blocks run out; resumed requests are flagged",
          "[engine_core][scheduler]") {
  SchedulerLimits l = small_limits();
  l.num_blocks = 7;  // 6 usable blocks = 24 slots
  l.enable_prefix_caching = false;
  Scheduler s(l);
  FakeRunner runner(7, 4, token_for);
  s.add_request(make_request("first", tokens(8), 12));
  s.add_request(make_request("second", tokens(8, 300), 12));
  std::map<std::string, std::vector<int32_t>> got;
  bool saw_preempt = false, saw_resume = false;
  for (int i = 0; i < 100 && (s.has_unfinished_requests() || s.has_finished_requests_to_report()); ++i) {
    SchedulerOutput so = s.schedule();
    REQUIRE(s.check_integrity().ok());
    if (!so.preempted_req_ids.empty()) {
      saw_preempt = true;
      CHECK(so.preempted_req_ids == std::vector<std::string>{"second"});  // the later arrival
    }
    const auto& c = so.scheduled_cached_reqs;
    for (size_t k = 0; k < c.size(); ++k) {
      if (c.resumed_from_preemption[k]) {
        saw_resume = true;
        CHECK(c.request_ids[k] == "second");
        CHECK(c.num_computed_tokens[k] == 0);  // no prefix cache: recompute from scratch
        CHECK_FALSE(c.new_block_ids[k].empty());  // all its blocks
      }
    }
    for (const auto& o : s.update_from_output(so, runner.execute(so)).outputs)
      got[o.request_id].insert(got[o.request_id].end(), o.new_token_ids.begin(), o.new_token_ids.end());
    REQUIRE(s.check_integrity().ok());
  }
  CHECK(saw_preempt);
  CHECK(saw_resume);
  CHECK(s.stats().num_preemptions >= 1);
  for (const std::string id : {"first", "second"}) {
    std::vector<int32_t> expected;
    for (int32_t j = 0; j < 12; ++j) expected.push_back(token_for(id, j));
    CHECK(got[id] == expected);
  }
  CHECK(runner.num_live_requests() == 0);
}

TEST_CASE("scheduler: priority policy orders admission and picks the lowest priority victim",
          "[engine_core][scheduler]") {
  SchedulerLimits l = small_limits();
  l.policy = "priority";
  l.max_num_seqs = 1;
  Scheduler s(l);
  FakeRunner runner(64, 4, token_for);
  s.add_request(make_request("low", tokens(4), 1, /*priority=*/5));
  s.add_request(make_request("high", tokens(4, 200), 1, /*priority=*/0));
  s.add_request(make_request("mid", tokens(4, 300), 1, /*priority=*/2));
  std::vector<std::string> order;
  for (int i = 0; i < 3; ++i) {
    SchedulerOutput so;
    step(s, runner, &so);
    REQUIRE(so.scheduled_new_reqs.size() == 1);
    order.push_back(so.scheduled_new_reqs[0].request_id);
  }
  CHECK(order == std::vector<std::string>{"high", "mid", "low"});

  // Victim choice: lowest priority first even if it arrived earlier.
  SchedulerLimits p = small_limits();
  p.policy = "priority";
  p.num_blocks = 7;  // 6 usable blocks
  p.enable_prefix_caching = false;
  Scheduler t(p);
  FakeRunner runner2(7, 4, token_for);
  t.add_request(make_request("old_low", tokens(8), 12, 9));
  t.add_request(make_request("new_high", tokens(8, 300), 12, 0));
  std::vector<std::string> preempted;
  for (int i = 0; i < 100 && (t.has_unfinished_requests() || t.has_finished_requests_to_report()); ++i) {
    SchedulerOutput so;
    step(t, runner2, &so);
    preempted.insert(preempted.end(), so.preempted_req_ids.begin(), so.preempted_req_ids.end());
  }
  REQUIRE_FALSE(preempted.empty());
  for (const auto& id : preempted) CHECK(id == "old_low");
}

TEST_CASE("scheduler: requests that can never run are rejected with a reason", "[engine_core][scheduler]") {
  SchedulerLimits l = small_limits();
  l.num_blocks = 11;  // 10 usable blocks = 40 slots
  l.max_model_len = 64;
  Scheduler s(l);
  auto reason = [&](EngineCoreRequest r) {
    auto out = s.add_request(std::move(r));
    REQUIRE(out.has_value());
    CHECK(out->finish_reason == FinishReason::kError);
    return out->error;
  };
  CHECK_THAT(reason(make_request("big", tokens(30), 20)), Catch::Contains("needs up to 13 KV blocks") &&
                                                              Catch::Contains("whole pool has 10"));
  CHECK_THAT(reason(make_request("long", tokens(64), 1)), Catch::Contains("max_model_len 64"));
  CHECK_THAT(reason(make_request("empty", {}, 1)), Catch::Contains("empty prompt"));
  EngineCoreRequest zero = make_request("zero", tokens(4), 1);
  zero.sampling_params.max_tokens = 0;
  CHECK_THAT(reason(zero), Catch::Contains("max_tokens = 0"));
  // 30 prompt + 11 outputs: the last output is never fed back, so 40 slots suffice.
  CHECK_FALSE(s.add_request(make_request("fits", tokens(30), 11)).has_value());
  CHECK_THAT(reason(make_request("fits", tokens(4), 1)), Catch::Contains("already has this id"));
  CHECK(s.stats().num_rejected == 5);

  SchedulerLimits nc = small_limits();
  nc.enable_chunked_prefill = false;
  nc.max_num_batched_tokens = 16;
  Scheduler t(nc);
  auto out = t.add_request(make_request("wide", tokens(17), 1));
  REQUIRE(out.has_value());
  CHECK_THAT(out->error, Catch::Contains("chunked prefill is off"));
}

TEST_CASE("scheduler: abort in every state", "[engine_core][scheduler]") {
  SchedulerLimits l = small_limits();
  l.max_num_seqs = 1;
  Scheduler s(l);
  FakeRunner runner(64, 4, token_for);
  s.add_request(make_request("run", tokens(6), 50));
  s.add_request(make_request("wait", tokens(6, 300), 50));
  step(s, runner);
  CHECK(s.num_running() == 1);
  CHECK(s.num_waiting() == 1);

  // Waiting (never sent to workers): no finished id needed.
  auto aborted = s.abort_requests({"wait", "unknown"});
  REQUIRE(aborted.size() == 1);
  CHECK(aborted[0].request_id == "wait");
  CHECK(aborted[0].finish_reason == FinishReason::kAbort);
  CHECK(s.num_waiting() == 0);

  // Running, between schedule() and update_from_output(): its row is ignored.
  SchedulerOutput so = s.schedule();
  const ModelRunnerOutput mro = runner.execute(so);
  CHECK(s.abort_requests({"run"}).size() == 1);
  CHECK(s.update_from_output(so, mro).outputs.empty());
  CHECK(s.check_integrity().ok());
  CHECK(s.kv_cache_manager().num_free_blocks() == 63);
  so = s.schedule();
  CHECK(so.finished_req_ids == std::vector<std::string>{"run"});
  runner.execute(so);
  CHECK(runner.num_live_requests() == 0);
  CHECK(s.abort_requests({"run"}).empty());  // already gone
}

TEST_CASE("scheduler: abort of a preempted request", "[engine_core][scheduler]") {
  SchedulerLimits l = small_limits();
  l.num_blocks = 7;
  l.enable_prefix_caching = false;
  Scheduler s(l);
  FakeRunner runner(7, 4, token_for);
  s.add_request(make_request("first", tokens(8), 12));
  s.add_request(make_request("second", tokens(8, 300), 12));
  bool aborted = false;
  for (int i = 0; i < 100 && (s.has_unfinished_requests() || s.has_finished_requests_to_report()); ++i) {
    SchedulerOutput so;
    step(s, runner, &so);
    const Request* second = s.find_request("second");
    if (!aborted && second && second->status() == RequestStatus::kPreempted) {
      auto out = s.abort_requests({"second"});
      REQUIRE(out.size() == 1);
      aborted = true;
      CHECK(s.check_integrity().ok());
    }
  }
  CHECK(aborted);
  CHECK(runner.num_live_requests() == 0);
}

TEST_CASE("scheduler: max_num_seqs caps the batch", "[engine_core][scheduler]") {
  SchedulerLimits l = small_limits();
  l.max_num_seqs = 3;
  Scheduler s(l);
  FakeRunner runner(64, 4, token_for);
  for (int i = 0; i < 6; ++i) s.add_request(make_request("r" + std::to_string(i), tokens(4, 100 * i), 4));
  SchedulerOutput so;
  step(s, runner, &so);
  CHECK(so.num_scheduled_tokens.size() == 3);
  CHECK(s.num_running() == 3);
  CHECK(s.num_waiting() == 3);
}

TEST_CASE("scheduler: EOS and stop ids finish with the right reason", "[engine_core][scheduler]") {
  Scheduler s(small_limits());
  FakeRunner runner(64, 4, token_for);
  EngineCoreRequest e = make_request("eos", tokens(4), 10);
  e.sampling_params.ignore_eos = false;
  e.eos_token_id = token_for("eos", 2);
  s.add_request(e);
  EngineCoreRequest t = make_request("stop", tokens(4, 300), 10);
  t.sampling_params.stop_token_ids = {token_for("stop", 1)};
  s.add_request(t);
  std::map<std::string, EngineCoreOutput> last;
  std::map<std::string, int> count;
  for (int i = 0; i < 10; ++i) {
    for (auto& o : step(s, runner).outputs) {
      count[o.request_id] += static_cast<int>(o.new_token_ids.size());
      last[o.request_id] = o;
    }
  }
  CHECK(last["eos"].finish_reason == FinishReason::kStop);
  CHECK_FALSE(last["eos"].stop_token_id.has_value());
  CHECK(count["eos"] == 3);  // the EOS token is reported
  CHECK(last["stop"].finish_reason == FinishReason::kStop);
  CHECK(last["stop"].stop_token_id == token_for("stop", 1));
  CHECK(count["stop"] == 2);
}

TEST_CASE("scheduler: rows in any order are matched by id", "[engine_core][scheduler]") {
  Scheduler s(small_limits());
  FakeRunner runner(64, 4, token_for);
  runner.reverse_rows = true;
  for (int i = 0; i < 4; ++i) s.add_request(make_request("r" + std::to_string(i), tokens(5, 50 * i), 3));
  std::map<std::string, std::vector<int32_t>> got;
  for (int i = 0; i < 6; ++i)
    for (auto& o : step(s, runner).outputs)
      got[o.request_id].insert(got[o.request_id].end(), o.new_token_ids.begin(), o.new_token_ids.end());
  for (int i = 0; i < 4; ++i) {
    const std::string id = "r" + std::to_string(i);
    CHECK(got[id] == std::vector<int32_t>{token_for(id, 0), token_for(id, 1), token_for(id, 2)});
  }
}

TEST_CASE("scheduler: without chunked prefill a prompt waits for a whole budget", "[engine_core][scheduler]") {
  SchedulerLimits l = small_limits();
  l.enable_chunked_prefill = false;
  l.max_num_batched_tokens = 10;
  Scheduler s(l);
  FakeRunner runner(64, 4, token_for);
  s.add_request(make_request("a", tokens(6), 3));
  s.add_request(make_request("b", tokens(8, 300), 3));
  SchedulerOutput so;
  step(s, runner, &so);
  CHECK(scheduled_tokens_of(so, "a") == 6);
  CHECK(scheduled_tokens_of(so, "b") == 0);  // 8 > 4 left; not chunked
  step(s, runner, &so);
  CHECK(scheduled_tokens_of(so, "b") == 8);
}

TEST_CASE("scheduler: free blocks are used by a shrunken chunk rather than left idle", "[engine_core][scheduler]") {
  SchedulerLimits l = small_limits();
  l.num_blocks = 9;  // 8 usable blocks = 32 slots
  l.enable_prefix_caching = false;
  Scheduler s(l);
  FakeRunner runner(9, 4, token_for);
  s.add_request(make_request("a", tokens(20), 2));  // 5 blocks
  s.add_request(make_request("b", tokens(20, 300), 2));
  SchedulerOutput so;
  step(s, runner, &so);
  CHECK(scheduled_tokens_of(so, "a") == 20);
  CHECK(scheduled_tokens_of(so, "b") == 12);  // the 3 blocks left
  CHECK(s.kv_cache_manager().num_free_blocks() == 0);
}

TEST_CASE("scheduler: invalid limits are refused with the field named", "[engine_core][scheduler]") {
  SchedulerLimits l = small_limits();
  l.policy = "lifo";
  auto refused = Scheduler::create(l);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().message, Catch::Contains("policy = 'lifo'"));
  CHECK(refused.error().field == "policy");
  l = small_limits();
  l.num_blocks = 1;
  refused = Scheduler::create(l);
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error().message, Catch::Contains("num_blocks = 1"));
  CHECK(Scheduler::create(small_limits()).ok());
}

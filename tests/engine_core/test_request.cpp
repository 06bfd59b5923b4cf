// Request status machine and stop rules.
#include <catch2/catch.hpp>

#include "engine_core/request.h"
#include "engine_core/stop_checker.h"

using namespace vela;

namespace {
Request make(SamplingParams params, int32_t num_prompt_tokens = 4, int32_t eos = 2) {
  EngineCoreRequest r;
  r.request_id = "x";
  r.prompt_token_ids.assign(static_cast<size_t>(num_prompt_tokens), 7);
  r.sampling_params = std::move(params);
  r.eos_token_id = eos;
  return Request(std::move(r), 0, 0);
}
}  // namespace

TEST_CASE("request status transitions", "[engine_core][request]") {
  using S = RequestStatus;
  CHECK(is_valid_transition(S::kWaiting, S::kRunning));
  CHECK(is_valid_transition(S::kRunning, S::kPreempted));
  CHECK(is_valid_transition(S::kPreempted, S::kRunning));
  CHECK(is_valid_transition(S::kRunning, S::kFinishedStopped));
  CHECK(is_valid_transition(S::kRunning, S::kFinishedLength));
  CHECK(is_valid_transition(S::kWaiting, S::kFinishedAborted));
  CHECK(is_valid_transition(S::kPreempted, S::kFinishedAborted));
  CHECK(is_valid_transition(S::kRunning, S::kFinishedAborted));
  CHECK_FALSE(is_valid_transition(S::kWaiting, S::kPreempted));
  CHECK_FALSE(is_valid_transition(S::kWaiting, S::kFinishedStopped));
  CHECK_FALSE(is_valid_transition(S::kPreempted, S::kFinishedLength));
  CHECK_FALSE(is_valid_transition(S::kFinishedStopped, S::kRunning));
  CHECK_FALSE(is_valid_transition(S::kFinishedAborted, S::kFinishedAborted));
  CHECK_FALSE(is_valid_transition(S::kRunning, S::kWaiting));
  CHECK(finish_reason_of(S::kFinishedLength) == FinishReason::kLength);
  CHECK(std::string(request_status_name(S::kPreempted)) == "PREEMPTED");
}

TEST_CASE("request token accounting and incremental block hashes", "[engine_core][request]") {
  SamplingParams p;
  p.max_tokens = 10;
  Request r = make(p, 6);
  r.update_block_hashes(4, 0);
  CHECK(r.block_hashes().size() == 1);
  r.append_output_token(50);
  r.append_output_token(51);
  CHECK(r.num_tokens() == 8);
  CHECK(r.num_output_tokens() == 2);
  CHECK(r.output_token_ids()[1] == 51);
  r.update_block_hashes(4, 0);
  CHECK(r.block_hashes().size() == 2);
}

TEST_CASE("stop rules: EOS, stop ids, min_tokens, max_tokens, max_model_len", "[engine_core][stop]") {
  SECTION("EOS stops unless ignore_eos") {
    SamplingParams p;
    p.max_tokens = 10;
    Request r = make(p);
    r.append_output_token(2);
    CHECK(check_stop(r, 100).status == RequestStatus::kFinishedStopped);
    CHECK(check_stop(r, 100).stop_token_id == -1);
    p.ignore_eos = true;
    Request q = make(p);
    q.append_output_token(2);
    CHECK(check_stop(q, 100).status == RequestStatus::kRunning);
  }
  SECTION("stop_token_ids report the token") {
    SamplingParams p;
    p.stop_token_ids = {77, 78};
    Request r = make(p);
    r.append_output_token(78);
    const StopDecision d = check_stop(r, 100);
    CHECK(d.status == RequestStatus::kFinishedStopped);
    CHECK(d.stop_token_id == 78);
  }
  SECTION("min_tokens suppresses EOS and stop ids, not length") {
    SamplingParams p;
    p.min_tokens = 3;
    p.max_tokens = 2;
    p.stop_token_ids = {78};
    Request r = make(p);
    r.append_output_token(2);
    CHECK(check_stop(r, 100).status == RequestStatus::kRunning);
    r.append_output_token(78);
    CHECK(check_stop(r, 100).status == RequestStatus::kFinishedLength);
  }
  SECTION("max_tokens and max_model_len give LENGTH") {
    SamplingParams p;
    p.max_tokens = 2;
    Request r = make(p);
    r.append_output_token(9);
    CHECK(check_stop(r, 100).status == RequestStatus::kRunning);
    CHECK(check_stop(r, 5).status == RequestStatus::kFinishedLength);  // 4 + 1 tokens
    r.append_output_token(9);
    CHECK(check_stop(r, 100).status == RequestStatus::kFinishedLength);
  }
  SECTION("a stop token on the last allowed position reports STOPPED") {
    SamplingParams p;
    p.max_tokens = 1;
    Request r = make(p);
    r.append_output_token(2);
    CHECK(check_stop(r, 100).status == RequestStatus::kFinishedStopped);
  }
}

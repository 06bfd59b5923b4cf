#pragma once
// One instance of every message type with non-trivial values in every field.
#include <vector>

#include "messages/codec.h"

namespace vela::test {

inline SamplingParams sample_params() {
  SamplingParams p;
  p.n = 2; p.temperature = 0.7f; p.top_p = 0.9f; p.top_k = 40; p.min_p = 0.05f; p.seed = 1234567890123ull;
  p.max_tokens = 77; p.min_tokens = 3; p.stop = {"\n\n", "END", "ünï"}; p.stop_token_ids = {2, 151645};
  p.ignore_eos = true; p.logprobs = 5; p.presence_penalty = 0.5f; p.frequency_penalty = -0.25f;
  p.repetition_penalty = 1.1f;
  return p;
}

inline std::vector<msg::Message> sample_messages() {
  std::vector<msg::Message> out;
  EngineCoreRequest req{"req-1", {1, 2, 3, 151643}, sample_params(), 1.7e9, -3, 151645};
  out.emplace_back(req);
  out.emplace_back(AbortRequests{{"a", "b", ""}});
  EngineCoreOutput o1{"req-1", {5, 6}, FinishReason::kLength, 151645, {}, 32, ""};
  o1.logprobs.push_back(TokenLogprobs{5, -0.25f, {5, 9}, {-0.25f, -1.5f}});
  EngineCoreOutput o2{"req-2", {}, FinishReason::kError, std::nullopt, {}, 0, "prompt too long"};
  out.emplace_back(EngineCoreOutputs{1, {o1, o2}, 123456789});
  SchedulerOutput so;
  so.step_id = 42;
  so.scheduled_new_reqs.push_back(NewRequestData{"n1", {7, 8, 9}, sample_params(), {0, 5, 9}, 16});
  so.scheduled_cached_reqs.request_ids = {"c1", "c2"};
  so.scheduled_cached_reqs.resumed_from_preemption = {0, 1};
  so.scheduled_cached_reqs.new_token_ids = {{11}, {12, 13}};
  so.scheduled_cached_reqs.new_block_ids = {{}, {3, 4}};
  so.scheduled_cached_reqs.num_computed_tokens = {100, 0};
  so.num_scheduled_tokens = {{"n1", 3}, {"c1", 1}, {"c2", 40}};
  so.total_num_scheduled_tokens = 44;
  so.finished_req_ids = {"old"};
  so.preempted_req_ids = {"p1"};
  out.emplace_back(so);
  ModelRunnerOutput mro;
  mro.step_id = 42;
  mro.request_ids = {"n1", "c1"};
  mro.sampled_token_ids = {{}, {99}};
  mro.logprobs.num_top = 2;
  mro.logprobs.row_offsets = {0, 0};
  mro.logprobs.sampled_logprobs = {-0.5f};
  mro.logprobs.top_ids = {99, 3};
  mro.logprobs.top_logprobs = {-0.5f, -2.0f};
  mro.execute_time_ns = 987654;
  out.emplace_back(mro);
  out.emplace_back(Hello{3, 4242, "cuda:3", 80ull << 30, 79ull << 30});
  out.emplace_back(LoadModel{"/models/x", "dummy", "bfloat16", 4096, 2048, 128, 16, 0.85, 2, 1, "tcp://127.0.0.1:29500", 7, 1ull << 30, 48});
  out.emplace_back(ProfileResult{1, 1ull << 34, 1 << 20, 151936, 151645});
  out.emplace_back(InitKVCache{12345});
  out.emplace_back(Heartbeat{2, 99});
  out.emplace_back(Shutdown{"SIGTERM"});
  out.emplace_back(ErrorMessage{1, "oom", "out of memory", "req-9"});
  out.emplace_back(Ack{1, 77});
  return out;
}

}  // namespace vela::test

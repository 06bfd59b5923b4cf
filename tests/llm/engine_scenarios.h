#pragma once
// Golden-token scenarios for the in-process engine (real scheduler + model runner):
// every golden case of a model in flight at once, under whole prompts, chunked
// prefill mixed with decodes, prefix-cache hits and preemption. The CPU tests and
// the GPU tests run the same scenarios on their device.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "llm/engine_setup.h"
#include "llm/llm_engine.h"
#include "tests/model/golden.h"
#include "workers/model_runner.h"

namespace vela::testing {

struct Scenario {
  const char* name;
  int32_t max_num_batched_tokens;
  int32_t num_blocks;        // 0 = from the KV budget
  bool prefix_caching;
  int copies;                // each golden case submitted this many times
};

// Where the engine runs and how close its logits are to the fp32 reference.
struct EngineTarget {
  std::string device = "cpu";
  double gpu_memory_utilization = 0.9;
  // Greedy tokens must match before the first golden step whose top-1/top-2 margin
  // is under this: the engine's logit error, doubled, can swap two closer logits.
  float min_margin = 1e-2f;
  // config.scheduler.async_scheduling: two steps in flight, the runner filling the
  // placeholders of the step before. Off here so each test names the mode it covers.
  bool async_scheduling = false;
  // In process, with async scheduling: a step launched while the one before still runs
  // (its inputs built then); false sets VELA_INPROCESS_OVERLAP=0 for the engine's
  // creation (one step at a time).
  bool overlap = true;
  // > 1: the engine drives that many worker processes (Gloo on the CPU; NCCL with
  // rank i on cuda:i when device is a GPU).
  int tensor_parallel_size = 1;
  // config.model.enforce_eager: CUDA only (pure decode steps replay CUDA graphs
  // when false, the default); no effect on the CPU.
  bool enforce_eager = false;
  // config.model.dtype: "auto" (CPU float32, CUDA bfloat16), or "float32" on CUDA.
  std::string dtype = "auto";
};

inline void run_scenario(const std::string& model, const Scenario& s, const EngineTarget& target) {
  Config config;
  config.model.path = model_dir(model);
  config.cache.cpu_kv_cache_gib = 0.0625;
  config.cache.num_gpu_blocks = s.num_blocks;
  config.cache.enable_prefix_caching = s.prefix_caching;
  config.cache.gpu_memory_utilization = target.gpu_memory_utilization;
  config.scheduler.max_num_batched_tokens = s.max_num_batched_tokens;
  config.scheduler.max_num_seqs = 16;
  config.scheduler.async_scheduling = target.async_scheduling;
  config.model.enforce_eager = target.enforce_eager;
  config.model.dtype = target.dtype;
  if (target.device != "cpu") config.parallel.devices = {target.device};
  if (target.tensor_parallel_size > 1) {
    config.parallel.tensor_parallel_size = target.tensor_parallel_size;
    config.parallel.devices.clear();
    for (int r = 0; r < target.tensor_parallel_size; ++r)
      config.parallel.devices.push_back(target.device == "cpu" ? "cpu" : "cuda:" + std::to_string(r));
  }
  auto resolved = resolve_model_paths(config);
  REQUIRE(resolved.ok());
  if (!target.overlap) ::setenv("VELA_INPROCESS_OVERLAP", "0", 1);
  auto engine = LLMEngine::create(*resolved);
  if (!target.overlap) ::unsetenv("VELA_INPROCESS_OVERLAP");
  if (!engine) FAIL(engine.error().message);
  LLMEngine& e = **engine;

  auto cases = load_golden(model);
  std::map<std::string, std::vector<int32_t>> tokens;
  std::map<std::string, size_t> case_of;
  for (int copy = 0; copy < s.copies; ++copy) {
    for (size_t i = 0; i < cases.size(); ++i) {
      EngineCoreRequest r;
      r.request_id = model + "-" + std::to_string(i) + "-" + std::to_string(copy);
      r.prompt_token_ids = cases[i].prompt;
      r.sampling_params.temperature = 0.0f;
      r.sampling_params.max_tokens = static_cast<int32_t>(cases[i].generated.size());
      r.sampling_params.ignore_eos = true;
      case_of[r.request_id] = i;
      REQUIRE_FALSE(e.add_request(r).has_value());
    }
  }
  std::map<std::string, FinishReason> finished;
  for (int steps = 0; e.has_unfinished_requests(); ++steps) {
    REQUIRE(steps < 5000);
    auto outs = e.step();
    if (!outs) FAIL(outs.error().message);
    for (const auto& o : (*outs)->outputs) {
      auto& t = tokens[o.request_id];
      t.insert(t.end(), o.new_token_ids.begin(), o.new_token_ids.end());
      if (o.finish_reason != FinishReason::kNone) finished[o.request_id] = o.finish_reason;
    }
  }
  REQUIRE(finished.size() == case_of.size());
  size_t compared = 0;
  for (const auto& [id, i] : case_of) {
    INFO(s.name << " " << id);
    CHECK(finished[id] == FinishReason::kLength);
    const auto& want = cases[i].generated;
    const size_t n = cases[i].num_reliable_tokens(target.min_margin);
    compared += n;
    REQUIRE(tokens[id].size() == want.size());
    CHECK(std::vector<int32_t>(tokens[id].begin(), tokens[id].begin() + n) ==
          std::vector<int32_t>(want.begin(), want.begin() + n));
  }
  CHECK(compared > 0);
  auto stats = e.scheduler().stats();
  if (s.prefix_caching && s.copies > 1) CHECK(stats.prefix_cache_hit_tokens > 0);
  if (s.num_blocks > 0) CHECK(stats.num_preemptions > 0);
  CHECK(stats.num_free_blocks == stats.num_usable_blocks);  // everything came back
  // On CUDA without enforce_eager the decode steps replayed the captured graphs.
  if (e.runner() == nullptr) return;  // worker processes: their stats stay there
  auto rs = model_runner_stats(*e.runner());
  REQUIRE(rs.has_value());
  // The per-kind spans (vela bench throughput's "graph step" / "eager step"): every
  // eager step ran at least one token and took time, and both spans lie inside the
  // runner's execute time.
  CHECK(rs->eager_tokens >= rs->eager_steps);
  CHECK((rs->eager_steps == 0) == (rs->eager_step_seconds == 0.0));
  CHECK((rs->graph_steps == 0) == (rs->graph_step_seconds == 0.0));
  CHECK(rs->eager_step_seconds + rs->graph_step_seconds <= rs->execute_seconds);
  // With async scheduling the in-process executor submits a step while the one before
  // still runs: the runner builds its inputs then (the lookahead), and the tokens above
  // still match; without it, one step at a time, nothing is built ahead.
  const uint64_t steps = rs->graph_steps + rs->eager_steps;
  // Every step after the first had a host gap before its upload (vela bench's host share).
  CHECK(rs->gaps + 1 == steps);
  CHECK(rs->gap_seconds >= 0.0);
  if (target.async_scheduling && target.overlap && steps > 2) CHECK(rs->ahead_steps > 0);
  if (!target.async_scheduling || !target.overlap) CHECK(rs->ahead_steps == 0);
  if (target.device != "cpu" && !target.enforce_eager) {
    INFO("decode CUDA graphs: " << rs->graphs_captured << " captured, " << rs->graph_steps << " steps replayed, "
                                << rs->eager_steps << " eager");
    CHECK(rs->graphs_captured > 0);
    CHECK(rs->graph_steps > 0);
  } else {
    CHECK(rs->graph_steps == 0);
  }
}

}  // namespace vela::testing

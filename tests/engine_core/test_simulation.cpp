// Randomised simulation of the engine core against a fake model runner, plus the
// prefix-sharing and fragmentation workloads. Every step checks the scheduler's and
// the KV cache's invariants; at the end every request must have exactly its
// expected tokens and every block must be free.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>

#include "engine_core/scheduler.h"
#include "fake_runner.h"
#include "messages/step_placeholders.h"
#include "scheduler_test_util.h"

using namespace vela;
using namespace vela::testing;

namespace {

int32_t sim_token(const std::string& id, int32_t index) {
  const uint64_t h = std::hash<std::string>{}(id) * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(index) * 0xbf58476d1ce4e5b9ull;
  return 3 + static_cast<int32_t>((h >> 33) % 30000);
}

struct SimRequest {
  EngineCoreRequest request;
  int64_t arrival_step = 0;
  int64_t abort_step = -1;          // -1: never aborted
  std::vector<int32_t> expected;    // the tokens it must produce when not aborted
  bool expect_rejection = false;
};

// The stop rules, restated independently of the scheduler.
std::vector<int32_t> expected_tokens(const EngineCoreRequest& r, int32_t max_model_len) {
  std::vector<int32_t> out;
  const SamplingParams& p = r.sampling_params;
  const auto num_prompt = static_cast<int32_t>(r.prompt_token_ids.size());
  for (int32_t j = 0;; ++j) {
    const int32_t tok = sim_token(r.request_id, j);
    out.push_back(tok);
    const auto n = static_cast<int32_t>(out.size());
    if (n >= p.min_tokens) {
      if (!p.ignore_eos && r.eos_token_id >= 0 && tok == r.eos_token_id) break;
      if (std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), tok) != p.stop_token_ids.end()) break;
    }
    if (n >= p.max_tokens || num_prompt + n >= max_model_len) break;
  }
  return out;
}

// Admission control, restated: could this request ever be scheduled?
bool never_fits(const EngineCoreRequest& r, const SchedulerLimits& l) {
  const auto num_prompt = static_cast<int64_t>(r.prompt_token_ids.size());
  if (num_prompt >= l.max_model_len) return true;
  if (!l.enable_chunked_prefill && num_prompt > l.max_num_batched_tokens) return true;
  const int64_t max_kv = std::min<int64_t>(num_prompt + r.sampling_params.max_tokens, l.max_model_len) - 1 +
                         l.num_lookahead_tokens;
  return (max_kv + l.block_size_tokens - 1) / l.block_size_tokens > l.num_blocks - 1;
}

struct SimConfig {
  int32_t num_requests = 1500;
  int64_t arrival_horizon_steps = 1500;
  SchedulerLimits limits;
  bool reverse_rows = false;
  bool check_no_idle_blocks = false;  // valid without prefix caching and with chunking
  uint32_t seed = 1;
  // Async scheduling as the EngineCore runs it: step N+1 is scheduled (and run by the
  // runner, which fills its placeholders from its own last output) before step N's
  // output is applied; aborts land while a step is in flight.
  bool async = false;
};

struct SimResult {
  int64_t num_steps = 0;
  SchedulerStats stats;
};

std::vector<SimRequest> make_workload(const SimConfig& cfg) {
  std::mt19937 rng(cfg.seed);
  auto uniform = [&](int32_t lo, int32_t hi) { return lo + static_cast<int32_t>(rng() % static_cast<uint32_t>(hi - lo + 1)); };
  std::vector<std::vector<int32_t>> prefixes;
  for (int i = 0; i < 8; ++i) prefixes.push_back(tokens(uniform(16, 240), 40000 + 1000 * i));
  const int32_t pool_tokens = (cfg.limits.num_blocks - 1) * cfg.limits.block_size_tokens;
  std::vector<SimRequest> reqs;
  for (int32_t i = 0; i < cfg.num_requests; ++i) {
    SimRequest s;
    EngineCoreRequest& r = s.request;
    r.request_id = "req-" + std::to_string(i);
    std::vector<int32_t> prompt;
    if (rng() % 10 < 3) prompt = prefixes[rng() % prefixes.size()];
    const int32_t suffix = rng() % 10 == 0 ? uniform(200, 900) : uniform(1, 160);
    for (int32_t k = 0; k < suffix; ++k) prompt.push_back(uniform(3, 30000));
    r.prompt_token_ids = prompt;
    r.sampling_params.max_tokens = uniform(1, 120);
    r.sampling_params.ignore_eos = rng() % 2 == 0;
    if (rng() % 4 == 0) r.sampling_params.min_tokens = uniform(0, 10);
    r.eos_token_id = 2;
    if (rng() % 3 == 0) r.eos_token_id = sim_token(r.request_id, uniform(0, r.sampling_params.max_tokens));
    if (rng() % 10 == 0) r.sampling_params.stop_token_ids = {sim_token(r.request_id, uniform(0, 60))};
    r.priority = uniform(0, 3);
    r.arrival_time = static_cast<double>(i);
    if (rng() % 100 == 0) {  // too large for the pool (or the budget without chunking)
      r.prompt_token_ids = tokens(std::min(pool_tokens - 8, cfg.limits.max_model_len - 1), 7);
      r.sampling_params.max_tokens = cfg.limits.block_size_tokens * 2 + 1;
      r.sampling_params.ignore_eos = true;
    }
    s.expect_rejection = never_fits(r, cfg.limits);
    s.arrival_step = rng() % static_cast<uint32_t>(cfg.arrival_horizon_steps);
    if (rng() % 20 == 0) s.abort_step = s.arrival_step + uniform(0, 60);
    s.expected = expected_tokens(r, cfg.limits.max_model_len);
    reqs.push_back(std::move(s));
  }
  std::stable_sort(reqs.begin(), reqs.end(),
                   [](const SimRequest& a, const SimRequest& b) { return a.arrival_step < b.arrival_step; });
  return reqs;
}

SimResult run_simulation(const SimConfig& cfg) {
  SchedulerLimits limits = cfg.limits;
  limits.async_scheduling = cfg.async;
  Scheduler s(limits);
  FakeRunner runner(limits.num_blocks, limits.block_size_tokens, sim_token);
  runner.reverse_rows = cfg.reverse_rows;
  std::vector<SimRequest> reqs = make_workload(cfg);

  std::map<std::string, std::vector<int32_t>> got;
  std::map<std::string, FinishReason> finish;
  std::multimap<int64_t, std::string> aborts;
  auto record = [&](const EngineCoreOutput& o) {
    INFO("request " << o.request_id);
    REQUIRE(finish.count(o.request_id) == 0);  // nothing after a finish
    got[o.request_id].insert(got[o.request_id].end(), o.new_token_ids.begin(), o.new_token_ids.end());
    if (o.finish_reason != FinishReason::kNone) finish[o.request_id] = o.finish_reason;
  };

  size_t next = 0;
  int64_t step = 0;
  SchedulerOutput so;
  EngineCoreOutputs outs;
  // Async: the step in flight (its plan and the runner's answer).
  bool in_flight = false;
  SchedulerOutput flying;
  ModelRunnerOutput flying_output;
  for (; step < 400000; ++step) {
    for (; next < reqs.size() && reqs[next].arrival_step <= step; ++next) {
      const SimRequest& r = reqs[next];
      std::optional<EngineCoreOutput> rejected = s.add_request(r.request);
      REQUIRE(rejected.has_value() == r.expect_rejection);
      if (rejected) {
        CHECK(rejected->finish_reason == FinishReason::kError);
        record(*rejected);
      }
      if (r.abort_step >= 0) aborts.emplace(r.abort_step, r.request.request_id);
    }
    for (auto it = aborts.begin(); it != aborts.end() && it->first <= step;) {
      for (const auto& o : s.abort_requests({it->second})) record(o);
      it = aborts.erase(it);
    }
    if (next == reqs.size() && aborts.empty() && !s.has_unfinished_requests() &&
        !s.has_finished_requests_to_report() && !in_flight)
      break;

    s.schedule(so);  // the buffer-reusing path, as the engine actor would use it
    REQUIRE(so.total_num_scheduled_tokens <= limits.max_num_batched_tokens);
    REQUIRE(so.num_scheduled_tokens.size() <= static_cast<size_t>(limits.max_num_seqs));
    REQUIRE(s.num_running() <= static_cast<size_t>(limits.max_num_seqs));
    {
      const vela::Status sound = s.check_integrity();
      INFO("step " << step << ": " << (sound ? "" : sound.error().message));
      REQUIRE(sound.ok());
    }
    if (cfg.check_no_idle_blocks && !cfg.async && so.preempted_req_ids.empty() && s.num_waiting() > 0 &&
        s.num_running() < static_cast<size_t>(limits.max_num_seqs) &&
        so.total_num_scheduled_tokens < limits.max_num_batched_tokens) {
      INFO("step " << step << ": requests wait while blocks are free");
      REQUIRE(s.kv_cache_manager().num_free_blocks() == 0);
    }
    if (!cfg.async) {
      const ModelRunnerOutput mro = runner.execute(so);
      s.update_from_output(so, mro, outs);
      for (const auto& o : outs.outputs) record(o);
      REQUIRE(s.check_integrity().ok());
      continue;
    }
    // Async: what the workers see (placeholders filled from their last output) runs
    // now; the output of the step before is applied after.
    const bool submitted = so.total_num_scheduled_tokens > 0 || !so.finished_req_ids.empty() ||
                           !so.preempted_req_ids.empty();
    ModelRunnerOutput mro;
    if (submitted) {
      SchedulerOutput seen = so;
      if (count_placeholders(seen) > 0) {
        REQUIRE(in_flight);
        auto filled = fill_placeholders(seen, flying_output);
        INFO("step " << step << ": " << (filled.ok() ? "" : filled.error().message));
        REQUIRE(filled.ok());
      }
      mro = runner.execute(seen);
    }
    if (in_flight) {
      s.update_from_output(flying, flying_output, outs);
      for (const auto& o : outs.outputs) record(o);
      REQUIRE(s.check_integrity().ok());
    }
    in_flight = submitted;
    if (submitted) {
      std::swap(flying, so);
      flying_output = std::move(mro);
    }
  }
  REQUIRE(step < 400000);

  for (const SimRequest& r : reqs) {
    const std::string& id = r.request.request_id;
    INFO("request " << id);
    REQUIRE(finish.count(id) == 1);
    const std::vector<int32_t>& tokens_got = got[id];
    if (r.expect_rejection) {
      CHECK(finish[id] == FinishReason::kError);
      CHECK(tokens_got.empty());
    } else if (finish[id] == FinishReason::kAbort) {
      REQUIRE(r.abort_step >= 0);
      REQUIRE(tokens_got.size() < r.expected.size());
      CHECK(std::equal(tokens_got.begin(), tokens_got.end(), r.expected.begin()));
    } else {
      CHECK(tokens_got == r.expected);
      CHECK((finish[id] == FinishReason::kStop || finish[id] == FinishReason::kLength));
    }
  }
  CHECK(s.kv_cache_manager().num_free_blocks() == s.kv_cache_manager().num_usable_blocks());
  CHECK(runner.num_live_requests() == 0);
  CHECK(s.num_running() == 0);
  CHECK(s.num_waiting() == 0);
  return SimResult{step, s.stats()};
}

SchedulerLimits sim_limits() {
  SchedulerLimits l;
  l.block_size_tokens = 16;
  l.num_blocks = 257;  // 256 usable blocks = 4,096 slots: far below the offered load
  l.max_num_batched_tokens = 512;
  l.max_num_seqs = 48;
  l.max_model_len = 6000;  // above the pool: some requests can never fit
  return l;
}

void report(const char* name, const SimResult& r) {
  std::printf("[sim %s] steps %lld, preemptions %lld, prefix hit rate %.1f%%, rejected %lld\n", name,
              static_cast<long long>(r.num_steps), static_cast<long long>(r.stats.num_preemptions),
              100.0 * r.stats.prefix_cache_hit_rate, static_cast<long long>(r.stats.num_rejected));
}

}  // namespace

TEST_CASE("simulation: FCFS with prefix caching and chunked prefill", "[engine_core][simulation]") {
  SimConfig cfg;
  cfg.limits = sim_limits();
  cfg.seed = 1;
  const SimResult r = run_simulation(cfg);
  report("fcfs", r);
  CHECK(r.stats.num_preemptions > 0);  // the pool really is too small
  CHECK(r.stats.prefix_cache_hit_tokens > 0);
  CHECK(r.stats.num_rejected > 0);
}

TEST_CASE("simulation: priority policy, rows answered out of order", "[engine_core][simulation]") {
  SimConfig cfg;
  cfg.limits = sim_limits();
  cfg.limits.policy = "priority";
  cfg.reverse_rows = true;
  cfg.seed = 2;
  const SimResult r = run_simulation(cfg);
  report("priority", r);
  CHECK(r.stats.num_preemptions > 0);
  CHECK(r.stats.num_rejected > 0);
}

TEST_CASE("simulation: no prefix caching; free blocks never idle while requests wait", "[engine_core][simulation]") {
  SimConfig cfg;
  cfg.limits = sim_limits();
  cfg.limits.enable_prefix_caching = false;
  cfg.check_no_idle_blocks = true;
  cfg.seed = 3;
  const SimResult r = run_simulation(cfg);
  report("no-prefix-cache", r);
  CHECK(r.stats.num_preemptions > 0);
  CHECK(r.stats.prefix_cache_hit_tokens == 0);
}

// Whole prompts only (chunked prefill off), lookahead slots, blocks of 8 tokens.
SimConfig no_chunking_config(uint32_t seed) {
  SimConfig cfg;
  cfg.limits = sim_limits();
  cfg.limits.enable_chunked_prefill = false;
  cfg.limits.max_num_batched_tokens = 1200;
  cfg.limits.block_size_tokens = 8;
  cfg.limits.num_blocks = 601;
  cfg.limits.num_lookahead_tokens = 3;
  cfg.num_requests = 1000;
  cfg.seed = seed;
  return cfg;
}

TEST_CASE("simulation: chunked prefill off, lookahead slots, small blocks", "[engine_core][simulation]") {
  const SimConfig cfg = no_chunking_config(4);
  const SimResult r = run_simulation(cfg);
  report("no-chunking", r);
  CHECK(r.stats.num_rejected > 0);
}

TEST_CASE("simulation, async scheduling: every configuration above with a step in flight",
          "[engine_core][simulation][async]") {
  SimConfig cfg;
  cfg.async = true;
  SECTION("fcfs, prefix caching, chunked prefill") {
    cfg.limits = sim_limits();
    cfg.seed = 11;
  }
  SECTION("priority, rows out of order") {
    cfg.limits = sim_limits();
    cfg.limits.policy = "priority";
    cfg.reverse_rows = true;
    cfg.seed = 12;
  }
  SECTION("no prefix caching") {
    cfg.limits = sim_limits();
    cfg.limits.enable_prefix_caching = false;
    cfg.seed = 13;
  }
  SECTION("chunked prefill off, lookahead, small blocks") {
    cfg = no_chunking_config(14);
    cfg.async = true;
  }
  const SimResult r = run_simulation(cfg);
  report("async", r);
  CHECK(r.stats.num_rejected > 0);
  if (cfg.limits.enable_chunked_prefill) CHECK(r.stats.num_preemptions > 0);
}

TEST_CASE("prefix sharing: 100 requests with a 1,000-token common prefix compute it once",
          "[engine_core][prefix]") {
  SchedulerLimits l;
  l.block_size_tokens = 16;
  l.num_blocks = 4001;
  l.max_num_batched_tokens = 2048;
  l.max_num_seqs = 256;
  l.max_model_len = 4096;
  constexpr int32_t kPrefix = 1000, kSuffix = 24, kMaxTokens = 4, kRequests = 100;
  const bool staggered = GENERATE(false, true);
  INFO((staggered ? "one arrival per step" : "all arrive at once"));
  Scheduler s(l);
  FakeRunner runner(l.num_blocks, l.block_size_tokens, sim_token);
  const std::vector<int32_t> prefix = tokens(kPrefix, 5);
  int32_t added = 0;
  int64_t steps = 0;
  while (added < kRequests || s.has_unfinished_requests()) {
    while (added < kRequests && (!staggered || added <= steps)) {
      std::vector<int32_t> prompt = prefix;
      for (int32_t k = 0; k < kSuffix; ++k) prompt.push_back(20000 + added * kSuffix + k);
      REQUIRE_FALSE(s.add_request(make_request("p" + std::to_string(added), prompt, kMaxTokens)).has_value());
      ++added;
    }
    SchedulerOutput so = s.schedule();
    REQUIRE(s.check_integrity().ok());
    s.update_from_output(so, runner.execute(so));
    ++steps;
  }
  const int32_t shared_full_blocks_tokens = (kPrefix / 16) * 16;  // 992: the partial block is per request
  const int64_t expected_computed = shared_full_blocks_tokens +
                                    int64_t{kRequests} * (kPrefix + kSuffix - shared_full_blocks_tokens) +
                                    int64_t{kRequests} * (kMaxTokens - 1);
  CHECK(runner.num_tokens_computed == expected_computed);
  CHECK(s.stats().prefix_cache_hit_tokens == int64_t{kRequests - 1} * shared_full_blocks_tokens);
  std::printf("[prefix %s] computed %lld tokens for %d requests of %d (prefix hit rate %.1f%%)\n",
              staggered ? "staggered" : "burst", static_cast<long long>(runner.num_tokens_computed), kRequests,
              kPrefix + kSuffix, 100.0 * s.stats().prefix_cache_hit_rate);
}

TEST_CASE("fragmentation: average KV waste on a mixed workload stays under 4%", "[engine_core][fragmentation]") {
  SchedulerLimits l;
  l.block_size_tokens = 16;
  l.num_blocks = 4097;
  l.max_num_batched_tokens = 2048;
  l.max_num_seqs = 128;
  l.max_model_len = 4096;
  l.enable_prefix_caching = false;  // no sharing: each slot belongs to one request
  Scheduler s(l);
  FakeRunner runner(l.num_blocks, l.block_size_tokens, sim_token);
  std::mt19937 rng(5);
  auto log_uniform = [&](double lo, double hi) {
    return static_cast<int32_t>(std::exp(std::log(lo) + (std::log(hi) - std::log(lo)) * (rng() % 10000) / 10000.0));
  };
  constexpr int kRequests = 600;
  int added = 0;
  double waste_sum = 0;
  int64_t samples = 0;
  for (int64_t step = 0; added < kRequests || s.has_unfinished_requests(); ++step) {
    for (int k = 0; k < 2 && added < kRequests; ++k, ++added) {
      EngineCoreRequest r = make_request("f" + std::to_string(added), tokens(log_uniform(8, 2048), 3), log_uniform(8, 1024));
      REQUIRE_FALSE(s.add_request(r).has_value());
    }
    SchedulerOutput so = s.schedule();
    s.update_from_output(so, runner.execute(so));
    // After the step: allocated slots vs slots holding computed KV.
    const int64_t allocated = int64_t{s.kv_cache_manager().num_usable_blocks() - s.kv_cache_manager().num_free_blocks()} *
                              l.block_size_tokens;
    if (allocated == 0) continue;
    int64_t used = 0;
    for (int i = 0; i < added; ++i)
      if (const Request* r = s.find_request("f" + std::to_string(i)); r && r->status() == RequestStatus::kRunning)
        used += r->num_computed_tokens();
    REQUIRE(used <= allocated);
    waste_sum += static_cast<double>(allocated - used) / static_cast<double>(allocated);
    ++samples;
  }
  const double average_waste = waste_sum / static_cast<double>(samples);
  std::printf("[fragmentation] average KV waste (allocated - used) / allocated = %.2f%% over %lld steps\n",
              100.0 * average_waste, static_cast<long long>(samples));
  CHECK(average_waste < 0.04);
}

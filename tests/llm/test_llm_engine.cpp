// The in-process engine (real scheduler + CPU model runner) reproduces HF
// transformers' greedy tokens under chunked prefill, prefix-cache hits and
// preemption, with every golden case of a model in flight at once.
#include <catch2/catch.hpp>

#include <map>

#include "llm/engine_setup.h"
#include "llm/llm_engine.h"
#include "tests/model/golden.h"

using namespace vela;

namespace {

struct Scenario {
  const char* name;
  int32_t max_num_batched_tokens;
  int32_t num_blocks;        // 0 = from the KV budget
  bool prefix_caching;
  int copies;                // each golden case submitted this many times
};

void run_scenario(const std::string& model, const Scenario& s, bool async_scheduling = false) {
  Config config;
  config.model.path = testing::model_dir(model);
  config.cache.cpu_kv_cache_gib = 0.0625;
  config.cache.num_gpu_blocks = s.num_blocks;
  config.cache.enable_prefix_caching = s.prefix_caching;
  config.scheduler.max_num_batched_tokens = s.max_num_batched_tokens;
  config.scheduler.max_num_seqs = 16;
  config.scheduler.async_scheduling = async_scheduling;
  auto resolved = resolve_model_paths(config);
  REQUIRE(resolved.ok());
  auto engine = LLMEngine::create(*resolved);
  if (!engine) FAIL(engine.error().message);
  LLMEngine& e = **engine;

  auto cases = testing::load_golden(model);
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
  for (const auto& [id, i] : case_of) {
    INFO(s.name << " " << id);
    CHECK(finished[id] == FinishReason::kLength);
    const auto& want = cases[i].generated;
    const size_t n = cases[i].num_reliable_tokens();
    REQUIRE(tokens[id].size() == want.size());
    CHECK(std::vector<int32_t>(tokens[id].begin(), tokens[id].begin() + n) ==
          std::vector<int32_t>(want.begin(), want.begin() + n));
  }
  auto stats = e.scheduler().stats();
  if (s.prefix_caching && s.copies > 1) CHECK(stats.prefix_cache_hit_tokens > 0);
  if (s.num_blocks > 0) CHECK(stats.num_preemptions > 0);
  CHECK(stats.num_free_blocks == stats.num_usable_blocks);  // everything came back
}

}  // namespace

const Scenario kScenarios[] = {
    {"whole prompts", 2048, 0, true, 1},
    {"chunked prefill (budget 7) mixed with decodes", 7, 0, true, 1},
    {"prefix-cache hits (every case twice)", 64, 0, true, 2},
    {"preemption in a pool of 24 blocks", 48, 24, false, 2},
};

TEST_CASE("the in-process engine reproduces HF greedy tokens", "[golden]") {
  for (const char* model : {"qwen3-tiny", "llama3-tiny", "qwen2-tiny"})
    for (const auto& s : kScenarios) {
      DYNAMIC_SECTION(model << ": " << s.name) { run_scenario(model, s); }
    }
}

// Two steps in flight: each step is scheduled before the previous one's tokens are
// applied (the runner fills the placeholders); the tokens must not change.
TEST_CASE("the in-process engine with async scheduling reproduces HF greedy tokens", "[golden][async]") {
  for (const char* model : {"qwen3-tiny", "llama3-tiny", "qwen2-tiny"})
    for (const auto& s : kScenarios) {
      DYNAMIC_SECTION(model << ": " << s.name) { run_scenario(model, s, true); }
    }
}

TEST_CASE("engine setup errors name the key") {
  Config c;
  c.model.path = "/nonexistent/model";
  auto r = resolve_model_paths(c);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("model.path") != std::string::npos);
  c.model.path = testing::model_dir("qwen3-tiny");
  c.model.max_model_len = 1 << 20;
  auto len = resolve_max_model_len(c);
  REQUIRE_FALSE(len.ok());
  CHECK(len.error().message.find("max_position_embeddings") != std::string::npos);
  CHECK_FALSE(agree_num_blocks({ProfileResult{0, 1000, 0, 0, 0}}, 0).ok());
  CHECK(*agree_num_blocks({ProfileResult{0, 1000, 10, 0, 0}, ProfileResult{1, 500, 10, 0, 0}}, 0) == 50);
  CHECK(*agree_num_blocks({ProfileResult{0, 1000, 10, 0, 0}}, 7) == 7);
}

TEST_CASE("the embedded default resolves to the demo model and tokenizer") {
  auto r = resolve_model_paths(Config{});
  REQUIRE(r.ok());
  CHECK(r->model.path.find("configs/demo-model") != std::string::npos);
  CHECK(r->model.load_format == "dummy");
  CHECK(r->model.tokenizer.find("third_party/tokenizers/qwen3") != std::string::npos);
}

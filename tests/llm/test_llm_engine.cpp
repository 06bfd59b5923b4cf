// The in-process engine (real scheduler + CPU model runner) reproduces HF
// transformers' greedy tokens under chunked prefill, prefix-cache hits and
// preemption, with every golden case of a model in flight at once.
#include <catch2/catch.hpp>

#include <map>

#include "common/paths.h"
#include "engine_core/engine_core.h"  // agree_num_blocks
#include "llm/engine_setup.h"
#include "llm/llm_engine.h"
#include "tests/llm/engine_scenarios.h"
#include "tests/model/golden.h"

using namespace vela;

namespace {

const testing::Scenario kScenarios[] = {
    {"whole prompts", 2048, 0, true, 1},
    {"chunked prefill (budget 7) mixed with decodes", 7, 0, true, 1},
    {"prefix-cache hits (every case twice)", 64, 0, true, 2},
    {"preemption in a pool of 24 blocks", 48, 24, false, 2},
};

}  // namespace

TEST_CASE("the in-process engine reproduces HF greedy tokens", "[golden]") {
  testing::EngineTarget sync;
  sync.async_scheduling = false;
  for (const char* model : {"qwen3-tiny", "llama3-tiny", "qwen2-tiny"})
    for (const auto& s : kScenarios) {
      DYNAMIC_SECTION(model << ": " << s.name) { testing::run_scenario(model, s, sync); }
    }
}

// Two steps in flight: each step is scheduled before the previous one's tokens are
// applied (the runner fills the placeholders); the tokens must not change.
TEST_CASE("the in-process engine with async scheduling reproduces HF greedy tokens", "[golden][async]") {
  testing::EngineTarget async;
  async.async_scheduling = true;
  for (const char* model : {"qwen3-tiny", "llama3-tiny", "qwen2-tiny"})
    for (const auto& s : kScenarios) {
      DYNAMIC_SECTION(model << ": " << s.name) { testing::run_scenario(model, s, async); }
    }
}

// The same with every step finished inside its submit (VELA_INPROCESS_OVERLAP=0, the
// executor's order before steps overlapped): nothing is built ahead, the same tokens.
TEST_CASE("the in-process engine with async scheduling, one step at a time, reproduces HF greedy tokens",
          "[golden][async]") {
  testing::EngineTarget serial;
  serial.async_scheduling = true;
  serial.overlap = false;
  for (const auto& s : kScenarios) {
    DYNAMIC_SECTION("qwen3-tiny: " << s.name) { testing::run_scenario("qwen3-tiny", s, serial); }
  }
}

// At tensor_parallel_size 2 the same engine drives two vela-worker processes
// (Gloo between them): the startup, the steps and the tokens are those of `vela serve`.
TEST_CASE("the engine at TP=2 (worker processes) reproduces HF greedy tokens", "[golden][tp]") {
  testing::EngineTarget tp2;
  tp2.tensor_parallel_size = 2;
  tp2.async_scheduling = true;
  for (const char* model : {"qwen3-tiny", "llama3-tiny"}) {
    DYNAMIC_SECTION(model << ": " << kScenarios[1].name) { testing::run_scenario(model, kScenarios[1], tp2); }
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

// The compute dtype is the device's to accept: the CPU computes in float32 only, so
// bfloat16 and float16 are refused when the engine is created, naming the key and the
// value (CUDA accepts bfloat16 and float32 and refuses float16 the same way:
// tests/gpu/test_model_gpu.cpp).
TEST_CASE("a compute dtype the device cannot run is refused at engine creation, by key and value") {
  for (const char* dtype : {"bfloat16", "float16"}) {
    Config c;
    c.model.path = testing::model_dir("qwen3-tiny");
    c.model.dtype = dtype;
    auto resolved = resolve_model_paths(c);
    REQUIRE(resolved.ok());
    auto engine = LLMEngine::create(*resolved);
    REQUIRE_FALSE(engine.ok());
    INFO(engine.error().message);
    CHECK(engine.error().message.find(std::string("model.dtype '") + dtype + "'") != std::string::npos);
  }
  Config c;
  c.model.path = testing::model_dir("qwen3-tiny");
  c.model.dtype = "float32";
  auto resolved = resolve_model_paths(c);
  REQUIRE(resolved.ok());
  CHECK(LLMEngine::create(*resolved).ok());
}

TEST_CASE("the embedded default resolves to the demo model and tokenizer") {
  auto r = resolve_model_paths(Config{});
  REQUIRE(r.ok());
  if (!find_project_file("models/demo/config.json").empty()) {
    // The trained demo model: its own weights and tokenizer.
    CHECK(r->model.path.find("models/demo") != std::string::npos);
    CHECK(r->model.load_format == "auto");
    CHECK(r->model.tokenizer.empty());
    CHECK(tokenizer_dir(*r) == r->model.path);
  } else {
    // Its stand-in until the GPU run has produced it: random weights, Qwen3's tokenizer.
    CHECK(r->model.path.find("configs/demo-model") != std::string::npos);
    CHECK(r->model.load_format == "dummy");
    CHECK(r->model.tokenizer.find("third_party/tokenizers/qwen3") != std::string::npos);
  }
}

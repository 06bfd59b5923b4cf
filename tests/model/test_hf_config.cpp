// config.json parsing: both rope key forms, head_dim, biases, q/k norm, tying, unsupported keys.
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>

#include "model/hf_config.h"
#include "model/layers/rotary.h"
#include "tests/model/golden.h"
#include "tests/model/safetensors_writer.h"

using namespace vela;
using Catch::Matchers::Contains;

namespace {
nlohmann::json reference_config(const std::string& model) {
  return nlohmann::json::parse(testing::read_file(testing::model_dir(model) + "/config.json"));
}
Result<HFConfig> parse(const nlohmann::json& j) { return parse_hf_config(j.dump(), "test/config.json"); }
}  // namespace

TEST_CASE("reference configs parse with their architecture's features", "[config]") {
  auto qwen3 = load_hf_config(testing::model_dir("qwen3-tiny"));
  REQUIRE(qwen3.ok());
  CHECK(qwen3->head_dim == 64);  // != hidden 64 / heads 2
  CHECK(qwen3->qk_norm);
  CHECK(!qwen3->qkv_bias);
  CHECK(qwen3->tie_word_embeddings);
  CHECK(qwen3->rope.theta == 1000000.0);
  CHECK(qwen3->rope.type == RopeConfig::Type::kDefault);

  auto llama = load_hf_config(testing::model_dir("llama3-tiny"));
  REQUIRE(llama.ok());
  CHECK(llama->rope.type == RopeConfig::Type::kLlama3);
  CHECK(llama->rope.theta == 500000.0);
  CHECK(llama->rope.factor == 8.0);
  CHECK(llama->rope.original_max_position_embeddings == 1024);
  CHECK(llama->num_key_value_heads == 2);
  CHECK(llama->eos_token_ids == std::vector<int32_t>{128001});

  auto qwen2 = load_hf_config(testing::model_dir("qwen2-tiny"));
  REQUIRE(qwen2.ok());
  CHECK(qwen2->qkv_bias);
  CHECK(!qwen2->o_bias);
  CHECK(qwen2->head_dim == 8);  // hidden 32 / 4 heads
}

TEST_CASE("classic rope_scaling and rope_parameters give the same rope", "[config]") {
  auto j = reference_config("llama3-tiny");
  auto modern = parse(j);
  REQUIRE(modern.ok());
  nlohmann::json classic = j;
  classic.erase("rope_parameters");
  classic["rope_theta"] = 500000.0;
  classic["rope_scaling"] = {{"type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                             {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 1024}};
  auto old_style = parse(classic);
  REQUIRE(old_style.ok());
  CHECK(rope_inv_freq(modern->rope, 16) == rope_inv_freq(old_style->rope, 16));
  // llama3 scaling: highest frequency kept, lowest divided by the factor.
  auto plain = rope_inv_freq(RopeConfig{.theta = 500000.0}, 16);
  auto scaled = rope_inv_freq(modern->rope, 16);
  CHECK(scaled[0] == plain[0]);
  CHECK(std::fabs(scaled[7] - plain[7] / 8.0f) < 1e-12f);
}

TEST_CASE("unsupported settings are errors naming the key", "[config]") {
  auto j = reference_config("llama3-tiny");
  j["rope_parameters"]["rope_type"] = "yarn";
  auto r = parse(j);
  REQUIRE(!r.ok());
  CHECK(r.error().code == "unsupported");
  CHECK_THAT(r.error().message, Contains("test/config.json") && Contains("rope_type") && Contains("yarn"));

  j = reference_config("qwen2-tiny");
  j["hidden_act"] = "gelu";
  r = parse(j);
  REQUIRE(!r.ok());
  CHECK_THAT(r.error().message, Contains("hidden_act"));

  j = reference_config("qwen2-tiny");
  j.erase("num_attention_heads");
  r = parse(j);
  REQUIRE(!r.ok());
  CHECK_THAT(r.error().message, Contains("num_attention_heads"));

  j = reference_config("qwen2-tiny");
  j["architectures"] = {"MistralForCausalLM"};
  j["sliding_window"] = 4096;
  r = parse(j);
  REQUIRE(!r.ok());
  CHECK_THAT(r.error().message, Contains("sliding_window"));
}

TEST_CASE("Llama attention_bias adds q/k/v/o biases; Mistral is a Llama alias", "[config]") {
  auto j = reference_config("llama3-tiny");
  j["attention_bias"] = true;
  j["architectures"] = {"MistralForCausalLM"};
  auto r = parse(j);
  REQUIRE(r.ok());
  CHECK(r->qkv_bias);
  CHECK(r->o_bias);
  CHECK(!r->qk_norm);
}

// Bad model files: each error names the file and the tensor (or config key).
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/hf_config.h"
#include "model/models/causal_lm.h"
#include "model/models/registry.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "tests/model/golden.h"
#include "tests/model/safetensors_writer.h"

using namespace vela;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("vela-model-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() { static int n = 0; return n; }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// A copy of qwen2-tiny's config.json and safetensors (possibly modified) in a temp dir.
std::string copy_model(const TempDir& dir, const std::string& model = "qwen2-tiny") {
  fs::copy_file(testing::model_dir(model) + "/config.json", dir.file("config.json"));
  return testing::read_file(testing::model_dir(model) + "/model.safetensors");
}

Error load_error(const std::string& dir) {
  VELA_TRY_ASSIGN(const HFConfig config, load_hf_config(dir));
  VELA_TRY_ASSIGN(auto model, create_model(config, ParallelInfo{}, nullptr, DeviceContext::cpu()));
  VELA_TRY_ASSIGN(auto weights, open_safetensors_weights(dir));
  VELA_TRY(model->load_weights(*weights));
  return make_error("none", "loaded fine");
}

std::vector<float> ones(size_t n) { return std::vector<float>(n, 1.0f); }

}  // namespace

TEST_CASE("a truncated safetensors file names the file and the tensor cut off", "[load]") {
  TempDir dir;
  std::string bytes = copy_model(dir);
  testing::write_file(dir.file("model.safetensors"), bytes.substr(0, bytes.size() / 2));
  Error e = load_error(dir.path.string());
  CHECK(e.code == "truncated");
  CHECK_THAT(e.message, Contains(dir.file("model.safetensors")) && Contains("tensor 'model."));

  testing::write_file(dir.file("model.safetensors"), bytes.substr(0, 5));
  e = load_error(dir.path.string());
  CHECK(e.code == "truncated");
  CHECK_THAT(e.message, Contains(dir.file("model.safetensors")));
}

TEST_CASE("a header that is not JSON is a bad header naming the file", "[load]") {
  TempDir dir;
  copy_model(dir);
  std::string header = "{\"model.embed_tokens.weight\": {\"dtype\": ";
  uint64_t len = header.size();
  testing::write_file(dir.file("model.safetensors"), std::string(reinterpret_cast<char*>(&len), 8) + header);
  Error e = load_error(dir.path.string());
  CHECK(e.code == "bad_header");
  CHECK_THAT(e.message, Contains(dir.file("model.safetensors")) && Contains("JSON"));
}

TEST_CASE("header offsets that disagree with shape and dtype name the tensor", "[load]") {
  TempDir dir;
  std::string bytes = testing::raw_safetensors({{"w", "F32", {2, 2}, ones(4)}});
  // Claim 3x2 for 4 floats.
  auto pos = bytes.find("[2,2]");
  REQUIRE(pos != std::string::npos);
  bytes.replace(pos, 5, "[3,2]");
  testing::write_file(dir.file("x.safetensors"), bytes);
  auto f = SafetensorsFile::open(dir.file("x.safetensors"));
  REQUIRE(!f.ok());
  CHECK(f.error().code == "bad_header");
  CHECK_THAT(f.error().message, Contains("x.safetensors") && Contains("tensor 'w'"));
}

TEST_CASE("a missing tensor names the file and the tensor", "[load]") {
  TempDir dir;
  copy_model(dir);
  // Only the embedding: the first layer's norm is the first thing missing.
  testing::write_file(dir.file("model.safetensors"),
                      testing::raw_safetensors({{"model.embed_tokens.weight", "BF16", {151936, 32}, std::vector<float>(151936 * 32, 0.01f)}}));
  Error e = load_error(dir.path.string());
  CHECK(e.code == "missing_tensor");
  CHECK_THAT(e.message, Contains(dir.file("model.safetensors")) && Contains("model.layers.0.input_layernorm.weight"));
}

TEST_CASE("a wrong shape names the file, the tensor and both shapes", "[load]") {
  TempDir dir;
  copy_model(dir);
  testing::write_file(dir.file("model.safetensors"),
                      testing::raw_safetensors({{"model.embed_tokens.weight", "BF16", {1000, 32}, std::vector<float>(1000 * 32, 0.0f)}}));
  Error e = load_error(dir.path.string());
  CHECK(e.code == "bad_shape");
  CHECK_THAT(e.message, Contains(dir.file("model.safetensors")) && Contains("model.embed_tokens.weight") &&
                            Contains("[1000, 32]") && Contains("[151936, 32]"));
}

TEST_CASE("unknown and unsupported dtypes name the file and the tensor", "[load]") {
  TempDir dir;
  copy_model(dir);
  std::string bytes = testing::raw_safetensors({{"model.embed_tokens.weight", "F32", {151936, 32}, std::vector<float>(151936 * 32, 0.0f)}});
  std::string unknown = bytes;
  unknown.replace(unknown.find("\"F32\""), 5, "\"Q32\"");
  testing::write_file(dir.file("model.safetensors"), unknown);
  Error e = load_error(dir.path.string());
  CHECK(e.code == "bad_dtype");
  CHECK_THAT(e.message, Contains(dir.file("model.safetensors")) && Contains("model.embed_tokens.weight") && Contains("Q32"));

  std::string unsupported = bytes;
  unsupported.replace(unsupported.find("\"F32\""), 5, "\"I32\"");
  testing::write_file(dir.file("model.safetensors"), unsupported);
  e = load_error(dir.path.string());
  CHECK(e.code == "bad_dtype");
  CHECK_THAT(e.message, Contains(dir.file("model.safetensors")) && Contains("model.embed_tokens.weight") && Contains("I32"));
}

TEST_CASE("an unknown architecture is unsupported, naming config.json and the architecture", "[load]") {
  TempDir dir;
  auto j = nlohmann::json::parse(testing::read_file(testing::model_dir("qwen2-tiny") + "/config.json"));
  j["architectures"] = {"GPT2LMHeadModel"};
  testing::write_file(dir.file("config.json"), j.dump());
  Error e = load_error(dir.path.string());
  CHECK(e.code == "unsupported");
  CHECK_THAT(e.message, Contains(dir.file("config.json")) && Contains("GPT2LMHeadModel") && Contains("Qwen3ForCausalLM"));
}

TEST_CASE("sharded checkpoints load through model.safetensors.index.json", "[load]") {
  TempDir dir;
  copy_model(dir);
  auto whole = SafetensorsFile::open(testing::model_dir("qwen2-tiny") + "/model.safetensors");
  REQUIRE(whole.ok());
  // Two shards, alternating tensors; values copied through fp32 (exact for bf16).
  std::vector<testing::TensorSpec> shards[2];
  nlohmann::json weight_map = nlohmann::json::object();
  int i = 0;
  for (const auto& [name, entry] : whole.value()->entries()) {
    int64_t n = 1;
    for (int64_t d : entry.shape) n *= d;
    std::vector<float> values(static_cast<size_t>(n));
    convert_to_f32(entry.data, *dtype_from_safetensors(entry.dtype_name), values.size(), values.data());
    shards[i % 2].push_back({name, "BF16", entry.shape, std::move(values)});
    weight_map[name] = "model-0000" + std::to_string(i % 2 + 1) + "-of-00002.safetensors";
    ++i;
  }
  testing::write_file(dir.file("model-00001-of-00002.safetensors"), testing::raw_safetensors(shards[0]));
  testing::write_file(dir.file("model-00002-of-00002.safetensors"), testing::raw_safetensors(shards[1]));
  testing::write_file(dir.file("model.safetensors.index.json"), nlohmann::json{{"weight_map", weight_map}}.dump());
  CHECK(load_error(dir.path.string()).code == "none");

  // An index naming a tensor its shard lacks.
  weight_map["model.extra.weight"] = "model-00001-of-00002.safetensors";
  testing::write_file(dir.file("model.safetensors.index.json"), nlohmann::json{{"weight_map", weight_map}}.dump());
  Error e = load_error(dir.path.string());
  CHECK(e.code == "missing_tensor");
  CHECK_THAT(e.message, Contains("model-00001-of-00002.safetensors") && Contains("model.extra.weight"));
}

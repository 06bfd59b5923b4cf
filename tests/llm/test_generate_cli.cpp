// `vela generate` as a user runs it: a real process, its JSON output checked.
#include <catch2/catch.hpp>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "tests/model/golden.h"

namespace {
std::pair<int, std::string> run(const std::string& args) {
  std::string cmd = std::string(VELA_BIN_DIR) + "/vela " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = pclose(p);
  return {WEXITSTATUS(status), out};
}
}  // namespace

TEST_CASE("vela generate --json reproduces the golden tokens of qwen3-tiny") {
  auto cases = vela::testing::load_golden("qwen3-tiny");
  const auto& c = cases[2];
  std::string ids;
  for (int32_t t : c.prompt) ids += (ids.empty() ? "" : ",") + std::to_string(t);
  auto [rc, out] = run("generate --model " + vela::testing::model_dir("qwen3-tiny") + " --prompt-ids " + ids +
                       " --max-tokens 24 --ignore-eos --json --set cache.cpu_kv_cache_gib=0.05");
  INFO(out);
  REQUIRE(rc == 0);
  auto j = nlohmann::json::parse(out.substr(out.find('{')));
  CHECK(j["request_id"] == "gen-0");
  CHECK(j["prompt_token_ids"].get<std::vector<int32_t>>() == c.prompt);
  auto got = j["token_ids"].get<std::vector<int32_t>>();
  REQUIRE(got.size() == 24);
  const size_t n = c.num_reliable_tokens();
  CHECK(std::vector<int32_t>(got.begin(), got.begin() + n) == std::vector<int32_t>(c.generated.begin(), c.generated.begin() + n));
  CHECK(j["finish_reason"] == "length");
  CHECK(j["text"].is_string());
}

TEST_CASE("vela generate with text runs the tokenizer both ways") {
  auto [rc, out] = run("generate --model " + vela::testing::model_dir("qwen3-tiny") +
                       " --prompt 'Hello there' --max-tokens 5 --ignore-eos --json --set cache.cpu_kv_cache_gib=0.05");
  INFO(out);
  REQUIRE(rc == 0);
  auto j = nlohmann::json::parse(out.substr(out.find('{')));
  CHECK(j["prompt_token_ids"].get<std::vector<int32_t>>() == std::vector<int32_t>{9707, 1052});
  CHECK(j["token_ids"].size() == 5);
}

TEST_CASE("vela generate refuses bad input with a clear message") {
  auto [rc, out] = run("generate --model /nonexistent --prompt-ids 1,2");
  CHECK(rc != 0);
  CHECK(out.find("model.path") != std::string::npos);
  auto [rc2, out2] = run("generate --model " + vela::testing::model_dir("qwen3-tiny") + " --prompt-ids 1,x");
  CHECK(rc2 != 0);
  CHECK(out2.find("'x' is not a token id") != std::string::npos);
  auto [rc3, out3] = run("generate --model " + vela::testing::model_dir("qwen3-tiny") +
                         " --prompt-ids 999999999 --set cache.cpu_kv_cache_gib=0.05");
  CHECK(out3.find("rejected") != std::string::npos);
}

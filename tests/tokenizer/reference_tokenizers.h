#pragma once
// The reference tokenizers, loaded once per test process (each takes ~0.3 s).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "tokenizer/tokenizer.h"

namespace vela::testing {

inline std::string reference_path(const std::string& relative) {
  return std::string(VELA_REFERENCE_DIR) + "/" + relative;
}

// family: "qwen3" or "llama3" (shared/reference/tokenizers/<family>/tokenizer.json).
inline const Tokenizer& reference_tokenizer(const std::string& family) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  auto& slot = loaded[family];
  if (!slot) {
    auto tok = Tokenizer::from_file(reference_path("tokenizers/" + family + "/tokenizer.json"));
    if (!tok) FAIL("loading " << family << ": " << tok.error().message);
    slot = std::move(tok.value());
  }
  return *slot;
}

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

inline const nlohmann::json& golden_tokenizers() {
  static const nlohmann::json golden = read_json(reference_path("golden/tokenizers.json"));
  return golden;
}

}  // namespace vela::testing

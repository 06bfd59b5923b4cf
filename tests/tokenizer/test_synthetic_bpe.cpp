// BPE semantics and loader checks on a tiny tokenizer.json built here: every byte
// is a token (ids 0-255 in byte order), a few merges on top.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

using namespace vela;
using json = nlohmann::json;

namespace {

std::string byte_token(char c) { return byte_level::encode_bytes(std::string(1, c)); }

json tiny_tokenizer() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_token(static_cast<char>(b))] = b;
  vocab["bc"] = 256;
  vocab["ab"] = 257;
  vocab["abc"] = 258;
  vocab["aa"] = 259;
  vocab["aaaa"] = 260;
  vocab["ac"] = 261;  // in the vocab, but no merge builds it
  json merges = json::array({"b c", "a b", json::array({"a", "bc"}), "a a", "aa aa"});
  return json{
      {"version", "1.0"},
      {"added_tokens", json::array({json{{"id", 300}, {"content", "<s>"}, {"special", true}},
                                    json{{"id", 301}, {"content", "</s>"}, {"special", true}},
                                    json{{"id", 302}, {"content", "<s>long"}, {"special", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       json{{"type", "Split"}, {"pattern", {{"Regex", R"( ?\p{L}+|\s+|\p{N})"}}}, {"behavior", "Isolated"}, {"invert", false}}},
      {"post_processor", json{{"type", "TemplateProcessing"},
                              {"single", json::array({json{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                      json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                                      json{{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}})},
                              {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {300}}}}, {"</s>", {{"id", "</s>"}, {"ids", {301}}}}}}}},
      {"decoder", json{{"type", "ByteLevel"}}},
      {"model", json{{"type", "BPE"}, {"dropout", nullptr}, {"vocab", vocab}, {"merges", merges}, {"ignore_merges", false}}}};
}

std::unique_ptr<Tokenizer> load(const json& j, const std::string& config = "") {
  auto tok = Tokenizer::from_json(j.dump(), config, "tiny");
  if (!tok) FAIL(tok.error().message);
  return std::move(tok.value());
}

std::string load_error(const json& j) {
  auto tok = Tokenizer::from_json(j.dump(), "", "tiny");
  REQUIRE_FALSE(tok.ok());
  return tok.error().message;
}

}  // namespace

TEST_CASE("merges apply lowest rank first, leftmost on ties") {
  auto tok = load(tiny_tokenizer());
  CHECK(tok->encode("abc") == std::vector<int32_t>{258});      // (b,c) before (a,b), then (a,bc)
  CHECK(tok->encode("ab") == std::vector<int32_t>{257});
  CHECK(tok->encode("aaa") == std::vector<int32_t>{259, 'a'});  // leftmost pair first
  CHECK(tok->encode("aaaa") == std::vector<int32_t>{260});      // aa aa -> aaaa
  CHECK(tok->encode("aaaaa") == std::vector<int32_t>{260, 'a'});
  CHECK(tok->encode("ac") == std::vector<int32_t>{'a', 'c'});   // no merge builds "ac"
  CHECK(tok->encode("x abc") == std::vector<int32_t>{'x', ' ', 258});  // pre-tokens " abc" = Ġ + abc
  CHECK(tok->decode(tok->encode("x abc aaaaa")) == "x abc aaaaa");
  CHECK(tok->vocab_size() == 303);
}

TEST_CASE("ignore_merges takes a pre-token that is in the vocab as one token") {
  json j = tiny_tokenizer();
  j["model"]["ignore_merges"] = true;
  auto tok = load(j);
  CHECK(tok->encode("ac") == std::vector<int32_t>{261});
  CHECK(tok->encode("abc") == std::vector<int32_t>{258});
  CHECK(tok->encode("aaa") == std::vector<int32_t>{259, 'a'});  // not in the vocab: merges as usual
}

TEST_CASE("added tokens: leftmost-longest; TemplateProcessing adds its special tokens") {
  auto tok = load(tiny_tokenizer());
  CHECK(tok->encode("<s>longab") == std::vector<int32_t>{302, 257});  // longest at the same start
  CHECK(tok->encode("a<s>b") == std::vector<int32_t>{'a', 300, 'b'});
  CHECK(tok->encode("ab", /*add_special_tokens=*/true) == std::vector<int32_t>{300, 257, 301});
  CHECK(tok->decode({300, 257, 301, 302}, /*skip_special_tokens=*/true) == "ab<s>long");
}

TEST_CASE("ByteLevel pre-tokenizer with use_regex and add_prefix_space") {
  json j = tiny_tokenizer();
  j["pre_tokenizer"] = json{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  auto tok = load(j);
  REQUIRE(tok->pre_tokenizer() != nullptr);
  CHECK(tok->encode("abc") == std::vector<int32_t>{' ', 258});
  CHECK(tok->encode(" abc") == std::vector<int32_t>{' ', 258});
}

TEST_CASE("without tokenizer_config.json: no eos, chat family from special tokens") {
  auto tok = load(tiny_tokenizer());
  CHECK_FALSE(tok->eos_token_id().has_value());
  CHECK(tok->chat_template() == nullptr);
  CHECK(tok->chat_template_error().find("tiny") != std::string::npos);
  CHECK_FALSE(tok->apply_chat_template({{"user", "hi", std::nullopt}}).ok());

  json j = tiny_tokenizer();
  j["added_tokens"].push_back(json{{"id", 303}, {"content", "<|im_start|>"}, {"special", true}});
  auto with_config = load(j, R"({"eos_token": {"content": "</s>"}, "bos_token": "<s>"})");
  CHECK(with_config->eos_token_id() == 301);
  CHECK(with_config->bos_token_id() == 300);
  REQUIRE(with_config->chat_template() != nullptr);
  CHECK(with_config->chat_template()->family() == ChatFamily::kChatML);
}

TEST_CASE("what the tokenizer does not implement fails at load, naming it") {
  json j = tiny_tokenizer();
  j["model"]["type"] = "WordPiece";
  CHECK(load_error(j).find("model.type") != std::string::npos);

  j = tiny_tokenizer();
  j["added_tokens"][0]["lstrip"] = true;
  CHECK(load_error(j).find("'<s>' sets lstrip") != std::string::npos);

  j = tiny_tokenizer();
  j["model"]["merges"].push_back("a zz");
  CHECK(load_error(j).find("merge #5 'a zz'") != std::string::npos);

  j = tiny_tokenizer();
  j["normalizer"] = json{{"type", "Lowercase"}};
  CHECK(load_error(j).find("Lowercase") != std::string::npos);

  j = tiny_tokenizer();
  j["pre_tokenizer"]["pattern"]["Regex"] = "(unclosed";
  CHECK(load_error(j).find("does not compile") != std::string::npos);

  j = tiny_tokenizer();
  j["model"]["vocab"].erase(byte_token('\n'));
  CHECK(load_error(j).find("byte 10") != std::string::npos);

  auto not_json = Tokenizer::from_json("{not json", "", "broken.json");
  REQUIRE_FALSE(not_json.ok());
  CHECK(not_json.error().message.find("broken.json") != std::string::npos);
  auto missing = Tokenizer::from_file("/nonexistent/tokenizer.json");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("/nonexistent/tokenizer.json") != std::string::npos);
}

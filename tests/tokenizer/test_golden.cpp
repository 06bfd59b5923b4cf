// Every case of golden/tokenizers.json (HF tokenizers' own output) encodes to its
// ids and decodes to its text, for Qwen3 and Llama 3.
#include <thread>

#include "reference_tokenizers.h"

using namespace vela;
using vela::testing::golden_tokenizers;
using vela::testing::reference_tokenizer;

namespace {

void check_golden_cases(const Tokenizer& tok, const nlohmann::json& cases) {
  REQUIRE(cases.size() >= 10);
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const std::vector<int32_t> ids = c["ids"];
    INFO("text: '" << text << "'");
    CHECK(tok.encode(text) == ids);
    CHECK(tok.decode(ids) == c["decoded"].get<std::string>());
  }
}

}  // namespace

TEST_CASE("qwen3 golden cases encode to HF's ids and decode to HF's text") {
  check_golden_cases(reference_tokenizer("qwen3"), golden_tokenizers()["qwen3"]["cases"]);
}

TEST_CASE("llama3 golden cases encode to HF's ids and decode to HF's text") {
  check_golden_cases(reference_tokenizer("llama3"), golden_tokenizers()["llama3"]["cases"]);
}

TEST_CASE("the demo's Qwen3 tokenizer (npm copy) passes the qwen3 golden cases") {
  std::string path = std::string(VELA_SOURCE_DIR) + "/third_party/tokenizers/qwen3/tokenizer.json";
  if (!std::filesystem::exists(path)) {
    WARN("no " << path << " (scripts/fetch_tokenizer.sh fetches it); nothing to check");
    return;
  }
  auto tok = Tokenizer::from_file(path);
  REQUIRE(tok.ok());
  check_golden_cases(*tok.value(), golden_tokenizers()["qwen3"]["cases"]);
  CHECK(tok.value()->eos_token_id() == 151645);
}

TEST_CASE("vocab sizes, special ids and eos/bos from tokenizer_config.json") {
  const Tokenizer& qwen = reference_tokenizer("qwen3");
  CHECK(qwen.vocab_size() == 151669);  // 151643 BPE tokens + 26 added tokens
  CHECK(qwen.eos_token_id() == qwen.token_to_id("<|im_end|>"));
  CHECK(qwen.eos_token_id() == 151645);
  CHECK_FALSE(qwen.bos_token_id().has_value());  // bos_token is null
  CHECK(qwen.token_to_id("<|im_start|>") == 151644);
  CHECK(qwen.token_to_id("Ġworld") == 1879);
  CHECK(qwen.id_to_token(1879) == std::string_view("Ġworld"));
  CHECK(qwen.token_bytes(1879) == " world");
  CHECK_FALSE(qwen.token_to_id("no such token").has_value());
  CHECK(qwen.is_special(151645));
  CHECK_FALSE(qwen.is_special(*qwen.token_to_id("<think>")));  // an added but not special token

  const Tokenizer& llama = reference_tokenizer("llama3");
  CHECK(llama.vocab_size() == 128256);
  CHECK(llama.eos_token_id() == 128001);  // <|end_of_text|>
  CHECK(llama.bos_token_id() == 128000);
  CHECK(llama.token_to_id("<|eot_id|>") == 128009);
}

TEST_CASE("special tokens: matched in text, skipped on request, unknown ids ignored") {
  const Tokenizer& qwen = reference_tokenizer("qwen3");
  auto ids = qwen.encode("<|im_start|>user\n<think>x</think><|im_end|>");
  REQUIRE(ids.size() >= 6);
  CHECK(ids.front() == 151644);
  CHECK(ids.back() == 151645);
  CHECK(qwen.decode(ids) == "<|im_start|>user\n<think>x</think><|im_end|>");
  // Special tokens go; <think> is an added token without the special flag and stays.
  CHECK(qwen.decode(ids, /*skip_special_tokens=*/true) == "user\n<think>x</think>");
  // Ids past the tokenizer (a model's padded embedding rows) decode to nothing.
  CHECK(qwen.decode({9707, 151900, -1, 1879}) == "Hello world");
  // A special token's text split over an added-token boundary is not that token.
  CHECK(qwen.encode("<|im_start").size() > 1);

  const Tokenizer& llama = reference_tokenizer("llama3");
  auto llama_ids = llama.encode("<|begin_of_text|>hi<|eot_id|>");
  CHECK(llama_ids.front() == 128000);
  CHECK(llama_ids.back() == 128009);
  CHECK(llama.decode(llama_ids, true) == "hi");
}

TEST_CASE("add_special_tokens adds what the post-processor adds (ByteLevel: nothing)") {
  for (const char* family : {"qwen3", "llama3"}) {
    const Tokenizer& tok = reference_tokenizer(family);
    CHECK(tok.encode("Hello world", true) == tok.encode("Hello world", false));
  }
}

TEST_CASE("NFC: Qwen3 normalizes decomposed text, Llama 3 has no normalizer") {
  const std::string composed = "caf\xC3\xA9 na\xC3\xAFve";       // é, ï precomposed
  const std::string decomposed = "cafe\xCC\x81 nai\xCC\x88ve";  // e + U+0301, i + U+0308
  const Tokenizer& qwen = reference_tokenizer("qwen3");
  CHECK(qwen.encode(decomposed) == qwen.encode(composed));
  CHECK(qwen.decode(qwen.encode(decomposed)) == composed);
  const Tokenizer& llama = reference_tokenizer("llama3");
  CHECK(llama.encode(decomposed) != llama.encode(composed));
  CHECK(llama.decode(llama.encode(decomposed)) == decomposed);
}

TEST_CASE("invalid UTF-8 input is encoded as U+FFFD") {
  const Tokenizer& qwen = reference_tokenizer("qwen3");
  CHECK(qwen.encode("a\xFF" "b") == qwen.encode("a\xEF\xBF\xBD" "b"));
  CHECK(qwen.decode(qwen.encode("a\xF0\x9F" "b")) == "a\xEF\xBF\xBD" "b");
}

TEST_CASE("round trip of longer mixed text, and concurrent encodes agree") {
  std::string text;
  for (const auto& c : golden_tokenizers()["qwen3"]["cases"]) text += c["text"].get<std::string>() + "\n";
  for (int i = 0; i < 3; ++i) text += text;
  for (const char* family : {"qwen3", "llama3"}) {
    const Tokenizer& tok = reference_tokenizer(family);
    std::vector<int32_t> expected = tok.encode(text);
    CHECK(tok.decode(expected) == text);
    std::vector<std::vector<int32_t>> results(4);
    std::vector<std::thread> threads;
    for (auto& r : results) threads.emplace_back([&] { r = tok.encode(text); });
    for (auto& t : threads) t.join();
    for (const auto& r : results) CHECK(r == expected);
  }
}

// Streaming detokenization: token by token, every chunk is valid UTF-8 and the
// chunks concatenate to the full decode.
#include "reference_tokenizers.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/incremental_detokenizer.h"
#include "common/utf8.h"

using namespace vela;
using vela::testing::golden_tokenizers;
using vela::testing::reference_tokenizer;

namespace {

// Id of the one-byte token for `byte`.
int32_t byte_token(const Tokenizer& tok, uint8_t byte) {
  auto id = tok.token_to_id(byte_level::encode_bytes(std::string(1, static_cast<char>(byte))));
  REQUIRE(id.has_value());
  return *id;
}

}  // namespace

TEST_CASE("golden cases streamed token by token concatenate to the full decode") {
  int num_held_back = 0;  // pushes that ended inside a character; the test needs some
  for (const char* family : {"qwen3", "llama3"}) {
    const Tokenizer& tok = reference_tokenizer(family);
    for (const auto& c : golden_tokenizers()[family]["cases"]) {
      const std::vector<int32_t> ids = c["ids"];
      INFO(family << " text: '" << c["text"].get<std::string>() << "'");
      IncrementalDetokenizer detok(tok);
      std::string streamed;
      for (int32_t id : ids) {
        std::string chunk = detok.push(id);
        CHECK(utf8::is_valid(chunk));
        if (detok.num_pending_bytes() > 0) ++num_held_back;
        streamed += chunk;
      }
      streamed += detok.finalize();
      CHECK(streamed == tok.decode(ids));
      CHECK(streamed == c["decoded"].get<std::string>());
    }
  }
  // Llama 3 splits the emoji and some CJK characters across byte tokens.
  CHECK(num_held_back > 0);
}

TEST_CASE("a character split over byte tokens comes out once complete") {
  const Tokenizer& tok = reference_tokenizer("llama3");
  IncrementalDetokenizer detok(tok);
  // U+1F600 = F0 9F 98 80, pushed one byte token at a time.
  CHECK(detok.push(byte_token(tok, 0xF0)).empty());
  CHECK(detok.num_pending_bytes() == 1);
  CHECK(detok.push(byte_token(tok, 0x9F)).empty());
  CHECK(detok.push(byte_token(tok, 0x98)).empty());
  CHECK(detok.push(byte_token(tok, 0x80)) == "\xF0\x9F\x98\x80");
  CHECK(detok.num_pending_bytes() == 0);
  CHECK(detok.push(*tok.token_to_id("Ġok")) == " ok");
  CHECK(detok.finalize().empty());
}

TEST_CASE("broken sequences: U+FFFD as soon as they cannot complete, and at finalize") {
  const Tokenizer& tok = reference_tokenizer("qwen3");
  IncrementalDetokenizer detok(tok);
  CHECK(detok.push(byte_token(tok, 0xE4)).empty());  // lead of a 3-byte character
  // 'a' cannot continue it: the lead becomes U+FFFD, 'a' follows.
  CHECK(detok.push(*tok.token_to_id("a")) == "\xEF\xBF\xBD" "a");
  CHECK(detok.push(byte_token(tok, 0xFF)) == "\xEF\xBF\xBD");  // never valid in UTF-8
  CHECK(detok.push(byte_token(tok, 0xF0)).empty());
  CHECK(detok.push(byte_token(tok, 0x9F)).empty());
  CHECK(detok.finalize() == "\xEF\xBF\xBD");  // truncated tail: one replacement char
  CHECK(detok.num_pending_bytes() == 0);
  // The same ids decoded at once give the same text.
  std::vector<int32_t> ids = {byte_token(tok, 0xE4), *tok.token_to_id("a"), byte_token(tok, 0xFF),
                              byte_token(tok, 0xF0), byte_token(tok, 0x9F)};
  CHECK(tok.decode(ids) == "\xEF\xBF\xBD" "a\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST_CASE("skip_special_tokens in streaming matches decode") {
  const Tokenizer& tok = reference_tokenizer("qwen3");
  auto ids = tok.encode("<|im_start|>assistant\n<think>\n\n</think>\n\n你好 😀<|im_end|>");
  for (bool skip : {false, true}) {
    IncrementalDetokenizer detok(tok, skip);
    std::string streamed;
    for (int32_t id : ids) detok.push(id, streamed);
    streamed += detok.finalize();
    CHECK(streamed == tok.decode(ids, skip));
  }
}

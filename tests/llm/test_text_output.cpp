#include <catch2/catch.hpp>

#include "llm/text_output.h"
#include "tokenizer/tokenizer.h"

using namespace vela;

namespace {
const Tokenizer& qwen3() {
  static auto tok = Tokenizer::from_file(std::string(VELA_REFERENCE_DIR) + "/tokenizers/qwen3/tokenizer.json");
  REQUIRE(tok.ok());
  return **tok;
}
}  // namespace

TEST_CASE("a stop string split across tokens ends the text right before it") {
  const auto& tok = qwen3();
  auto ids = tok.encode("Hello world, the END is near");
  TextOutput out(&tok, {"END"});
  std::optional<std::string> stop;
  std::string streamed;
  for (int32_t id : ids) {
    stop = out.append({id});
    streamed += out.take_streamable();
    if (stop) break;
  }
  REQUIRE(stop);
  CHECK(*stop == "END");
  CHECK(out.text() == "Hello world, the ");
  streamed += out.take_rest();
  CHECK(streamed == "Hello world, the ");
  CHECK(out.append({ids[0]}) == std::nullopt);  // nothing after a stop
}

TEST_CASE("streamed text is held back while it could start a stop string, never splitting UTF-8") {
  const auto& tok = qwen3();
  const std::string text = "naïve café ☕ and more text";
  auto ids = tok.encode(text);
  TextOutput out(&tok, {"STOPPING"});
  std::string streamed;
  for (int32_t id : ids) {
    CHECK_FALSE(out.append({id}));
    std::string chunk = out.take_streamable();
    // Every chunk ends on a UTF-8 boundary: the next byte is not a continuation byte.
    if (!chunk.empty()) CHECK((static_cast<unsigned char>(out.text()[streamed.size() + chunk.size()]) & 0xC0) != 0x80);
    streamed += chunk;
    CHECK(out.text().size() - streamed.size() <= 7 + 3);
  }
  streamed += out.take_rest();
  CHECK(streamed == text);
}

TEST_CASE("without a tokenizer only token ids are kept") {
  TextOutput out(nullptr, {"x"});
  CHECK_FALSE(out.append({1, 2, 3}));
  CHECK(out.token_ids() == std::vector<int32_t>{1, 2, 3});
  CHECK(out.text().empty());
  CHECK(out.take_rest().empty());
}

// The Split regex pre-tokenizer on Qwen3's and Llama 3's patterns.
#include "reference_tokenizers.h"

using namespace vela;
using vela::testing::reference_tokenizer;

namespace {

std::vector<std::string> pieces(const PreTokenizer& pre, std::string_view text) {
  std::vector<Span> spans;
  pre.split(text, spans);
  std::vector<std::string> out;
  for (const Span& s : spans) out.emplace_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

using Pieces = std::vector<std::string>;

}  // namespace

TEST_CASE("Qwen3's regex: contractions, single digits, trailing whitespace rule") {
  const PreTokenizer* pre = reference_tokenizer("qwen3").pre_tokenizer();
  REQUIRE(pre != nullptr);
  CHECK(pieces(*pre, "I'm THEY'RE") == Pieces{"I", "'m", " THEY", "'RE"});  // (?i:...) contractions
  CHECK(pieces(*pre, "x 123") == Pieces{"x", " ", "1", "2", "3"});
  // \s+(?!\S): a run of spaces leaves its last space to the next word.
  CHECK(pieces(*pre, "a   b") == Pieces{"a", "  ", " b"});
  CHECK(pieces(*pre, "a\n\n b") == Pieces{"a", "\n\n", " b"});
  CHECK(pieces(*pre, "end  ") == Pieces{"end", "  "});
  CHECK(pieces(*pre, "").empty());
}

TEST_CASE("\\s and \\p{L} are Unicode-aware (PCRE2 UCP)") {
  const PreTokenizer* pre = reference_tokenizer("qwen3").pre_tokenizer();
  // U+3000 IDEOGRAPHIC SPACE is whitespace: the first one stays alone, the second
  // joins the word as its one leading non-letter. Without UCP both would be
  // taken as punctuation by [^\s\p{L}\p{N}]+.
  CHECK(pieces(*pre, "a\xE3\x80\x80\xE3\x80\x80" "b") ==
        Pieces{"a", "\xE3\x80\x80", "\xE3\x80\x80" "b"});
  CHECK(pieces(*pre, "na\xC3\xAFve caf\xC3\xA9") == Pieces{"na\xC3\xAFve", " caf\xC3\xA9"});
}

TEST_CASE("Llama 3's regex groups digits by three") {
  const PreTokenizer* pre = reference_tokenizer("llama3").pre_tokenizer();
  REQUIRE(pre != nullptr);
  CHECK(pieces(*pre, "1234567") == Pieces{"123", "456", "7"});
}

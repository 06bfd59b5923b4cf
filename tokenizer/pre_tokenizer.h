#pragma once
// Pre-tokenizer: splits normalized text into pre-tokens with the Split regex from
// tokenizer.json ("Isolated" behaviour: every match is a pre-token and so is every
// gap between matches). The pattern is compiled once with PCRE2 (UTF + UCP, so
// \p{L}, \p{N} and \s are Unicode-aware; JIT when the platform has it) and shared
// by all threads; each call gets its own match data.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace vela {

// [begin, end) byte offsets of one pre-token in the text that was split.
struct Span {
  uint32_t begin;
  uint32_t end;
};

class PreTokenizer {
 public:
  // The regex GPT-2's ByteLevel pre-tokenizer uses when its use_regex is true.
  static constexpr std::string_view kGpt2Pattern =
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

  static Result<PreTokenizer> compile(std::string_view pattern);

  // Replaces `spans` with the pre-tokens of `text`, which must be valid UTF-8
  // (the caller checks once; PCRE2 is told not to check again).
  void split(std::string_view text, std::vector<Span>& spans) const;

  bool jit_enabled() const { return jit_; }
  const std::string& pattern() const { return pattern_; }

 private:
  struct CodeDeleter {
    void operator()(void* code) const;
  };
  std::shared_ptr<void> code_;  // pcre2_code_8*, kept opaque so pcre2.h stays out of headers
  std::string pattern_;
  bool jit_ = false;
};

}  // namespace vela

#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/pre_tokenizer.h"

#include <pcre2.h>

namespace vela {

void PreTokenizer::CodeDeleter::operator()(void* code) const {
  pcre2_code_free(static_cast<pcre2_code*>(code));
}

Result<PreTokenizer> PreTokenizer::compile(std::string_view pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    return make_error("bad_regex", "pre-tokenizer regex '" + std::string(pattern) + "' does not compile at offset " +
                                       std::to_string(error_offset) + ": " +
                                       reinterpret_cast<const char*>(message));
  }
  PreTokenizer pre;
  pre.code_ = std::shared_ptr<void>(code, CodeDeleter{});
  pre.pattern_ = std::string(pattern);
  // JIT is an optimisation only: without it pcre2_match interprets the same pattern.
  pre.jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return pre;
}

void PreTokenizer::split(std::string_view text, std::vector<Span>& spans) const {
  spans.clear();
  if (text.empty()) return;
  auto* code = static_cast<pcre2_code*>(code_.get());
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      pcre2_match_data_create_from_pattern(code, nullptr), &pcre2_match_data_free);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t n = text.size();
  size_t pos = 0;       // where the next search starts
  size_t emitted = 0;   // end of the last span pushed
  while (pos < n) {
    int rc = jit_ ? pcre2_jit_match(code, subject, n, pos, PCRE2_NO_UTF_CHECK, match.get(), nullptr)
                  : pcre2_match(code, subject, n, pos, PCRE2_NO_UTF_CHECK, match.get(), nullptr);
    if (rc < 0) break;  // PCRE2_ERROR_NOMATCH (or a resource limit): the rest is one gap
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
    size_t begin = ovector[0], end = ovector[1];
    if (end == begin) {
      // An empty match carries no text; step past one whole character.
      pos = end + 1;
      while (pos < n && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) ++pos;
      continue;
    }
    if (begin > emitted) spans.push_back(Span{uint32_t(emitted), uint32_t(begin)});
    spans.push_back(Span{uint32_t(begin), uint32_t(end)});
    emitted = pos = end;
  }
  if (emitted < n) spans.push_back(Span{uint32_t(emitted), uint32_t(n)});
}

}  // namespace vela

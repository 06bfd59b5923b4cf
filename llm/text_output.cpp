#include "llm/text_output.h"

#include <algorithm>

namespace vela {

TextOutput::TextOutput(const Tokenizer* tokenizer, std::vector<std::string> stop_strings, bool skip_special_tokens)
    : stop_strings_(std::move(stop_strings)) {
  if (tokenizer) detokenizer_.emplace(*tokenizer, skip_special_tokens);
  stop_strings_.erase(std::remove(stop_strings_.begin(), stop_strings_.end(), std::string()), stop_strings_.end());
  for (const auto& s : stop_strings_) max_stop_bytes_ = std::max(max_stop_bytes_, s.size());
}

std::optional<std::string> TextOutput::append(const std::vector<int32_t>& token_ids) {
  if (stopped_) return std::nullopt;
  token_ids_.insert(token_ids_.end(), token_ids.begin(), token_ids.end());
  if (!detokenizer_) return std::nullopt;
  for (int32_t t : token_ids) detokenizer_->push(t, text_);
  if (stop_strings_.empty()) return std::nullopt;
  // Only text after searched_bytes_ (which already excludes a partial match's
  // length of overlap) can hold the start of a new match.
  size_t best = std::string::npos;
  const std::string* matched = nullptr;
  for (const auto& s : stop_strings_) {
    size_t pos = text_.find(s, searched_bytes_);
    if (pos < best) {
      best = pos;
      matched = &s;
    }
  }
  if (matched) {
    text_.resize(best);
    stopped_ = true;
    return *matched;
  }
  searched_bytes_ = text_.size() > max_stop_bytes_ ? text_.size() - max_stop_bytes_ + 1 : 0;
  return std::nullopt;
}

std::string TextOutput::take_streamable() {
  // A stop string of n bytes can begin in the last n - 1 bytes: hold those back.
  const size_t hold = stopped_ || max_stop_bytes_ == 0 ? 0 : max_stop_bytes_ - 1;
  size_t ready = text_.size() > hold ? text_.size() - hold : 0;
  while (ready > taken_bytes_ && ready < text_.size() && (static_cast<unsigned char>(text_[ready]) & 0xC0) == 0x80)
    --ready;  // never split a UTF-8 sequence
  if (ready <= taken_bytes_) return {};
  std::string out = text_.substr(taken_bytes_, ready - taken_bytes_);
  taken_bytes_ = ready;
  return out;
}

std::string TextOutput::take_rest() {
  if (detokenizer_ && !stopped_) text_ += detokenizer_->finalize();
  std::string out = taken_bytes_ < text_.size() ? text_.substr(taken_bytes_) : std::string();
  taken_bytes_ = text_.size();
  return out;
}

}  // namespace vela

#include "tokenizer/tokenizer.h"

#include "common/utf8.h"

namespace vela {

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);  // ~4 bytes per token for English text
  encode_into(text, ids, add_special_tokens);
  return ids;
}

void Tokenizer::encode_into(std::string_view text, std::vector<int32_t>& ids, bool add_special_tokens) const {
  std::string repaired;
  if (!utf8::is_valid(text)) {
    utf8::append_lossy(text, /*is_final=*/true, repaired);
    text = repaired;
  }
  if (add_special_tokens) ids.insert(ids.end(), prefix_ids_.begin(), prefix_ids_.end());
  size_t pos = 0;
  while (pos < text.size()) {
    std::optional<AddedTokenMatch> match = added_tokens_.find_next(text, pos);
    size_t segment_end = match ? match->begin : text.size();
    if (segment_end > pos) encode_segment(text.substr(pos, segment_end - pos), ids);
    if (!match) break;
    ids.push_back(match->id);
    pos = match->end;
  }
  if (add_special_tokens) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
}

void Tokenizer::encode_segment(std::string_view segment, std::vector<int32_t>& ids) const {
  // Per-thread scratch: the hot path reuses its buffers across calls.
  thread_local std::string normalized_storage;
  thread_local std::string prefixed;
  thread_local std::vector<Span> spans;
  std::string_view text = normalizer_.apply(segment, normalized_storage);
  if (add_prefix_space_ && !text.empty() && text.front() != ' ') {
    prefixed.assign(1, ' ');
    prefixed.append(text);
    text = prefixed;
  }
  if (!pre_tokenizer_) {
    bpe_.encode_word(text, ids);
    return;
  }
  pre_tokenizer_->split(text, spans);
  for (const Span& span : spans) bpe_.encode_word(text.substr(span.begin, span.end - span.begin), ids);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  std::string bytes;
  bytes.reserve(ids.size() * 4);
  for (int32_t id : ids) {
    if (skip_special_tokens && is_special(id)) continue;
    bytes.append(token_bytes(id));
  }
  if (utf8::is_valid(bytes)) return bytes;
  std::string text;
  utf8::append_lossy(bytes, /*is_final=*/true, text);
  return text;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string_view> Tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || id >= vocab_size() || id_to_token_[id].empty()) return std::nullopt;
  return std::string_view(id_to_token_[id]);
}

std::string_view Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  uint32_t begin = token_bytes_offsets_[id];
  return std::string_view(token_bytes_).substr(begin, token_bytes_offsets_[id + 1] - begin);
}

Result<std::string> Tokenizer::apply_chat_template(const std::vector<ChatMessage>& messages,
                                                   const ChatTemplateOptions& options) const {
  if (!chat_template_) return make_error("no_chat_template", chat_template_error_);
  return chat_template_->render(messages, options);
}

}  // namespace vela

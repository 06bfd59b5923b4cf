#include "tokenizer/added_tokens.h"

namespace vela {

int32_t AddedTokenMatcher::child(int32_t node, uint8_t byte) const {
  for (const auto& [b, next] : nodes_[node].children) {
    if (b == byte) return next;
  }
  return -1;
}

void AddedTokenMatcher::add(std::string_view content, int32_t id) {
  if (content.empty()) return;
  can_start_[static_cast<uint8_t>(content[0])] = true;
  int32_t node = 0;
  for (char c : content) {
    uint8_t byte = static_cast<uint8_t>(c);
    int32_t next = child(node, byte);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_[node].children.emplace_back(byte, next);
      nodes_.emplace_back();  // may reallocate: do not hold references across it
    }
    node = next;
  }
  nodes_[node].id = id;
}

std::optional<AddedTokenMatch> AddedTokenMatcher::find_next(std::string_view text, size_t from) const {
  if (empty()) return std::nullopt;
  for (size_t start = from; start < text.size(); ++start) {
    if (!can_start_[static_cast<uint8_t>(text[start])]) continue;
    int32_t node = 0;
    std::optional<AddedTokenMatch> longest;
    for (size_t i = start; i < text.size(); ++i) {
      node = child(node, static_cast<uint8_t>(text[i]));
      if (node < 0) break;
      if (nodes_[node].id >= 0) longest = AddedTokenMatch{start, i + 1, nodes_[node].id};
    }
    if (longest) return longest;
  }
  return std::nullopt;
}

}  // namespace vela

#pragma once
// Finds added tokens (<|im_start|>, <think>, <|eot_id|> ...) written in the text
// so the text can be split on them before normalization and BPE. Matching is
// leftmost-longest, as HF's AddedVocabulary does: the earliest position where any
// added token starts wins, and there the longest token.
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace vela {

struct AddedTokenMatch {
  size_t begin;  // byte offset of the token in the text
  size_t end;    // one past its last byte
  int32_t id;
};

class AddedTokenMatcher {
 public:
  void add(std::string_view content, int32_t id);
  // The first added token at or after byte `from`, or nullopt.
  std::optional<AddedTokenMatch> find_next(std::string_view text, size_t from) const;
  bool empty() const { return nodes_.size() <= 1; }

 private:
  // Byte trie. Children are kept in a small unsorted list: added-token sets are a
  // few hundred tokens sharing long prefixes ("<|reserved_special_token_"), so
  // nodes have few children.
  struct Node {
    int32_t id = -1;  // token ending here, or -1
    std::vector<std::pair<uint8_t, int32_t>> children;
  };
  int32_t child(int32_t node, uint8_t byte) const;

  std::vector<Node> nodes_{Node{}};  // nodes_[0] is the root
  std::array<bool, 256> can_start_{};  // first bytes of any token, to skip the trie walk
};

}  // namespace vela

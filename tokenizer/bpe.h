#pragma once
// Byte-level BPE model: turns the raw bytes of one pre-token into token ids by
// applying the merges in rank order (HF tokenizers' BPE semantics: lowest rank
// first, leftmost on ties).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "tokenizer/merge_table.h"

namespace vela {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
// Keyed by std::string, looked up by std::string_view without a copy.
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // vocab: token in vocab form (byte-level characters) -> id.
  // merges: pairs of vocab-form tokens, in rank order.
  // ignore_merges: a pre-token that is itself in the vocab becomes that one token
  // without running the merges (Llama 3 sets this).
  static Result<BpeModel> build(const StringIdMap& vocab,
                                const std::vector<std::pair<std::string, std::string>>& merges,
                                bool ignore_merges);

  // Appends the ids of `word` (raw bytes of one pre-token) to `out`.
  // Thread-safe; allocates only when a word is longer than any seen before on
  // this thread.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  size_t num_merges() const { return merges_.size(); }

 private:
  std::array<int32_t, 256> byte_to_id_{};  // id of the one-byte token for each byte
  MergeTable merges_;
  bool ignore_merges_ = false;
  StringIdMap raw_vocab_;  // raw bytes -> id; filled only when ignore_merges_
};

}  // namespace vela

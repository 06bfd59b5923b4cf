#include "tokenizer/bpe.h"

#include <algorithm>

#include "tokenizer/byte_level.h"

namespace vela {

Result<BpeModel> BpeModel::build(const StringIdMap& vocab,
                                 const std::vector<std::pair<std::string, std::string>>& merges,
                                 bool ignore_merges) {
  BpeModel model;
  model.ignore_merges_ = ignore_merges;
  for (int b = 0; b < 256; ++b) {
    std::string token = byte_level::encode_bytes(std::string(1, static_cast<char>(b)));
    auto it = vocab.find(token);
    if (it == vocab.end()) {
      return make_error("bad_vocab", "byte-level BPE vocab has no token for byte " + std::to_string(b) +
                                         " ('" + token + "'); every byte must be in the vocab");
    }
    model.byte_to_id_[b] = it->second;
  }
  model.merges_ = MergeTable(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    auto l = vocab.find(left), r = vocab.find(right), m = vocab.find(left + right);
    if (l == vocab.end() || r == vocab.end() || m == vocab.end()) {
      return make_error("bad_merge", "merge #" + std::to_string(rank) + " '" + left + " " + right +
                                         "' names a token that is not in the vocab");
    }
    model.merges_.insert(l->second, r->second, Merge{static_cast<int32_t>(rank), m->second});
  }
  if (ignore_merges) {
    model.raw_vocab_.reserve(vocab.size());
    for (const auto& [token, id] : vocab) model.raw_vocab_.emplace(byte_level::decode_token(token), id);
  }
  return model;
}

namespace {

// One symbol of the word being merged; symbols form a doubly linked list over the
// word's bytes. A merge keeps the left symbol and unlinks the right one.
struct Symbol {
  int32_t id;    // current token id; -1 once merged into its left neighbour
  int32_t prev;  // index of the previous live symbol, -1 at the start
  int32_t next;  // index of the next live symbol, -1 at the end
};

// A candidate merge of symbol `left` with its next symbol, valid if that pair
// still has this rank when popped.
struct Candidate {
  int32_t rank;
  int32_t left;
  bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
};

struct Scratch {
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;  // min-heap on (rank, left)
};

}  // namespace

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  const size_t n = word.size();
  if (n == 0) return;
  if (n == 1) {
    out.push_back(byte_to_id_[static_cast<uint8_t>(word[0])]);
    return;
  }
  if (ignore_merges_) {
    if (auto it = raw_vocab_.find(word); it != raw_vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }

  thread_local Scratch scratch;
  auto& symbols = scratch.symbols;
  auto& heap = scratch.heap;
  symbols.resize(n);
  heap.clear();
  const auto greater = std::greater<Candidate>{};
  for (size_t i = 0; i < n; ++i) {
    symbols[i] = Symbol{byte_to_id_[static_cast<uint8_t>(word[i])], static_cast<int32_t>(i) - 1,
                        i + 1 < n ? static_cast<int32_t>(i + 1) : -1};
  }
  for (size_t i = 0; i + 1 < n; ++i) {
    if (const Merge* m = merges_.find(symbols[i].id, symbols[i + 1].id)) {
      heap.push_back(Candidate{m->rank, static_cast<int32_t>(i)});
    }
  }
  std::make_heap(heap.begin(), heap.end(), greater);

  auto push_candidate = [&](int32_t left) {
    int32_t right = symbols[left].next;
    if (right < 0) return;
    if (const Merge* m = merges_.find(symbols[left].id, symbols[right].id)) {
      heap.push_back(Candidate{m->rank, left});
      std::push_heap(heap.begin(), heap.end(), greater);
    }
  };

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), greater);
    Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.left];
    if (left.id < 0 || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    // The pair may have changed since the candidate was pushed; a rank names one
    // pair, so an equal rank means the same merge is still due.
    const Merge* m = merges_.find(left.id, right.id);
    if (m == nullptr || m->rank != top.rank) continue;
    left.id = m->merged_id;
    right.id = -1;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    if (left.prev >= 0) push_candidate(left.prev);
    push_candidate(top.left);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

}  // namespace vela

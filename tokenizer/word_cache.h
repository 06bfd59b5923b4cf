#pragma once
// Per-thread memo of short pre-token -> ids, in front of the BPE merge loop.
// Natural text repeats a small set of words, so most pre-tokens hit; a hit costs a
// hash and a 64-byte compare instead of a merge loop whose table lookups miss the
// cache. Direct-mapped and fixed-size (256 KiB per thread): no locks, no
// allocation, no eviction policy beyond overwriting a slot. Entries carry the
// owning model's id, so models sharing a thread never see each other's ids.
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string_view>
#include <vector>

namespace vela {

class WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 22;
  static constexpr size_t kMaxIds = 7;

  // Appends the cached ids of `word` to `out` and returns true on a hit.
  bool lookup(uint64_t model_id, std::string_view word, size_t hash, std::vector<int32_t>& out) const {
    const Entry& e = entries_[hash & (kNumEntries - 1)];
    if (e.model_id != model_id || e.word_bytes != word.size() ||
        std::memcmp(e.word, word.data(), word.size()) != 0) {
      return false;
    }
    out.insert(out.end(), e.ids, e.ids + e.num_ids);
    return true;
  }

  void store(uint64_t model_id, std::string_view word, size_t hash, const int32_t* ids, size_t num_ids) {
    if (word.size() > kMaxWordBytes || num_ids > kMaxIds) return;
    Entry& e = entries_[hash & (kNumEntries - 1)];
    e.model_id = model_id;
    e.word_bytes = static_cast<uint8_t>(word.size());
    e.num_ids = static_cast<uint8_t>(num_ids);
    std::memcpy(e.word, word.data(), word.size());
    std::memcpy(e.ids, ids, num_ids * sizeof(int32_t));
  }

  static size_t hash(std::string_view word) { return std::hash<std::string_view>{}(word); }

 private:
  static constexpr size_t kNumEntries = 4096;
  struct Entry {
    uint64_t model_id = 0;  // 0: empty (model ids start at 1)
    uint8_t word_bytes = 0;
    uint8_t num_ids = 0;
    char word[kMaxWordBytes];
    int32_t ids[kMaxIds];
  };
  static_assert(sizeof(Entry) == 64, "one cache line per entry");
  std::array<Entry, kNumEntries> entries_{};
};

}  // namespace vela

#pragma once
// Open-addressing hash table from a token pair (left id, right id) to its merge:
// the rank (priority, lower merges first) and the id of the merged token. It is
// the BPE inner loop's only lookup, so it is a flat array probed linearly (one
// cache line per probe in the common case) rather than std::unordered_map.
#include <cstdint>
#include <vector>

namespace vela {

struct Merge {
  int32_t rank = -1;       // position in tokenizer.json's merges list
  int32_t merged_id = -1;  // token id of left+right
};

class MergeTable {
 public:
  MergeTable() = default;
  explicit MergeTable(size_t expected_num_merges) {
    size_t capacity = 16;
    while (capacity < expected_num_merges * 2) capacity <<= 1;  // load factor <= 0.5
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
  }

  // Keeps the first (lowest-rank) merge when a pair is listed twice; returns false then.
  bool insert(int32_t left_id, int32_t right_id, Merge merge) {
    uint64_t key = pack(left_id, right_id);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty) {
        slots_[i] = Slot{key, merge};
        ++size_;
        return true;
      }
      if (slots_[i].key == key) return false;
    }
  }

  // nullptr when the pair has no merge.
  const Merge* find(int32_t left_id, int32_t right_id) const {
    if (slots_.empty()) return nullptr;
    uint64_t key = pack(left_id, right_id);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].merge;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are >= 0, so never a real key
  struct Slot {
    uint64_t key = kEmpty;
    Merge merge;
  };
  static uint64_t pack(int32_t left_id, int32_t right_id) {
    return (uint64_t(uint32_t(left_id)) << 32) | uint32_t(right_id);
  }
  static size_t hash(uint64_t key) {
    key ^= key >> 29;
    key *= 0xBF58476D1CE4E5B9ull;
    key ^= key >> 32;
    return static_cast<size_t>(key);
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace vela

#include "engine_core/block_hash_table.h"

#include <cassert>

namespace vela {

BlockHashTable::BlockHashTable(int32_t max_entries) : max_entries_(max_entries) {
  size_t capacity = 16;
  while (capacity < 2 * static_cast<size_t>(max_entries)) capacity *= 2;
  slots_.resize(capacity);
  mask_ = capacity - 1;
}

std::optional<BlockId> BlockHashTable::find(const BlockHash& hash) const {
  for (size_t i = home(hash);; i = (i + 1) & mask_) {
    const Slot& slot = slots_[i];
    if (slot.block < 0) return std::nullopt;
    if (slot.hash == hash) return BlockId{slot.block};
  }
}

bool BlockHashTable::insert(const BlockHash& hash, BlockId block) {
  assert(block.valid());
  size_t i = home(hash);
  for (; slots_[i].block >= 0; i = (i + 1) & mask_) {
    if (slots_[i].hash == hash) return false;
  }
  assert(num_entries_ < max_entries_);
  slots_[i] = Slot{hash, block.value};
  ++num_entries_;
  return true;
}

bool BlockHashTable::erase(const BlockHash& hash, BlockId block) {
  size_t i = home(hash);
  for (;; i = (i + 1) & mask_) {
    if (slots_[i].block < 0) return false;
    if (slots_[i].hash == hash) break;
  }
  if (slots_[i].block != block.value) return false;
  // Backward shift: pull later entries of the probe run into the hole unless that
  // would move one before its home slot.
  size_t hole = i;
  for (size_t j = (hole + 1) & mask_; slots_[j].block >= 0; j = (j + 1) & mask_) {
    const size_t want = home(slots_[j].hash);
    // Entry j may move to hole iff hole lies cyclically in [want, j).
    const bool movable = ((j - want) & mask_) >= ((j - hole) & mask_);
    if (movable) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = Slot{};
  --num_entries_;
  return true;
}

void BlockHashTable::clear() {
  for (Slot& slot : slots_) slot = Slot{};
  num_entries_ = 0;
}

}  // namespace vela

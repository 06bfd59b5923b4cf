#pragma once
// BlockHashTable: hash of a cached full block -> the block that holds it.
// Open addressing with linear probing over a power-of-two array sized once for the
// pool (at most one entry per block, load factor <= 1/2), backward-shift deletion
// (no tombstones). Block hashes are already uniform, so the low bits index directly.
// No allocation after construction.
#include <cstdint>
#include <optional>
#include <vector>

#include "engine_core/block_hash.h"
#include "engine_core/block_id.h"

namespace vela {

class BlockHashTable {
 public:
  explicit BlockHashTable(int32_t max_entries);

  std::optional<BlockId> find(const BlockHash& hash) const;
  // Inserts hash -> block; returns false (and changes nothing) if hash is present.
  bool insert(const BlockHash& hash, BlockId block);
  // Removes hash if it maps to block; returns whether it did.
  bool erase(const BlockHash& hash, BlockId block);
  void clear();
  int32_t size() const { return num_entries_; }

 private:
  struct Slot {
    BlockHash hash;
    int32_t block = -1;  // -1: empty
  };
  size_t home(const BlockHash& hash) const { return static_cast<size_t>(hash.low) & mask_; }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int32_t max_entries_ = 0;
  int32_t num_entries_ = 0;
};

}  // namespace vela

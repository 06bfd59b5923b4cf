#pragma once
// BlockPool: the fixed set of KV blocks, their ref counts, the free queue and the
// prefix-cache hash table. Block ids index the workers' KV tensors directly.
//
// What stays true (check_integrity() verifies it):
//  - block 0 is the null block: ref count 0, never in the free queue, never hashed;
//  - a usable block is in the free queue iff its ref count is 0;
//  - free queue size + blocks with ref > 0 == num_usable_blocks();
//  - a block has a hash iff the table maps that hash to it.
// A freed block keeps its hash (it stays hittable) until allocation takes it from
// the head of the free queue and evicts the hash (LRU over freed blocks).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine_core/block_hash.h"
#include "engine_core/block_hash_table.h"
#include "engine_core/block_id.h"
#include "engine_core/free_block_queue.h"

namespace vela {

class BlockPool {
 public:
  // num_blocks includes the null block; requires num_blocks >= 2.
  BlockPool(int32_t num_blocks, bool enable_caching);

  int32_t num_blocks() const { return static_cast<int32_t>(ref_counts_.size()); }
  int32_t num_usable_blocks() const { return num_blocks() - 1; }
  int32_t num_free_blocks() const { return free_queue_.size(); }
  bool caching_enabled() const { return enable_caching_; }

  // Appends n blocks taken from the head of the free queue to out, each with ref
  // count 1 and its old hash evicted. Requires n <= num_free_blocks().
  void allocate(int32_t n, std::vector<BlockId>& out);
  // Another holder for a block (a prefix-cache hit). A block with ref count 0
  // leaves the free queue.
  void touch(BlockId block);
  // One holder fewer; at ref count 0 the block goes to the tail of the free queue,
  // keeping its hash.
  void release(BlockId block);

  // The block holding this hash, if cached.
  std::optional<BlockId> lookup(const BlockHash& hash) const {
    return enable_caching_ ? hash_table_.find(hash) : std::nullopt;
  }
  // Registers a full, computed (or being computed this step) block under hash.
  // Returns false when another block already holds the hash (the caller keeps its
  // block uncached; both hold the same KV) or caching is off.
  bool cache(BlockId block, const BlockHash& hash);
  // Forgets a block's hash (its KV is no longer valid for that prefix).
  void uncache(BlockId block);
  bool is_cached(BlockId block) const { return has_hash_[block.value] != 0; }
  const BlockHash& hash_of(BlockId block) const { return hashes_[block.value]; }

  // Drops every hash. Refused (false) while any block is in use, since a running
  // request's blocks would then be re-registered under stale assumptions.
  bool reset_prefix_cache();

  int32_t ref_count(BlockId block) const { return ref_counts_[block.value]; }
  int32_t num_cached_blocks() const { return hash_table_.size(); }

  // Debug integrity check (walks the free queue). expected_ref_counts[b] is the
  // number of holders the caller knows of for block b. An "integrity" error names what is wrong.
  Status check_integrity(const std::vector<int32_t>& expected_ref_counts) const;

 private:
  bool enable_caching_;
  std::vector<int32_t> ref_counts_;  // [num_blocks]
  std::vector<BlockHash> hashes_;    // [num_blocks]; valid where has_hash_
  std::vector<uint8_t> has_hash_;    // [num_blocks]
  FreeBlockQueue free_queue_;
  BlockHashTable hash_table_;
};

}  // namespace vela

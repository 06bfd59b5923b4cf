#include "engine_core/block_pool.h"

#include <cassert>

namespace vela {

BlockPool::BlockPool(int32_t num_blocks, bool enable_caching)
    : enable_caching_(enable_caching),
      ref_counts_(static_cast<size_t>(num_blocks), 0),
      hashes_(static_cast<size_t>(num_blocks)),
      has_hash_(static_cast<size_t>(num_blocks), 0),
      free_queue_(num_blocks),
      hash_table_(num_blocks) {
  assert(num_blocks >= 2);
  // Ascending ids: a fresh pool hands out blocks 1, 2, 3, ... (readable traces).
  for (int32_t b = 1; b < num_blocks; ++b) free_queue_.push_back(BlockId{b});
}

void BlockPool::allocate(int32_t n, std::vector<BlockId>& out) {
  assert(n <= num_free_blocks());
  for (int32_t i = 0; i < n; ++i) {
    const BlockId block = free_queue_.pop_front();
    if (has_hash_[block.value]) uncache(block);
    ref_counts_[block.value] = 1;
    out.push_back(block);
  }
}

void BlockPool::touch(BlockId block) {
  assert(block.value > 0 && block.value < num_blocks());
  if (ref_counts_[block.value]++ == 0) free_queue_.remove(block);
}

void BlockPool::release(BlockId block) {
  assert(block.value > 0 && block.value < num_blocks() && ref_counts_[block.value] > 0);
  if (--ref_counts_[block.value] == 0) free_queue_.push_back(block);
}

bool BlockPool::cache(BlockId block, const BlockHash& hash) {
  assert(block.value > 0 && !has_hash_[block.value]);
  if (!enable_caching_ || !hash_table_.insert(hash, block)) return false;
  hashes_[block.value] = hash;
  has_hash_[block.value] = 1;
  return true;
}

void BlockPool::uncache(BlockId block) {
  if (!has_hash_[block.value]) return;
  const bool erased = hash_table_.erase(hashes_[block.value], block);
  assert(erased);
  (void)erased;
  has_hash_[block.value] = 0;
}

bool BlockPool::reset_prefix_cache() {
  if (num_free_blocks() != num_usable_blocks()) return false;
  hash_table_.clear();
  for (auto& flag : has_hash_) flag = 0;
  return true;
}

Status BlockPool::check_integrity(const std::vector<int32_t>& expected_ref_counts) const {
  VELA_TRY(free_queue_.check());
  if (static_cast<int32_t>(expected_ref_counts.size()) != num_blocks())
    return make_error("integrity", "block pool: expected ref counts cover " +
                                       std::to_string(expected_ref_counts.size()) + " blocks, pool has " +
                                       std::to_string(num_blocks()));
  if (ref_counts_[0] != 0 || free_queue_.contains(kNullBlock) || has_hash_[0])
    return make_error("integrity", "block pool: the null block was allocated, freed or hashed");
  int32_t num_used = 0;
  int32_t num_hashed = 0;
  for (int32_t b = 1; b < num_blocks(); ++b) {
    const std::string name = "block " + std::to_string(b);
    if (ref_counts_[b] != expected_ref_counts[b])
      return make_error("integrity", name + ": ref count " + std::to_string(ref_counts_[b]) + " but " +
                                         std::to_string(expected_ref_counts[b]) + " holders");
    if ((ref_counts_[b] == 0) != free_queue_.contains(BlockId{b}))
      return make_error("integrity", name + ": ref count " + std::to_string(ref_counts_[b]) +
                                         (free_queue_.contains(BlockId{b}) ? " yet in the free queue"
                                                                           : " yet not in the free queue"));
    num_used += ref_counts_[b] > 0;
    if (has_hash_[b]) {
      ++num_hashed;
      const auto found = hash_table_.find(hashes_[b]);
      if (!found || found->value != b)
        return make_error("integrity", name + ": has a hash the table does not map to it");
    }
  }
  if (num_used + num_free_blocks() != num_usable_blocks())
    return make_error("integrity", "block pool: used " + std::to_string(num_used) + " + free " +
                                       std::to_string(num_free_blocks()) + " != usable " +
                                       std::to_string(num_usable_blocks()));
  if (num_hashed != hash_table_.size())
    return make_error("integrity", "block pool: " + std::to_string(num_hashed) + " hashed blocks but the table holds " +
                                       std::to_string(hash_table_.size()));
  return ok_status();
}

}  // namespace vela

#include "engine_core/kv_cache_manager.h"

#include <algorithm>
#include <cassert>

namespace vela {

KVCacheManager::KVCacheManager(const KVCacheConfig& config)
    : block_size_tokens_(config.block_size_tokens),
      hash_seed_(config.hash_seed),
      pool_(config.num_blocks, config.enable_prefix_caching) {
  assert(config.block_size_tokens > 0);
  hit_scratch_.reserve(static_cast<size_t>(config.num_blocks));
}

double KVCacheManager::usage() const {
  return 1.0 - static_cast<double>(pool_.num_free_blocks()) / pool_.num_usable_blocks();
}

void KVCacheManager::ensure_slot(int32_t slot) {
  if (slot >= static_cast<int32_t>(blocks_.size())) {
    blocks_.resize(static_cast<size_t>(slot) + 1);
    num_registered_.resize(static_cast<size_t>(slot) + 1, 0);
  }
}

std::span<const BlockId> KVCacheManager::blocks_of(int32_t slot) const {
  if (slot < 0 || slot >= static_cast<int32_t>(blocks_.size())) return {};
  return blocks_[static_cast<size_t>(slot)];
}

PrefixHit KVCacheManager::find_cached_prefix(const Request& request) {
  hit_scratch_.clear();
  if (!pool_.caching_enabled()) return {};
  // Leave the last token to compute: a full hit would leave nothing to sample from.
  const size_t max_hit_blocks = std::min(
      static_cast<size_t>((request.num_tokens() - 1) / block_size_tokens_), request.block_hashes().size());
  const std::span<const BlockHash> hashes = request.block_hashes();
  for (size_t i = 0; i < max_hit_blocks; ++i) {
    const std::optional<BlockId> block = pool_.lookup(hashes[i]);
    if (!block) break;
    hit_scratch_.push_back(*block);
  }
  return PrefixHit{hit_scratch_, static_cast<int32_t>(hit_scratch_.size()) * block_size_tokens_};
}

int32_t KVCacheManager::max_allocatable_tokens(const Request& request, const PrefixHit& hit,
                                               int32_t num_lookahead_tokens) const {
  const auto held = static_cast<int32_t>(blocks_of(request.slot()).size() + hit.blocks.size());
  const int32_t used_tokens = request.num_computed_tokens() + hit.num_tokens;
  int32_t free_blocks = pool_.num_free_blocks();
  for (BlockId block : hit.blocks) free_blocks -= pool_.ref_count(block) == 0;
  const int64_t capacity = static_cast<int64_t>(held + free_blocks) * block_size_tokens_;
  return static_cast<int32_t>(std::max<int64_t>(0, capacity - used_tokens - num_lookahead_tokens));
}

bool KVCacheManager::allocate_slots(const Request& request, int32_t num_new_tokens, const PrefixHit& hit,
                                    int32_t num_lookahead_tokens, bool admission) {
  const int32_t slot = request.slot();
  ensure_slot(slot);
  std::vector<BlockId>& table = blocks_[static_cast<size_t>(slot)];
  assert(hit.blocks.empty() || table.empty());

  // --- check ---
  const int32_t num_computed = request.num_computed_tokens() + hit.num_tokens;
  const int32_t num_slot_tokens = num_computed + num_new_tokens + num_lookahead_tokens;
  const int32_t num_held = static_cast<int32_t>(table.size() + hit.blocks.size());
  const int32_t num_new_blocks = std::max(0, blocks_for_tokens(num_slot_tokens) - num_held);
  // Hit blocks nobody holds sit in the free queue: touching them uses free capacity.
  int32_t num_hits_in_free_queue = 0;
  for (BlockId block : hit.blocks) num_hits_in_free_queue += pool_.ref_count(block) == 0;
  if (num_new_blocks + num_hits_in_free_queue > pool_.num_free_blocks()) return false;

  // --- act ---
  for (BlockId block : hit.blocks) {
    pool_.touch(block);
    table.push_back(block);
  }
  if (admission) {
    num_registered_[static_cast<size_t>(slot)] = static_cast<int32_t>(hit.blocks.size());
    ++stats_.num_queries;
    stats_.num_query_tokens += request.num_tokens();
    stats_.num_hit_tokens += hit.num_tokens;
  }
  pool_.allocate(num_new_blocks, table);

  // Offer the blocks that this step fills to the cache now (not after the step), so
  // requests admitted later in the same step can share them. This relies on workers
  // writing a layer's K/V for the whole batch before that layer's attention reads.
  if (pool_.caching_enabled()) {
    const std::span<const BlockHash> hashes = request.block_hashes();
    const auto num_full = static_cast<int32_t>(
        std::min<size_t>(static_cast<size_t>((num_computed + num_new_tokens) / block_size_tokens_), hashes.size()));
    int32_t& num_registered = num_registered_[static_cast<size_t>(slot)];
    for (; num_registered < num_full; ++num_registered) {
      const BlockId block = table[static_cast<size_t>(num_registered)];
      if (!pool_.is_cached(block)) pool_.cache(block, hashes[static_cast<size_t>(num_registered)]);
    }
  }
  return true;
}

void KVCacheManager::free(const Request& request, int32_t num_valid_tokens) {
  const int32_t slot = request.slot();
  if (slot >= static_cast<int32_t>(blocks_.size())) return;
  std::vector<BlockId>& table = blocks_[static_cast<size_t>(slot)];
  const int32_t num_valid_blocks = num_valid_tokens / block_size_tokens_;
  const int32_t num_registered = num_registered_[static_cast<size_t>(slot)];
  for (int32_t i = num_valid_blocks; i < num_registered; ++i) {
    const BlockId block = table[static_cast<size_t>(i)];
    if (pool_.ref_count(block) == 1) pool_.uncache(block);
  }
  for (auto it = table.rbegin(); it != table.rend(); ++it) pool_.release(*it);
  table.clear();
  num_registered_[static_cast<size_t>(slot)] = 0;
}

Status KVCacheManager::check_integrity() const {
  std::vector<int32_t> holders(static_cast<size_t>(pool_.num_blocks()), 0);
  std::vector<int64_t> last_holder(static_cast<size_t>(pool_.num_blocks()), -1);
  for (size_t slot = 0; slot < blocks_.size(); ++slot) {
    const std::vector<BlockId>& table = blocks_[slot];
    for (const BlockId block : table) {
      if (block.value <= 0 || block.value >= pool_.num_blocks())
        return make_error("integrity",
                          "slot " + std::to_string(slot) + " holds invalid block " + std::to_string(block.value));
      const auto b = static_cast<size_t>(block.value);
      if (last_holder[b] == static_cast<int64_t>(slot))
        return make_error("integrity",
                          "slot " + std::to_string(slot) + " holds block " + std::to_string(block.value) + " twice");
      last_holder[b] = static_cast<int64_t>(slot);
      ++holders[b];
    }
    if (num_registered_[slot] > static_cast<int32_t>(table.size()))
      return make_error("integrity", "slot " + std::to_string(slot) + " registered more blocks than it holds");
  }
  return pool_.check_integrity(holders);
}

}  // namespace vela

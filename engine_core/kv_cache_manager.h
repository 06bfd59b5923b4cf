#pragma once
// KVCacheManager: which KV blocks each request holds, on top of the BlockPool.
// Check, then act: allocate_slots() answers "no room" before it changes anything.
// Block tables live here, indexed by the request's slot (the scheduler's dense
// index), and their vectors keep their capacity across requests (no per-step
// allocation once warm).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine_core/block_pool.h"
#include "engine_core/request.h"

namespace vela {

struct KVCacheConfig {
  int32_t num_blocks = 0;           // pool size including the null block
  int32_t block_size_tokens = 16;
  bool enable_prefix_caching = true;
  uint64_t hash_seed = 0;           // set a secret value when tenants may attack the cache
};

// A longest-cached-prefix answer. blocks borrows the manager's scratch space and
// stays valid until the next find_cached_prefix() call.
struct PrefixHit {
  std::span<const BlockId> blocks;
  int32_t num_tokens = 0;           // blocks.size() * block_size_tokens
};

struct PrefixCacheStats {
  int64_t num_queries = 0;          // admissions looked up
  int64_t num_query_tokens = 0;     // tokens of those requests
  int64_t num_hit_tokens = 0;       // tokens served from the cache
  double hit_rate() const {
    return num_query_tokens == 0 ? 0.0 : static_cast<double>(num_hit_tokens) / num_query_tokens;
  }
};

class KVCacheManager {
 public:
  explicit KVCacheManager(const KVCacheConfig& config);

  int32_t block_size_tokens() const { return block_size_tokens_; }
  uint64_t hash_seed() const { return hash_seed_; }
  bool prefix_caching_enabled() const { return pool_.caching_enabled(); }
  int32_t num_usable_blocks() const { return pool_.num_usable_blocks(); }
  int32_t num_free_blocks() const { return pool_.num_free_blocks(); }
  double usage() const;  // fraction of usable blocks held by requests
  int32_t blocks_for_tokens(int32_t num_tokens) const {
    return (num_tokens + block_size_tokens_ - 1) / block_size_tokens_;
  }

  // Longest run of cached full blocks at the start of the request's tokens, never
  // covering its last token (that one must be computed to produce logits). Changes
  // nothing; statistics are recorded when allocate_slots() admits the request.
  PrefixHit find_cached_prefix(const Request& request);

  // Makes room for num_new_tokens after the request's computed tokens (after hit's
  // tokens when admitting with a prefix hit) plus num_lookahead_tokens of slack, and
  // registers the blocks that these tokens fill in the prefix cache. Returns false,
  // changing nothing, when the free blocks do not suffice. Pass admission = true
  // (with the hit, possibly empty) the first time a request is placed, so that the
  // prefix-cache statistics count it once.
  bool allocate_slots(const Request& request, int32_t num_new_tokens, const PrefixHit& hit = {},
                      int32_t num_lookahead_tokens = 0, bool admission = false);

  // How many more tokens could be given slots right now (the slack of the last
  // block plus all free blocks, less what touching the hit's free blocks costs).
  int32_t max_allocatable_tokens(const Request& request, const PrefixHit& hit,
                                 int32_t num_lookahead_tokens) const;

  // Releases the request's blocks, tail first, so its last blocks are evicted first.
  // Blocks past num_valid_tokens were never computed (the request is dropped in the
  // step that scheduled them): their hashes are withdrawn so nobody hits garbage.
  void free(const Request& request, int32_t num_valid_tokens);

  std::span<const BlockId> blocks_of(int32_t slot) const;
  // Drops every cached hash; refused (false) while any block is held.
  bool reset_prefix_cache() { return pool_.reset_prefix_cache(); }
  const PrefixCacheStats& prefix_cache_stats() const { return stats_; }
  const BlockPool& pool() const { return pool_; }

  // Debug: ref counts equal the block tables' holders, no block twice in a table,
  // the free queue and the hash table sound; else an "integrity" error naming what is not.
  Status check_integrity() const;

 private:
  void ensure_slot(int32_t slot);

  int32_t block_size_tokens_;
  uint64_t hash_seed_;
  BlockPool pool_;
  std::vector<std::vector<BlockId>> blocks_;  // [slot] -> block table
  std::vector<int32_t> num_registered_;       // [slot] -> leading blocks already offered to the cache
  std::vector<BlockId> hit_scratch_;
  PrefixCacheStats stats_;
};

}  // namespace vela

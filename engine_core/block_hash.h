#pragma once
// Block hashing for the prefix cache. A full block's hash is
//   XXH3_128(seed, parent_hash ‖ token_ids[block_size] ‖ extra_key)
// so one hash names the whole prefix up to and including that block (chained).
// 128 bits, not 64: the cache trusts a hash match without comparing tokens, so a
// collision would silently serve another prompt's KV. With N live hashes the chance
// of any collision is about N^2 / 2^129 (10^9 blocks: ~1e-21); with 64 bits it
// would be N^2 / 2^65 (~3% at 10^9 blocks over a long-running server). XXH3 is not
// a cryptographic hash: a tenant who can choose prompts and knows the seed could
// in principle search for collisions, so multi-tenant deployments should set a
// secret seed (KVCacheConfig::hash_seed) or a per-tenant extra key.
#include <cstdint>
#include <span>

namespace vela {

struct BlockHash {
  uint64_t low = 0;
  uint64_t high = 0;
  constexpr bool operator==(const BlockHash&) const = default;
};

// Extra keys that make otherwise equal token blocks different: a LoRA adapter id,
// a multimodal input hash, a cache salt. 0 means none.
struct BlockHashExtra {
  uint64_t key = 0;
};

// The parent of a request's first block.
inline constexpr BlockHash kRootBlockHash{0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full};

// Hash of one full block given its parent's hash.
BlockHash hash_block(const BlockHash& parent, std::span<const int32_t> block_token_ids,
                     BlockHashExtra extra, uint64_t seed);

}  // namespace vela

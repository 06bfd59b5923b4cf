// KVCacheManager: prefix lookup, allocate-or-refuse, tail-first free, stats, reset.
#include <catch2/catch.hpp>

#include <numeric>
#include <vector>

#include "engine_core/kv_cache_manager.h"

using namespace vela;

namespace {

constexpr int32_t kBlockSize = 4;

Request make_request(int32_t slot, std::vector<int32_t> prompt, int32_t max_tokens = 8) {
  EngineCoreRequest r;
  r.request_id = "r" + std::to_string(slot);
  r.prompt_token_ids = std::move(prompt);
  r.sampling_params.max_tokens = max_tokens;
  Request request(std::move(r), slot, static_cast<uint64_t>(slot));
  request.update_block_hashes(kBlockSize, 0);
  return request;
}

std::vector<int32_t> iota_tokens(int32_t n, int32_t start = 100) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

std::vector<BlockId> copy(std::span<const BlockId> s) { return {s.begin(), s.end()}; }

}  // namespace

TEST_CASE("kv manager: prefix hit covers full cached blocks and leaves the last token", "[engine_core][kv]") {
  KVCacheManager kv({.num_blocks = 32, .block_size_tokens = kBlockSize});
  Request a = make_request(0, iota_tokens(10));  // 2 full blocks + 2 tokens
  PrefixHit hit = kv.find_cached_prefix(a);
  CHECK(hit.num_tokens == 0);
  REQUIRE(kv.allocate_slots(a, 10, hit, 0, true));
  CHECK(kv.blocks_of(0).size() == 3);
  CHECK(kv.pool().num_cached_blocks() == 2);  // the two full blocks, registered at allocation
  a.set_num_computed_tokens(10);

  // Same first 8 tokens: 2 blocks hit.
  std::vector<int32_t> prompt_b = iota_tokens(8);
  prompt_b.push_back(7);
  prompt_b.push_back(7);
  Request b = make_request(1, prompt_b);
  hit = kv.find_cached_prefix(b);
  CHECK(hit.num_tokens == 8);
  REQUIRE(hit.blocks.size() == 2);
  CHECK(hit.blocks[0] == kv.blocks_of(0)[0]);

  // Exactly 8 tokens, all cached: only 1 block may hit, the last token is computed.
  Request c = make_request(2, iota_tokens(8));
  hit = kv.find_cached_prefix(c);
  CHECK(hit.num_tokens == 4);

  // A different first block: no hit even though the second block's tokens match.
  std::vector<int32_t> prompt_d = iota_tokens(10);
  prompt_d[0] = 1;
  Request d = make_request(3, prompt_d);
  CHECK(kv.find_cached_prefix(d).num_tokens == 0);
  CHECK(kv.check_integrity().ok());
}

TEST_CASE("kv manager: allocate refuses without side effects when the pool is short", "[engine_core][kv]") {
  KVCacheManager kv({.num_blocks = 5, .block_size_tokens = kBlockSize});  // 4 usable
  Request a = make_request(0, iota_tokens(12));
  REQUIRE(kv.allocate_slots(a, 12, {}, 0, true));  // 3 blocks
  CHECK(kv.num_free_blocks() == 1);
  Request b = make_request(1, iota_tokens(8, 500));
  const auto stats_before = kv.prefix_cache_stats();
  CHECK_FALSE(kv.allocate_slots(b, 8, {}, 0, true));  // needs 2
  CHECK(kv.num_free_blocks() == 1);
  CHECK(kv.blocks_of(1).empty());
  CHECK(kv.prefix_cache_stats().num_queries == stats_before.num_queries);
  CHECK(kv.max_allocatable_tokens(b, {}, 0) == 4);
  CHECK(kv.allocate_slots(b, 4, {}, 0, true));
  CHECK(kv.num_free_blocks() == 0);
  // Lookahead counts: a decode of `a` that fits its last block needs no new block,
  // but with 1 lookahead slot it would.
  a.set_num_computed_tokens(11);
  CHECK(kv.allocate_slots(a, 1, {}, 0));
  CHECK_FALSE(kv.allocate_slots(a, 1, {}, 1));
  CHECK(kv.check_integrity().ok());
}

TEST_CASE("kv manager: a hit on freed blocks consumes free capacity", "[engine_core][kv]") {
  KVCacheManager kv({.num_blocks = 4, .block_size_tokens = kBlockSize});  // 3 usable
  Request a = make_request(0, iota_tokens(9));
  REQUIRE(kv.allocate_slots(a, 9, {}, 0, true));  // 3 blocks, 2 cached
  a.set_num_computed_tokens(9);
  kv.free(a, 9);
  CHECK(kv.num_free_blocks() == 3);
  Request b = make_request(1, iota_tokens(9));
  const PrefixHit hit = kv.find_cached_prefix(b);
  REQUIRE(hit.num_tokens == 8);
  // Both hit blocks sit in the free queue; one more block is needed: 3 of 3 free.
  CHECK(kv.max_allocatable_tokens(b, hit, 0) == 4);
  CHECK_FALSE(kv.allocate_slots(b, 1, hit, 4, true));  // 1 + 4 lookahead needs 2 new blocks
  REQUIRE(kv.allocate_slots(b, 1, hit, 0, true));
  CHECK(kv.num_free_blocks() == 0);
  CHECK(kv.prefix_cache_stats().num_hit_tokens == 8);
  CHECK(kv.prefix_cache_stats().num_query_tokens == 18);
  CHECK(kv.check_integrity().ok());
}

TEST_CASE("kv manager: free releases tail first so tail blocks are evicted first", "[engine_core][kv]") {
  KVCacheManager kv({.num_blocks = 8, .block_size_tokens = kBlockSize});  // 7 usable
  Request a = make_request(0, iota_tokens(12));
  REQUIRE(kv.allocate_slots(a, 12, {}, 0, true));
  const std::vector<BlockId> blocks = copy(kv.blocks_of(0));
  a.set_num_computed_tokens(12);
  kv.free(a, 12);
  // 4 never-used blocks first, then a's blocks last-to-first.
  Request filler = make_request(1, iota_tokens(20, 900));
  REQUIRE(kv.allocate_slots(filler, 20, {}, 0, true));  // 5 blocks: 4 fresh + a's last block
  const std::vector<BlockId> filler_blocks = copy(kv.blocks_of(1));
  CHECK(filler_blocks.back() == blocks[2]);
  // a's first two blocks survive: an identical request still hits 8 tokens.
  Request again = make_request(2, iota_tokens(12));
  CHECK(kv.find_cached_prefix(again).num_tokens == 8);
  CHECK(kv.check_integrity().ok());
}

TEST_CASE("kv manager: blocks registered for uncomputed tokens lose their hash on free", "[engine_core][kv]") {
  KVCacheManager kv({.num_blocks = 8, .block_size_tokens = kBlockSize});
  Request a = make_request(0, iota_tokens(12));
  REQUIRE(kv.allocate_slots(a, 12, {}, 0, true));  // registers 3 blocks for this step
  CHECK(kv.pool().num_cached_blocks() == 3);
  kv.free(a, /*num_valid_tokens=*/4);  // dropped before the step ran: only block 0 was computed
  CHECK(kv.pool().num_cached_blocks() == 1);
  Request b = make_request(1, iota_tokens(12));
  CHECK(kv.find_cached_prefix(b).num_tokens == 4);
  CHECK(kv.check_integrity().ok());
}

TEST_CASE("kv manager: stats, usage and reset of the prefix cache", "[engine_core][kv]") {
  KVCacheManager kv({.num_blocks = 11, .block_size_tokens = kBlockSize});  // 10 usable
  Request a = make_request(0, iota_tokens(8));
  REQUIRE(kv.allocate_slots(a, 8, kv.find_cached_prefix(a), 0, true));
  CHECK(kv.usage() == Approx(0.2));
  Request b = make_request(1, iota_tokens(9));
  PrefixHit hit = kv.find_cached_prefix(b);
  REQUIRE(kv.allocate_slots(b, 9 - hit.num_tokens, hit, 0, true));
  CHECK(kv.prefix_cache_stats().num_queries == 2);
  CHECK(kv.prefix_cache_stats().hit_rate() == Approx(8.0 / 17.0));
  CHECK(kv.usage() == Approx(0.3));  // b shares 2 blocks and adds 1
  CHECK_FALSE(kv.reset_prefix_cache());
  a.set_num_computed_tokens(8);
  b.set_num_computed_tokens(9);
  kv.free(a, 8);
  kv.free(b, 9);
  CHECK(kv.usage() == Approx(0.0));
  CHECK(kv.reset_prefix_cache());
  Request c = make_request(2, iota_tokens(9));
  CHECK(kv.find_cached_prefix(c).num_tokens == 0);
  CHECK(kv.check_integrity().ok());
}

TEST_CASE("kv manager: prefix caching off never hits", "[engine_core][kv]") {
  KVCacheManager kv({.num_blocks = 11, .block_size_tokens = kBlockSize, .enable_prefix_caching = false});
  Request a = make_request(0, iota_tokens(9));
  REQUIRE(kv.allocate_slots(a, 9, {}, 0, true));
  Request b = make_request(1, iota_tokens(9));
  CHECK(kv.find_cached_prefix(b).num_tokens == 0);
  CHECK(kv.pool().num_cached_blocks() == 0);
}

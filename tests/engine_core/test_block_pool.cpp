// FreeBlockQueue, BlockHashTable, block hashing and BlockPool.
#include <catch2/catch.hpp>

#include <random>
#include <unordered_map>
#include <vector>

#include "engine_core/block_hash.h"
#include "engine_core/block_hash_table.h"
#include "engine_core/block_pool.h"
#include "engine_core/free_block_queue.h"

using namespace vela;

namespace {
std::vector<int32_t> order_of(const FreeBlockQueue& q) {
  std::vector<int32_t> ids;
  q.for_each([&](BlockId b) { ids.push_back(b.value); });
  return ids;
}
}  // namespace

TEST_CASE("free queue: FIFO order, O(1) removal from the middle, integrity", "[engine_core][free_queue]") {
  FreeBlockQueue q(8);
  CHECK(q.empty());
  CHECK(q.check().ok());
  for (int32_t b : {3, 1, 5, 7}) q.push_back(BlockId{b});
  CHECK(order_of(q) == std::vector<int32_t>{3, 1, 5, 7});
  CHECK(q.size() == 4);
  q.remove(BlockId{5});  // middle
  q.remove(BlockId{3});  // head
  q.remove(BlockId{7});  // tail
  CHECK(order_of(q) == std::vector<int32_t>{1});
  CHECK_FALSE(q.contains(BlockId{5}));
  q.push_back(BlockId{5});
  CHECK(q.pop_front() == BlockId{1});
  CHECK(q.pop_front() == BlockId{5});
  CHECK(q.empty());
  CHECK(q.check().ok());
}

TEST_CASE("free queue: random operations match a reference list", "[engine_core][free_queue]") {
  constexpr int32_t kBlocks = 97;
  FreeBlockQueue q(kBlocks);
  std::vector<int32_t> ref;
  std::mt19937 rng(7);
  for (int step = 0; step < 5000; ++step) {
    const int op = static_cast<int>(rng() % 3);
    const auto b = static_cast<int32_t>(rng() % kBlocks);
    const bool in = std::find(ref.begin(), ref.end(), b) != ref.end();
    if (op == 0 && !in) {
      q.push_back(BlockId{b});
      ref.push_back(b);
    } else if (op == 1 && in) {
      q.remove(BlockId{b});
      ref.erase(std::find(ref.begin(), ref.end(), b));
    } else if (op == 2 && !ref.empty()) {
      CHECK(q.pop_front().value == ref.front());
      ref.erase(ref.begin());
    }
    REQUIRE(q.size() == static_cast<int32_t>(ref.size()));
  }
  CHECK(order_of(q) == ref);
  CHECK(q.check().ok());
}

TEST_CASE("block hash: chained, deterministic, sensitive to tokens, parent, extra key and seed",
          "[engine_core][hash]") {
  const std::vector<int32_t> a = {1, 2, 3, 4};
  const std::vector<int32_t> b = {1, 2, 3, 5};
  const BlockHash ha = hash_block(kRootBlockHash, a, {}, 0);
  CHECK(ha == hash_block(kRootBlockHash, a, {}, 0));
  CHECK_FALSE(ha == hash_block(kRootBlockHash, b, {}, 0));
  CHECK_FALSE(ha == hash_block(hash_block(kRootBlockHash, b, {}, 0), a, {}, 0));  // same tokens, other prefix
  CHECK_FALSE(ha == hash_block(kRootBlockHash, a, BlockHashExtra{42}, 0));
  CHECK_FALSE(ha == hash_block(kRootBlockHash, a, {}, 1));
  // The streaming path (blocks over 256 tokens) agrees with itself and differs by content.
  std::vector<int32_t> big(300, 9);
  const BlockHash hb = hash_block(kRootBlockHash, big, {}, 0);
  CHECK(hb == hash_block(kRootBlockHash, big, {}, 0));
  big[299] = 10;
  CHECK_FALSE(hb == hash_block(kRootBlockHash, big, {}, 0));
}

TEST_CASE("hash table: colliding home slots, erase with backward shift", "[engine_core][hash_table]") {
  BlockHashTable table(64);  // 128 slots
  // Same low bits -> same home slot: a long probe run.
  std::vector<BlockHash> keys;
  for (uint64_t i = 0; i < 20; ++i) keys.push_back(BlockHash{0x500 + (i << 40), i});
  for (size_t i = 0; i < keys.size(); ++i) CHECK(table.insert(keys[i], BlockId{static_cast<int32_t>(i + 1)}));
  CHECK_FALSE(table.insert(keys[3], BlockId{60}));  // already present
  CHECK_FALSE(table.erase(keys[3], BlockId{60}));   // maps to another block
  for (size_t i = 0; i < keys.size(); i += 2) CHECK(table.erase(keys[i], BlockId{static_cast<int32_t>(i + 1)}));
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto found = table.find(keys[i]);
    if (i % 2 == 0) {
      CHECK_FALSE(found);
    } else {
      REQUIRE(found);
      CHECK(found->value == static_cast<int32_t>(i + 1));
    }
  }
  CHECK(table.size() == 10);
}

TEST_CASE("hash table: random inserts and erases match std::unordered_map", "[engine_core][hash_table]") {
  constexpr int32_t kMax = 200;
  BlockHashTable table(kMax);
  std::unordered_map<uint64_t, int32_t> ref;  // key: low bits (high = low ^ 1)
  std::mt19937_64 rng(11);
  for (int step = 0; step < 20000; ++step) {
    const uint64_t low = (rng() % 300) * 0x100;  // many keys share home slots
    const BlockHash h{low, low ^ 1};
    if (rng() % 2 == 0 && static_cast<int32_t>(ref.size()) < kMax) {
      const auto block = static_cast<int32_t>(rng() % 1000) + 1;
      CHECK(table.insert(h, BlockId{block}) == (ref.count(low) == 0));
      ref.emplace(low, block);
    } else if (ref.count(low)) {
      CHECK(table.erase(h, BlockId{ref[low]}));
      ref.erase(low);
    }
  }
  CHECK(table.size() == static_cast<int32_t>(ref.size()));
  for (uint64_t k = 0; k < 300; ++k) {
    const uint64_t low = k * 0x100;
    const auto found = table.find(BlockHash{low, low ^ 1});
    REQUIRE(found.has_value() == (ref.count(low) == 1));
    if (found) CHECK(found->value == ref[low]);
  }
}

TEST_CASE("block pool: null block, ref counts, LRU eviction of freed cached blocks", "[engine_core][block_pool]") {
  BlockPool pool(6, /*enable_caching=*/true);  // blocks 1..5 usable
  CHECK(pool.num_usable_blocks() == 5);
  CHECK(pool.num_free_blocks() == 5);
  std::vector<int32_t> refs(6, 0);
  CHECK(pool.check_integrity(refs).ok());

  std::vector<BlockId> got;
  pool.allocate(3, got);
  REQUIRE(got.size() == 3);
  CHECK(got[0] == BlockId{1});  // fresh pool hands out ascending ids
  for (BlockId b : got) CHECK(b != kNullBlock);
  for (BlockId b : got) refs[b.value] = 1;
  CHECK(pool.check_integrity(refs).ok());

  const BlockHash h1{1, 1}, h2{2, 2};
  CHECK(pool.cache(got[0], h1));
  CHECK(pool.cache(got[1], h2));
  CHECK_FALSE(pool.cache(got[2], h1));  // another block already holds h1
  CHECK(pool.lookup(h1) == got[0]);

  // A second holder (a prefix hit).
  pool.touch(got[0]);
  refs[got[0].value] = 2;
  CHECK(pool.check_integrity(refs).ok());

  // Free in reverse (tail first): block 3 then 2 then one ref of 1.
  pool.release(got[2]);
  pool.release(got[1]);
  pool.release(got[0]);
  refs = {0, 1, 0, 0, 0, 0};
  CHECK(pool.check_integrity(refs).ok());
  CHECK(pool.num_free_blocks() == 4);
  CHECK(pool.lookup(h2) == got[1]);  // freed but still hittable

  // Hit on a freed cached block takes it out of the free queue.
  pool.touch(got[1]);
  refs[got[1].value] = 1;
  CHECK(pool.num_free_blocks() == 3);
  CHECK(pool.check_integrity(refs).ok());
  pool.release(got[1]);
  refs[got[1].value] = 0;

  // Free queue now: 4, 5, 3, 2 (never-used blocks first, then freed order).
  // Allocating 4 blocks evicts block 2's hash last; h1 (block 1, still held) stays.
  std::vector<BlockId> more;
  pool.allocate(4, more);
  CHECK(more == std::vector<BlockId>{BlockId{4}, BlockId{5}, BlockId{3}, BlockId{2}});
  CHECK_FALSE(pool.lookup(h2).has_value());  // evicted on reuse
  CHECK(pool.lookup(h1) == got[0]);
  CHECK(pool.num_free_blocks() == 0);
  for (BlockId b : more) refs[b.value] = 1;
  CHECK(pool.check_integrity(refs).ok());

  CHECK_FALSE(pool.reset_prefix_cache());  // blocks in use
  for (BlockId b : more) pool.release(b);
  pool.release(got[0]);
  CHECK(pool.reset_prefix_cache());
  CHECK_FALSE(pool.lookup(h1).has_value());
  CHECK(pool.check_integrity(std::vector<int32_t>(6, 0)).ok());
}

TEST_CASE("block pool: integrity check catches a wrong ref count", "[engine_core][block_pool]") {
  BlockPool pool(4, true);
  std::vector<BlockId> got;
  pool.allocate(1, got);
  std::vector<int32_t> refs(4, 0);  // claims nobody holds it
  const auto sound = pool.check_integrity(refs);
  REQUIRE_FALSE(sound.ok());
  CHECK_THAT(sound.error().message, Catch::Contains("ref count 1 but 0 holders"));
}

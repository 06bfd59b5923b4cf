#pragma once
// FreeBlockQueue: the pool's free blocks in eviction order, as an intrusive doubly
// linked list threaded through two index arrays (no nodes, no allocation after
// construction). Two sentinels (head, tail) remove every empty-list special case.
// Allocation pops the head (least recently freed); freed blocks are pushed at the
// tail; a cached block that gets hit is unlinked from the middle in O(1).
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine_core/block_id.h"

namespace vela {

class FreeBlockQueue {
 public:
  // An empty queue able to hold block ids in [0, num_blocks).
  explicit FreeBlockQueue(int32_t num_blocks);

  int32_t size() const { return num_free_blocks_; }
  bool empty() const { return num_free_blocks_ == 0; }
  bool contains(BlockId block) const { return next_[block.value] != kUnlinked; }
  BlockId front() const { return BlockId{next_[head()]}; }  // requires !empty()

  void push_back(BlockId block);  // requires !contains(block)
  BlockId pop_front();            // requires !empty()
  void remove(BlockId block);     // requires contains(block); O(1)

  // Calls f(BlockId) from head to tail.
  template <class F>
  void for_each(F&& f) const {
    for (int32_t b = next_[head()]; b != tail(); b = next_[b]) f(BlockId{b});
  }

  // Debug integrity check: walks the list both ways, checks that links are mutual,
  // that the walk length equals size(), and that unlinked blocks are marked so.
  // An "integrity" error names what is wrong.
  Status check() const;

 private:
  static constexpr int32_t kUnlinked = -1;
  int32_t head() const { return num_block_ids_; }
  int32_t tail() const { return num_block_ids_ + 1; }

  int32_t num_block_ids_;
  int32_t num_free_blocks_ = 0;
  // Indexed by block id, then the two sentinels: [num_blocks + 2].
  std::vector<int32_t> prev_;
  std::vector<int32_t> next_;
};

}  // namespace vela

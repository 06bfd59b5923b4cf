#include "engine_core/free_block_queue.h"

#include <cassert>

namespace vela {

FreeBlockQueue::FreeBlockQueue(int32_t num_blocks)
    : num_block_ids_(num_blocks),
      prev_(static_cast<size_t>(num_blocks) + 2, kUnlinked),
      next_(static_cast<size_t>(num_blocks) + 2, kUnlinked) {
  next_[head()] = tail();
  prev_[tail()] = head();
}

void FreeBlockQueue::push_back(BlockId block) {
  const int32_t b = block.value;
  assert(b >= 0 && b < num_block_ids_ && !contains(block));
  const int32_t last = prev_[tail()];
  prev_[b] = last;
  next_[b] = tail();
  next_[last] = b;
  prev_[tail()] = b;
  ++num_free_blocks_;
}

BlockId FreeBlockQueue::pop_front() {
  assert(!empty());
  const BlockId block{next_[head()]};
  remove(block);
  return block;
}

void FreeBlockQueue::remove(BlockId block) {
  const int32_t b = block.value;
  assert(b >= 0 && b < num_block_ids_ && contains(block));
  next_[prev_[b]] = next_[b];
  prev_[next_[b]] = prev_[b];
  prev_[b] = kUnlinked;
  next_[b] = kUnlinked;
  --num_free_blocks_;
}

Status FreeBlockQueue::check() const {
  if (next_[tail()] != kUnlinked || prev_[head()] != kUnlinked)
    return make_error("integrity", "free queue: a sentinel has an outer link");
  int32_t walked = 0;
  int32_t prev = head();
  for (int32_t b = next_[head()]; b != tail(); b = next_[b]) {
    if (b < 0 || b >= num_block_ids_)
      return make_error("integrity", "free queue: link to out-of-range block " + std::to_string(b));
    if (prev_[b] != prev)
      return make_error("integrity", "free queue: block " + std::to_string(b) + " has prev " +
                                         std::to_string(prev_[b]) + " but follows " + std::to_string(prev));
    if (++walked > num_block_ids_)
      return make_error("integrity", "free queue: cycle (walk exceeds the number of blocks)");
    prev = b;
  }
  if (prev_[tail()] != prev)
    return make_error("integrity", "free queue: tail sentinel does not point at the last block");
  if (walked != num_free_blocks_)
    return make_error("integrity", "free queue: walked " + std::to_string(walked) + " blocks but size() is " +
                                       std::to_string(num_free_blocks_));
  int32_t linked = 0;
  for (int32_t b = 0; b < num_block_ids_; ++b) {
    if ((next_[b] == kUnlinked) != (prev_[b] == kUnlinked))
      return make_error("integrity", "free queue: block " + std::to_string(b) + " is half linked");
    linked += next_[b] != kUnlinked;
  }
  if (linked != num_free_blocks_)
    return make_error("integrity", "free queue: " + std::to_string(linked) + " blocks are linked but size() is " +
                                       std::to_string(num_free_blocks_));
  return ok_status();
}

}  // namespace vela

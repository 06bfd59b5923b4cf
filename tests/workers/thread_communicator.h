#pragma once
// Communicator for ranks that are threads of one process (tests): each
// collective publishes a pointer, meets the others at a barrier, and reads
// every rank's data in rank order (so the sums are deterministic).
#include <barrier>
#include <cstring>
#include <vector>

#include "model/communicator.h"

namespace vela::testing {

class ThreadGroup {
 public:
  explicit ThreadGroup(int world_size)
      : world_size_(world_size), barrier_(world_size), data_(size_t(world_size)) {}
  int world_size() const { return world_size_; }
  void publish_and_wait(int rank, const float* data) {
    data_[size_t(rank)] = data;
    barrier_.arrive_and_wait();
  }
  const float* data(int rank) const { return data_[size_t(rank)]; }
  void wait() { barrier_.arrive_and_wait(); }

 private:
  int world_size_;
  std::barrier<> barrier_;
  std::vector<const float*> data_;
};

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int world_size() const override { return group_.world_size(); }

  using Communicator::all_gather;
  using Communicator::all_reduce_sum;
  void all_reduce_sum(void* buffer, size_t count, DType dtype, CUstream_st*) override {
    REQUIRE(dtype == DType::kF32);
    float* data = static_cast<float*>(buffer);
    group_.publish_and_wait(rank_, data);
    scratch_.assign(count, 0.0f);
    for (int r = 0; r < world_size(); ++r) {
      const float* src = group_.data(r);
      for (size_t i = 0; i < count; ++i) scratch_[i] += src[i];
    }
    group_.wait();  // every rank has read every input before any is overwritten
    std::memcpy(data, scratch_.data(), count * sizeof(float));
  }

  void all_gather(const void* in_buffer, size_t count, void* out_buffer, DType dtype, CUstream_st*) override {
    REQUIRE(dtype == DType::kF32);
    const float* in = static_cast<const float*>(in_buffer);
    float* out = static_cast<float*>(out_buffer);
    group_.publish_and_wait(rank_, in);
    for (int r = 0; r < world_size(); ++r) std::memcpy(out + size_t(r) * count, group_.data(r), count * sizeof(float));
    group_.wait();
  }

 private:
  ThreadGroup& group_;
  int rank_;
  std::vector<float> scratch_;
};

}  // namespace vela::testing

#pragma once
// Communicator: the collectives tensor parallelism needs. Gloo implements it on
// the CPU backend, NCCL on CUDA; a single-rank instance does nothing.
#include <cstddef>

namespace vela {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In place: data[i] = sum over ranks of data[i].
  virtual void all_reduce_sum(float* data, size_t count) = 0;
  // out = concat over ranks (rank order) of each rank's in[0..count); out has count * world_size.
  virtual void all_gather(const float* in, size_t count, float* out) = 0;
};

// The world of one: every collective is the identity.
class SingleRankCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void all_reduce_sum(float*, size_t) override {}
  void all_gather(const float* in, size_t count, float* out) override {
    for (size_t i = 0; i < count; ++i) out[i] = in[i];
  }
};

}  // namespace vela

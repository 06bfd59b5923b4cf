#pragma once
// Communicator: the collectives tensor parallelism needs. Gloo implements it on
// the CPU backend (fp32 host buffers), NCCL on CUDA (device buffers of the compute
// dtype, enqueued on the compute stream: no host synchronisation); a single-rank
// instance does nothing.
#include <cstddef>

#include "common/result.h"
#include "model/dtype.h"

struct CUstream_st;  // cudaStream_t without the CUDA headers

namespace vela {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // In place: data[i] = sum over ranks of data[i], count elements of dtype. On a
  // device communicator enqueued on stream; on the CPU done on return (stream null).
  virtual void all_reduce_sum(void* data, size_t count, DType dtype, CUstream_st* stream) = 0;
  // out = concat over ranks (rank order) of each rank's in[0..count); out has count * world_size.
  virtual void all_gather(const void* in, size_t count, void* out, DType dtype, CUstream_st* stream) = 0;
  // Waits until the work enqueued on stream is done. A device communicator watches
  // itself meanwhile: a peer that died or stopped ends the wait with an error naming
  // it (within the collective timeout) instead of a hang. Host collectives are done
  // on return: nothing to wait for.
  virtual Status wait(CUstream_st* stream) { (void)stream; return ok_status(); }

  // fp32 host buffers (the CPU backend's activations, the worker's control data).
  void all_reduce_sum(float* data, size_t count) { all_reduce_sum(data, count, DType::kF32, nullptr); }
  void all_gather(const float* in, size_t count, float* out) { all_gather(in, count, out, DType::kF32, nullptr); }
};

// The world of one: every collective is the identity (all_gather copies; a device
// buffer is never given here, since a single rank gathers nothing on the GPU path).
class SingleRankCommunicator final : public Communicator {
 public:
  using Communicator::all_gather;
  using Communicator::all_reduce_sum;
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void all_reduce_sum(void*, size_t, DType, CUstream_st*) override {}
  void all_gather(const void* in, size_t count, void* out, DType dtype, CUstream_st*) override {
    const size_t bytes = count * dtype_size(dtype);
    for (size_t i = 0; i < bytes; ++i) static_cast<char*>(out)[i] = static_cast<const char*>(in)[i];
  }
};

}  // namespace vela

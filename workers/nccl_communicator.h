#pragma once
// Communicator over NCCL: tensor parallelism on CUDA. Collectives take device
// buffers of the compute dtype and are enqueued on the caller's stream (no host
// synchronisation). The communicator is non-blocking, so no host thread is ever
// stuck inside NCCL: wait() watches the stream and the communicator together, and a
// peer that died or stopped (its kernels never arrive) ends the wait with an error
// after the collective timeout, the communicator aborted, instead of a hang.
#include <chrono>
#include <memory>
#include <string>

#include "common/result.h"
#include "model/communicator.h"

namespace gloo::rendezvous {
class Store;
}
struct ncclComm;
struct CUevent_st;

namespace vela {

class NcclCommunicator final : public Communicator {
 public:
  // Joins the group on CUDA device `device_index`: rank 0 makes the unique id and
  // publishes it in the rendezvous store (rank 0's, whose address every rank got in
  // LoadModel); the others read it there. Fails (no exception, no hang) when the
  // others do not show up within timeout.
  static Result<std::unique_ptr<NcclCommunicator>> connect(gloo::rendezvous::Store& store, int rank, int world_size,
                                                           int device_index, std::chrono::milliseconds timeout);
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  using Communicator::all_gather;
  using Communicator::all_reduce_sum;
  // Device buffers (F32, BF16, F16, I32) on stream. After a failure they do nothing:
  // the step reports the failure from wait().
  void all_reduce_sum(void* data, size_t count, DType dtype, CUstream_st* stream) override;
  void all_gather(const void* in, size_t count, void* out, DType dtype, CUstream_st* stream) override;
  Status wait(CUstream_st* stream) override;

  // Stops every kernel of this communicator (they return) and makes it unusable.
  void abort(const std::string& why);
  bool failed() const { return !failure_.empty(); }

 private:
  NcclCommunicator(int rank, int world_size, ncclComm* comm, CUevent_st* event, std::chrono::milliseconds timeout);
  // Waits out a non-blocking call that returned "in progress"; records a failure.
  bool settle(int result, const char* what);
  int rank_;
  int world_size_;
  ncclComm* comm_;
  CUevent_st* event_;
  std::chrono::milliseconds timeout_;
  std::string failure_;  // non-empty once a call failed or the communicator was aborted
};

}  // namespace vela

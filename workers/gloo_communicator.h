#pragma once
// Communicator over Gloo's TCP transport on loopback: the CPU backend's tensor
// parallelism. All ranks call each collective in the same order (the model runs the
// same layers on every rank), which is what Gloo's tags rely on.
#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "model/communicator.h"

namespace gloo {
class Context;
}

namespace vela {

class GlooCommunicator final : public Communicator {
 public:
  // Joins the group through the rendezvous store at store_address (made by rank 0).
  // Fails (no exception) when the others do not show up within timeout.
  static Result<std::unique_ptr<GlooCommunicator>> connect(zmq::context_t& zmq_context, int rank,
                                                           int world_size, const std::string& store_address,
                                                           const std::string& host,
                                                           std::chrono::milliseconds timeout);
  ~GlooCommunicator() override;

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  using Communicator::all_gather;
  using Communicator::all_reduce_sum;
  // fp32 host buffers only (the CPU backend); anything else is a programming error.
  void all_reduce_sum(void* data, size_t count, DType dtype, CUstream_st* stream) override;
  void all_gather(const void* in, size_t count, void* out, DType dtype, CUstream_st* stream) override;

 private:
  GlooCommunicator(int rank, int world_size, std::shared_ptr<gloo::Context> context);
  int rank_;
  int world_size_;
  std::shared_ptr<gloo::Context> context_;
  uint32_t next_tag_ = 0;
};

}  // namespace vela

#include "workers/gloo_communicator.h"

#include <gloo/allgather.h>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <gloo/allreduce.h>
#include <gloo/common/error.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>

#include "workers/zmq_store.h"

namespace vela {

GlooCommunicator::GlooCommunicator(int rank, int world_size, std::shared_ptr<gloo::Context> context)
    : rank_(rank), world_size_(world_size), context_(std::move(context)) {}

GlooCommunicator::~GlooCommunicator() = default;

Result<std::unique_ptr<GlooCommunicator>> GlooCommunicator::connect(
    zmq::context_t& zmq_context, int rank, int world_size, const std::string& store_address,
    const std::string& host, std::chrono::milliseconds timeout) {
  if (world_size < 1 || rank < 0 || rank >= world_size)
    return make_error("bad_rank", "rank " + std::to_string(rank) + " outside world of " + std::to_string(world_size));
  try {
    gloo::transport::tcp::attr attr(host.c_str());
    auto device = gloo::transport::tcp::CreateDevice(attr);
    ZmqStore store(zmq_context, store_address, timeout);
    gloo::rendezvous::PrefixStore prefixed("vela-tp", store);
    auto context = std::make_shared<gloo::rendezvous::Context>(rank, world_size);
    context->setTimeout(timeout);
    context->connectFullMesh(prefixed, device);
    return std::unique_ptr<GlooCommunicator>(new GlooCommunicator(rank, world_size, std::move(context)));
  } catch (const std::exception& e) {
    return make_error("gloo_connect", "rank " + std::to_string(rank) + " of " + std::to_string(world_size) +
                                          " could not join through " + store_address + ": " + e.what());
  }
}

namespace {
void require_host_f32(DType dtype, CUstream_st* stream, const char* op) {
  if (dtype == DType::kF32 && stream == nullptr) return;
  std::fprintf(stderr, "vela: Gloo %s on %s data%s: Gloo serves the CPU backend's fp32 host buffers\n", op,
               std::string(dtype_name(dtype)).c_str(), stream != nullptr ? " on a CUDA stream" : "");
  std::abort();
}
}  // namespace

void GlooCommunicator::all_reduce_sum(void* buffer, size_t count, DType dtype, CUstream_st* stream) {
  require_host_f32(dtype, stream, "all_reduce_sum");
  float* data = static_cast<float*>(buffer);
  if (world_size_ == 1 || count == 0) return;
  gloo::AllreduceOptions opts(context_);
  opts.setOutput(data, count);  // output only: reduced in place
  opts.setReduceFunction(
      static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
  opts.setTag(next_tag_++);
  gloo::allreduce(opts);
}

void GlooCommunicator::all_gather(const void* in_buffer, size_t count, void* out_buffer, DType dtype,
                                  CUstream_st* stream) {
  require_host_f32(dtype, stream, "all_gather");
  const float* in = static_cast<const float*>(in_buffer);
  float* out = static_cast<float*>(out_buffer);
  if (world_size_ == 1) {
    std::copy(in, in + count, out);
    return;
  }
  gloo::AllgatherOptions opts(context_);
  opts.setInput(const_cast<float*>(in), count);
  opts.setOutput(out, count * static_cast<size_t>(world_size_));
  opts.setTag(next_tag_++);
  gloo::allgather(opts);
}

}  // namespace vela

#include "workers/nccl_communicator.h"

#include <cuda_runtime.h>
#include <gloo/rendezvous/store.h>
#include <nccl.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

namespace vela {
namespace {

using Clock = std::chrono::steady_clock;

std::optional<ncclDataType_t> nccl_type(DType dtype) {
  switch (dtype) {
    case DType::kF32: return ncclFloat32;
    case DType::kBF16: return ncclBfloat16;
    case DType::kF16: return ncclFloat16;
    case DType::kI32: return ncclInt32;
    case DType::kI64: return ncclInt64;
  }
  return std::nullopt;
}

std::string nccl_text(ncclResult_t r) { return ncclGetErrorString(r); }

// Polls a non-blocking communicator until its pending call finishes: the call's
// result, or ncclInProgress if the deadline passed first.
ncclResult_t poll_until_settled(ncclComm_t comm, Clock::time_point deadline) {
  ncclResult_t state = ncclInProgress;
  for (int spins = 0;; ++spins) {
    if (ncclCommGetAsyncError(comm, &state) != ncclSuccess) return ncclSystemError;
    if (state != ncclInProgress) return state;
    if (Clock::now() >= deadline) return ncclInProgress;
    if (spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(200));
    else std::this_thread::yield();
  }
}

constexpr const char* kIdKey = "vela-nccl-unique-id";

}  // namespace

NcclCommunicator::NcclCommunicator(int rank, int world_size, ncclComm* comm, CUevent_st* event,
                                   std::chrono::milliseconds timeout)
    : rank_(rank), world_size_(world_size), comm_(comm), event_(event), timeout_(timeout) {}

NcclCommunicator::~NcclCommunicator() {
  // A healthy communicator is destroyed in order; a failed one is aborted (destroy
  // would wait for peers that are gone).
  if (comm_ != nullptr) {  // null once aborted
    ncclResult_t r = ncclCommFinalize(comm_);
    if (r == ncclInProgress) r = poll_until_settled(comm_, Clock::now() + timeout_);
    if (r == ncclSuccess) ncclCommDestroy(comm_);
    else ncclCommAbort(comm_);
  }
  if (event_ != nullptr) cudaEventDestroy(event_);
}

Result<std::unique_ptr<NcclCommunicator>> NcclCommunicator::connect(gloo::rendezvous::Store& store, int rank,
                                                                    int world_size, int device_index,
                                                                    std::chrono::milliseconds timeout) {
  const std::string who = "rank " + std::to_string(rank) + " of " + std::to_string(world_size);
  if (world_size < 1 || rank < 0 || rank >= world_size)
    return make_error("bad_rank", who + ": rank outside the world");
  // NVLink SHARP (multicast) stays off unless the user asked for it: on shared hosts
  // a program that uses it can take the host's GPUs out of service.
  ::setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0);
  if (cudaError_t e = cudaSetDevice(device_index); e != cudaSuccess)
    return make_error("nccl_init", who + ": cuda:" + std::to_string(device_index) + ": " + cudaGetErrorString(e));
  ncclUniqueId id;
  try {
    if (rank == 0) {
      if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess)
        return make_error("nccl_init", who + ": ncclGetUniqueId: " + nccl_text(r));
      store.set(kIdKey, std::vector<char>(id.internal, id.internal + sizeof id.internal));
    } else {
      store.wait({kIdKey}, timeout);
      std::vector<char> bytes = store.get(kIdKey);
      if (bytes.size() != sizeof id.internal)
        return make_error("nccl_init", who + ": the unique id in the rendezvous store has " +
                                           std::to_string(bytes.size()) + " bytes, not " +
                                           std::to_string(sizeof id.internal));
      std::memcpy(id.internal, bytes.data(), bytes.size());
    }
  } catch (const std::exception& e) {
    return make_error("nccl_init", who + ": exchanging the NCCL unique id: " + e.what());
  }
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  ncclResult_t r = ncclCommInitRankConfig(&comm, world_size, id, rank, &config);
  if (r == ncclInProgress) r = poll_until_settled(comm, Clock::now() + timeout);
  if (r != ncclSuccess) {
    if (comm != nullptr) ncclCommAbort(comm);
    return make_error("nccl_init", who + ": ncclCommInitRank on cuda:" + std::to_string(device_index) + ": " +
                                       (r == ncclInProgress ? "the other ranks did not join within " +
                                                                  std::to_string(timeout.count()) + " ms"
                                                            : nccl_text(r)));
  }
  cudaEvent_t event = nullptr;
  if (cudaError_t e = cudaEventCreateWithFlags(&event, cudaEventDisableTiming); e != cudaSuccess) {
    ncclCommAbort(comm);
    return make_error("nccl_init", who + ": cudaEventCreate: " + cudaGetErrorString(e));
  }
  return std::unique_ptr<NcclCommunicator>(new NcclCommunicator(rank, world_size, comm, event, timeout));
}

bool NcclCommunicator::settle(int result, const char* what) {
  auto r = static_cast<ncclResult_t>(result);
  if (r == ncclInProgress) r = poll_until_settled(comm_, Clock::now() + timeout_);
  if (r == ncclSuccess) return true;
  abort(std::string(what) + ": " +
        (r == ncclInProgress ? "did not complete within " + std::to_string(timeout_.count()) + " ms" : nccl_text(r)));
  return false;
}

void NcclCommunicator::all_reduce_sum(void* data, size_t count, DType dtype, CUstream_st* stream) {
  if (failed() || count == 0) return;
  auto type = nccl_type(dtype);
  if (!type) return abort("all_reduce_sum on " + std::string(dtype_name(dtype)) + " data");
  settle(ncclAllReduce(data, data, count, *type, ncclSum, comm_, stream), "ncclAllReduce");
}

void NcclCommunicator::all_gather(const void* in, size_t count, void* out, DType dtype, CUstream_st* stream) {
  if (failed() || count == 0) return;
  auto type = nccl_type(dtype);
  if (!type) return abort("all_gather on " + std::string(dtype_name(dtype)) + " data");
  settle(ncclAllGather(in, out, count, *type, comm_, stream), "ncclAllGather");
}

Status NcclCommunicator::wait(CUstream_st* stream) {
  auto fail = [&] {
    return make_error("collective_failed", "tensor-parallel rank " + std::to_string(rank_) + " of " +
                                               std::to_string(world_size_) + ": " + failure_);
  };
  if (failed()) return fail();
  if (cudaError_t e = cudaEventRecord(event_, stream); e != cudaSuccess) {
    abort(std::string("cudaEventRecord: ") + cudaGetErrorString(e));
    return fail();
  }
  const auto start = Clock::now();
  const auto deadline = start + timeout_;
  for (int spins = 0;; ++spins) {
    cudaError_t e = cudaEventQuery(event_);
    if (e == cudaSuccess) return ok_status();
    if (e != cudaErrorNotReady) {
      abort(std::string("the step's kernels failed: ") + cudaGetErrorString(e));
      return fail();
    }
    // Checked every few hundred polls: the async-error query costs more than the event's.
    if (spins % 256 == 255) {
      ncclResult_t state = ncclSuccess;
      ncclCommGetAsyncError(comm_, &state);
      if (state != ncclSuccess && state != ncclInProgress) {
        abort("NCCL reported " + nccl_text(state) + " (a peer rank failed)");
        return fail();
      }
      const auto now = Clock::now();
      if (now >= deadline) {
        abort("a collective did not complete within " + std::to_string(timeout_.count()) +
              " ms: a peer rank died or stopped");
        return fail();
      }
      // A decode step is milliseconds: spin for the first 20 ms, then sleep a little.
      if (now - start > std::chrono::milliseconds(20)) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }
}

void NcclCommunicator::abort(const std::string& why) {
  if (!failed()) failure_ = why;
  if (comm_ != nullptr) {
    ncclCommAbort(comm_);  // the kernels waiting on peers return
    comm_ = nullptr;
  }
}

}  // namespace vela

#pragma once
// Host -> device copies through two pinned staging buffers: the host reads and
// converts into one while the other's copy runs, so loading a checkpoint overlaps
// mmap reads, dtype conversion and the transfer. Copies are enqueued on the
// model's stream and stay in order with everything else on it; the destructor
// waits for the last ones before freeing the buffers.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "common/result.h"

struct CUstream_st;
struct CUevent_st;

namespace vela::cuda {

class StagedUpload {
 public:
  static Result<std::unique_ptr<StagedUpload>> create(CUstream_st* stream, size_t buffer_bytes = size_t(64) << 20);
  ~StagedUpload();
  StagedUpload(const StagedUpload&) = delete;
  StagedUpload& operator=(const StagedUpload&) = delete;

  // The following writes fill device memory from dst on (pending ones are sent first).
  Status begin(void* dst);
  // Room in the current buffer: at most max_bytes, a multiple of `align` (>= align).
  Result<std::span<std::byte>> reserve(size_t max_bytes, size_t align);
  // The first `bytes` of the last reservation are written.
  Status commit(size_t bytes);
  // Sends what is pending (asynchronously).
  Status flush();
  uint64_t bytes_sent() const { return sent_; }

 private:
  StagedUpload() = default;
  CUstream_st* stream_ = nullptr;
  size_t capacity_ = 0;
  std::byte* buffers_[2] = {nullptr, nullptr};
  CUevent_st* done_[2] = {nullptr, nullptr};  // the last copy out of each buffer
  int current_ = 0;
  size_t filled_ = 0;        // bytes written into the current buffer
  std::byte* dst_ = nullptr; // where the current buffer's first byte goes
  uint64_t sent_ = 0;
};

}  // namespace vela::cuda

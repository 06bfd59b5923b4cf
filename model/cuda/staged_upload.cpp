#include "model/cuda/staged_upload.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <string>

namespace vela::cuda {

namespace {
Error cuda_error(const std::string& what, cudaError_t err) {
  return make_error("cuda_error", "weight upload: " + what + ": " + cudaGetErrorString(err));
}
}  // namespace

Result<std::unique_ptr<StagedUpload>> StagedUpload::create(CUstream_st* stream, size_t buffer_bytes) {
  auto up = std::unique_ptr<StagedUpload>(new StagedUpload());
  up->stream_ = stream;
  up->capacity_ = buffer_bytes;
  for (int i = 0; i < 2; ++i) {
    void* p = nullptr;
    if (cudaError_t err = cudaMallocHost(&p, buffer_bytes); err != cudaSuccess) return cuda_error("cudaMallocHost", err);
    up->buffers_[i] = static_cast<std::byte*>(p);
    cudaEvent_t ev = nullptr;
    if (cudaError_t err = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming); err != cudaSuccess)
      return cuda_error("cudaEventCreate", err);
    up->done_[i] = ev;
  }
  return up;
}

StagedUpload::~StagedUpload() {
  for (int i = 0; i < 2; ++i) {
    if (done_[i] != nullptr) {
      cudaEventSynchronize(done_[i]);  // the buffer's last copy has left it
      cudaEventDestroy(done_[i]);
    }
    if (buffers_[i] != nullptr) cudaFreeHost(buffers_[i]);
  }
}

Status StagedUpload::begin(void* dst) {
  auto flushed = flush();
  if (!flushed) return flushed;
  dst_ = static_cast<std::byte*>(dst);
  return ok_status();
}

Result<std::span<std::byte>> StagedUpload::reserve(size_t max_bytes, size_t align) {
  if (capacity_ - filled_ < align) {
    VELA_TRY(flush());
  }
  const size_t room = (capacity_ - filled_) / align * align;
  return std::span<std::byte>(buffers_[current_] + filled_, std::min(room, std::max(align, max_bytes / align * align)));
}

Status StagedUpload::commit(size_t bytes) {
  filled_ += bytes;
  return ok_status();
}

Status StagedUpload::flush() {
  if (filled_ == 0) return ok_status();
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_);
  if (cudaError_t err = cudaMemcpyAsync(dst_, buffers_[current_], filled_, cudaMemcpyHostToDevice, stream);
      err != cudaSuccess)
    return cuda_error("copy of " + std::to_string(filled_) + " bytes", err);
  if (cudaError_t err = cudaEventRecord(reinterpret_cast<cudaEvent_t>(done_[current_]), stream); err != cudaSuccess)
    return cuda_error("cudaEventRecord", err);
  dst_ += filled_;
  sent_ += filled_;
  filled_ = 0;
  current_ ^= 1;
  // The other buffer is reused only once its previous copy has finished.
  if (cudaError_t err = cudaEventSynchronize(reinterpret_cast<cudaEvent_t>(done_[current_])); err != cudaSuccess)
    return cuda_error("waiting for a staging buffer", err);
  return ok_status();
}

}  // namespace vela::cuda

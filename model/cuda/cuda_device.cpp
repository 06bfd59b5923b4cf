#include "model/cuda/cuda_device.h"

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <string_view>

#include "kernels/gemm.h"

namespace vela::cuda {

namespace {

std::string gib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / double(1ull << 30));
  return buf;
}

Error cuda_error(const std::string& what, cudaError_t err) {
  return make_error("cuda_error", what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

class DeviceOutOfMemory final : public std::bad_alloc {
 public:
  explicit DeviceOutOfMemory(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// On: P1's cascade decode steps 3.27-3.31 vs 3.49 ms with the passes serial, output
// +1.1-2.6% (docs/PERF_NOTES.md, eleventh session).
constexpr bool kSideStreamByDefault = true;

class CudaRuntime final : public DeviceRuntime {
 public:
  ~CudaRuntime() override {
    gemm_.reset();
    if (side_fork_ != nullptr) cudaEventDestroy(side_fork_);
    if (side_join_ != nullptr) cudaEventDestroy(side_join_);
    if (side_stream_ != nullptr) cudaStreamDestroy(side_stream_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  static Result<std::unique_ptr<DeviceRuntime>> open(int index, DType dtype) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) return cuda_error("cuda:" + std::to_string(index) + ": no usable CUDA device", err);
    if (index >= count)
      return make_error("bad_device", "cuda:" + std::to_string(index) + " does not exist: this machine has " +
                                          std::to_string(count) + " CUDA device(s)");
    if ((err = cudaSetDevice(index)) != cudaSuccess) return cuda_error("cudaSetDevice(" + std::to_string(index) + ")", err);
    cudaDeviceProp prop{};
    if ((err = cudaGetDeviceProperties(&prop, index)) != cudaSuccess) return cuda_error("cudaGetDeviceProperties", err);
    if (prop.major < 8)
      return make_error("bad_device", "cuda:" + std::to_string(index) + " (" + prop.name + ", sm_" +
                                          std::to_string(prop.major * 10 + prop.minor) +
                                          ") is older than sm_80: bf16 kernels need Ampere or newer");
    auto rt = std::unique_ptr<CudaRuntime>(new CudaRuntime());
    if ((err = cudaStreamCreateWithFlags(&rt->stream_, cudaStreamNonBlocking)) != cudaSuccess)
      return cuda_error("cudaStreamCreate", err);
    VELA_TRY_ASSIGN(rt->gemm_, kernels::Gemm::create());
    // The side stream at the device's highest priority (ops that fork work beside
    // their main kernel: DeviceContext). VELA_CASCADE_SIDE_STREAM=1 / 0 turns it on /
    // off; unset: kSideStreamByDefault.
    const char* side_env = std::getenv("VELA_CASCADE_SIDE_STREAM");
    if (side_env == nullptr ? kSideStreamByDefault : std::string_view(side_env) != "0") {
      int least = 0, greatest = 0;
      if ((err = cudaDeviceGetStreamPriorityRange(&least, &greatest)) != cudaSuccess)
        return cuda_error("cudaDeviceGetStreamPriorityRange", err);
      if ((err = cudaStreamCreateWithPriority(&rt->side_stream_, cudaStreamNonBlocking, greatest)) != cudaSuccess)
        return cuda_error("cudaStreamCreateWithPriority", err);
      if ((err = cudaEventCreateWithFlags(&rt->side_fork_, cudaEventDisableTiming)) != cudaSuccess ||
          (err = cudaEventCreateWithFlags(&rt->side_join_, cudaEventDisableTiming)) != cudaSuccess)
        return cuda_error("cudaEventCreate", err);
      rt->ctx_.side_stream = rt->side_stream_;
      rt->ctx_.side_fork = rt->side_fork_;
      rt->ctx_.side_join = rt->side_join_;
      rt->ctx_.side_priority = greatest;
    }
    rt->ctx_.device = Device{DeviceType::kCUDA, index};
    rt->ctx_.dtype = dtype;
    rt->ctx_.stream = rt->stream_;
    rt->ctx_.gemm = rt->gemm_.get();
    rt->name_ = prop.name;
    rt->total_ = prop.totalGlobalMem;
    return std::unique_ptr<DeviceRuntime>(std::move(rt));
  }

  const DeviceContext& context() const override { return ctx_; }
  Result<DeviceMemory> memory() const override { return memory_info(ctx_.device.index); }
  Status synchronize() override {
    cudaError_t err = cudaStreamSynchronize(stream_);
    if (err != cudaSuccess) return cuda_error(device_name(ctx_.device) + ": a kernel failed", err);
    return ok_status();
  }
  bool busy() const override { return cudaStreamQuery(stream_) == cudaErrorNotReady; }
  std::string description() const override {
    return name_ + " (" + device_name(ctx_.device) + ", " + gib(total_) + ", " +
           (ctx_.dtype == DType::kF32 ? "fp32" : "bf16") + ")";
  }

 private:
  CudaRuntime() = default;
  DeviceContext ctx_;
  cudaStream_t stream_ = nullptr;
  cudaStream_t side_stream_ = nullptr;
  cudaEvent_t side_fork_ = nullptr, side_join_ = nullptr;
  std::unique_ptr<kernels::Gemm> gemm_;
  std::string name_;
  size_t total_ = 0;
};

}  // namespace

Result<std::unique_ptr<DeviceRuntime>> open_runtime(int device_index, DType dtype) {
  return CudaRuntime::open(device_index, dtype);
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

Result<DeviceMemory> memory_info(int device_index) {
  int previous = 0;
  cudaGetDevice(&previous);
  cudaError_t err = cudaSetDevice(device_index);
  if (err != cudaSuccess) return cuda_error("cuda:" + std::to_string(device_index), err);
  size_t free_bytes = 0, total_bytes = 0;
  err = cudaMemGetInfo(&free_bytes, &total_bytes);
  cudaSetDevice(previous);
  if (err != cudaSuccess) return cuda_error("cudaMemGetInfo on cuda:" + std::to_string(device_index), err);
  return DeviceMemory{total_bytes, free_bytes};
}

void* allocate(size_t nbytes, int device_index, bool zero) {
  void* p = nullptr;
  const size_t rounded = nbytes == 0 ? 256 : (nbytes + 255) / 256 * 256;
  cudaError_t err = cudaMalloc(&p, rounded);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear it: an allocation failure is not sticky
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw DeviceOutOfMemory("cuda:" + std::to_string(device_index) + ": out of memory allocating " + gib(rounded) +
                            " (" + gib(free_bytes) + " free of " + gib(total_bytes) + "): " + cudaGetErrorString(err));
  }
  if (!zero) return p;
  // The memset runs on the legacy stream, which does not order against the model's
  // non-blocking stream: wait for it (allocations happen at startup, not per step).
  if ((err = cudaMemset(p, 0, rounded)) != cudaSuccess || (err = cudaDeviceSynchronize()) != cudaSuccess) {
    cudaFree(p);
    throw DeviceOutOfMemory("cuda:" + std::to_string(device_index) + ": cudaMemset failed: " + cudaGetErrorString(err));
  }
  return p;
}

void release(void* p) {
  if (p != nullptr) cudaFree(p);
}

Status copy(void* dst, const void* src, size_t nbytes, CUstream_st* stream) {
  if (nbytes == 0) return ok_status();
  cudaError_t err = cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  if (err != cudaSuccess) return cuda_error("copy of " + std::to_string(nbytes) + " bytes", err);
  return ok_status();
}

Status copy_async(void* dst, const void* src, size_t nbytes, CUstream_st* stream) {
  if (nbytes == 0) return ok_status();
  cudaError_t err = cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, stream);
  if (err != cudaSuccess) return cuda_error("async copy of " + std::to_string(nbytes) + " bytes", err);
  return ok_status();
}

Status copy_rows_async(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t row_bytes,
                             size_t rows, CUstream_st* stream) {
  if (rows == 0 || row_bytes == 0) return ok_status();
  cudaError_t err = cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, row_bytes, rows, cudaMemcpyDefault, stream);
  if (err != cudaSuccess) return cuda_error("copy of " + std::to_string(rows) + " rows", err);
  return ok_status();
}

Result<void*> allocate_pinned(size_t nbytes) {
  void* p = nullptr;
  cudaError_t err = cudaMallocHost(&p, nbytes == 0 ? 64 : nbytes);
  if (err != cudaSuccess) return cuda_error("cudaMallocHost(" + gib(nbytes) + ")", err);
  return p;
}

void release_pinned(void* p) {
  if (p != nullptr) cudaFreeHost(p);
}

}  // namespace vela::cuda

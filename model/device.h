#pragma once
// Where a model computes: the device, the dtype of weights and activations, and
// (on CUDA) the compute stream and GEMM handle. A DeviceRuntime owns those
// resources; the DeviceContext it hands out is a cheap value every op receives,
// so nothing reaches for a global "current stream".
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "model/dtype.h"
#include "model/tensor.h"

struct CUstream_st;  // cudaStream_t without the CUDA headers
struct CUevent_st;   // cudaEvent_t

namespace vela {

namespace kernels {
class Gemm;
}

struct DeviceContext {
  Device device;
  DType dtype = DType::kF32;         // weights and activations (CPU: F32; CUDA: BF16, or F32 if asked)
  CUstream_st* stream = nullptr;     // CUDA: every op and copy of the model runs on it
  kernels::Gemm* gemm = nullptr;     // CUDA: cuBLASLt handle, workspace, algorithm cache
  // CUDA: a second stream (the device's highest priority) and two events, forked from
  // and joined back to `stream` inside an op, for work that runs beside the op's main
  // kernel (the cascade's shared pass beside the own-key pass). Null: none, serial.
  CUstream_st* side_stream = nullptr;
  CUevent_st* side_fork = nullptr;
  CUevent_st* side_join = nullptr;
  int side_priority = 0;
  bool is_cuda() const { return device.type == DeviceType::kCUDA; }
  static DeviceContext cpu() { return {}; }
};

// "cpu" or "cuda:N" (also "cuda" = cuda:0).
Result<Device> parse_device(std::string_view name);
std::string device_name(Device device);

struct DeviceMemory {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
};

// How many CUDA devices this process sees (0 in a build without CUDA or on a machine
// without a GPU). Creates no context on any of them.
int cuda_device_count();

// Memory of a device without opening a runtime on it (CPU: RAM and available RAM).
Result<DeviceMemory> query_device_memory(Device device);

class DeviceRuntime {
 public:
  // dtype: "auto" (CPU float32, CUDA bfloat16), "float32" (both), "bfloat16" (CUDA);
  // anything the device cannot compute in is refused naming model.dtype and the value.
  static Result<std::unique_ptr<DeviceRuntime>> open(Device device, std::string_view dtype);
  virtual ~DeviceRuntime() = default;
  virtual const DeviceContext& context() const = 0;
  virtual Result<DeviceMemory> memory() const = 0;
  // Waits for the stream; an asynchronous fault of earlier work is reported here.
  virtual Status synchronize() = 0;
  // Whether work enqueued on the stream may still be running (the CPU: never; a
  // fault is not reported here but by synchronize()).
  virtual bool busy() const { return false; }
  virtual std::string description() const = 0;  // e.g. "NVIDIA H200 (cuda:0, 139.8 GiB)"
};

// Copies src into dst (same shape and dtype, both contiguous), on ctx's stream when
// a device is involved; synchronous when either side is pageable host memory.
Status copy_tensor(const Tensor& src, Tensor& dst, const DeviceContext& ctx);

// A copy of t on ctx's device in dtype (t is a contiguous host tensor of F32/BF16/F16).
Result<Tensor> to_device(const Tensor& host, DType dtype, const DeviceContext& ctx);

// A host tensor a device copies from and to without staging (page-locked for CUDA,
// plain memory for the CPU), for the step's inputs and outputs.
Result<Tensor> host_staging_tensor(int64_t num_elements, DType dtype, const DeviceContext& ctx);

// Enqueues a copy of nbytes on ctx's stream and returns at once (CPU: memcpy).
// Both sides must be device memory or host_staging_tensor memory.
Status copy_async(void* dst, const void* src, size_t nbytes, const DeviceContext& ctx);

// Enqueues a copy of `rows` rows of row_bytes each between buffers whose rows lie
// dst_pitch / src_pitch bytes apart (CPU: memcpy per row).
Status copy_rows_async(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t row_bytes,
                             size_t rows, const DeviceContext& ctx);

// A contiguous fp32 host copy of t (any device, F32/BF16/F16); for tests and checks.
Result<Tensor> to_host_f32(const Tensor& t, const DeviceContext& ctx);

}  // namespace vela

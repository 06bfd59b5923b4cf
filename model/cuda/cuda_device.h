#pragma once
// The CUDA side of model/device.h: the runtime (stream + cuBLASLt), device memory
// and copies. Compiled only with the CUDA backend; nothing outside model/ includes it.
#include <cstddef>
#include <memory>

#include "common/result.h"
#include "model/device.h"

namespace vela::cuda {

// dtype: the compute dtype, BF16 or F32 (DeviceRuntime::open has checked it).
Result<std::unique_ptr<DeviceRuntime>> open_runtime(int device_index, DType dtype);
Result<DeviceMemory> memory_info(int device_index);
int device_count();  // 0 when the driver finds none

// Zero-filled device memory on device_index; throws DeviceOutOfMemory (a
// std::bad_alloc whose what() names the device, the request and what is free).
// zero = false leaves device memory as it is (for tensors about to be overwritten
// whole; it also skips the device synchronisation the memset needs).
void* allocate(size_t nbytes, int device_index, bool zero = true);
void release(void* p);

// Copies nbytes (any direction) on stream and waits for it: weights, one-off
// tensors. The per-step input path uses pinned buffers and async copies instead.
Status copy(void* dst, const void* src, size_t nbytes, CUstream_st* stream);

// Enqueues a copy on stream without waiting.
Status copy_async(void* dst, const void* src, size_t nbytes, CUstream_st* stream);

Status copy_rows_async(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t row_bytes,
                             size_t rows, CUstream_st* stream);

// Pinned host memory (for the step's inputs and outputs).
Result<void*> allocate_pinned(size_t nbytes);
void release_pinned(void* p);

}  // namespace vela::cuda

#pragma once
// Measures the device's two ceilings (BENCHMARKS.md): HBM bandwidth through a large
// device-to-device copy (bytes read + written), and the bf16 GEMM rate through cuBLAS.
#include <cstddef>
#include <string>

#include "common/result.h"

namespace vela::cuda {

struct DeviceInfo {
  std::string name;
  size_t total_memory_bytes = 0;
  size_t free_memory_bytes = 0;
  int sm_count = 0;
  int compute_capability = 0;  // e.g. 90
};

Result<DeviceInfo> device_info(int device);

// Copies `bytes` device-to-device `iters` times; returns (2 x bytes x iters) / seconds.
Result<double> measure_copy_bandwidth(int device, size_t bytes, int iters);

// C[m,n] = A[m,k] B[k,n] in bf16 with fp32 accumulation, `iters` times; returns FLOP/s.
Result<double> measure_bf16_gemm(int device, int m, int n, int k, int iters);

}  // namespace vela::cuda

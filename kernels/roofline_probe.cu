#include "kernels/roofline_probe.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <string>

namespace vela::cuda {
namespace {

Error cuda_error(const char* what, cudaError_t e) {
  return make_error("cuda", std::string(what) + ": " + cudaGetErrorString(e));
}

// Owns device buffers and events so every early return frees them.
struct Scratch {
  void* a = nullptr;
  void* b = nullptr;
  void* c = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  ~Scratch() {
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
};

// The value fill_bf16 writes at index i (host and device agree, so the host can
// check the GEMM's output without copying the inputs back).
__host__ __device__ inline float fill_value(size_t i, float scale) {
  return scale * static_cast<float>((i * 2654435761u) % 1000u) / 1000.0f;
}

__global__ void fill_bf16(__nv_bfloat16* p, size_t n, float scale) {
  size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  for (; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x) p[i] = __float2bfloat16(fill_value(i, scale));
}

}  // namespace

Result<DeviceInfo> device_info(int device) {
  cudaDeviceProp prop{};
  if (auto e = cudaGetDeviceProperties(&prop, device); e != cudaSuccess) return cuda_error("cudaGetDeviceProperties", e);
  if (auto e = cudaSetDevice(device); e != cudaSuccess) return cuda_error("cudaSetDevice", e);
  DeviceInfo info;
  info.name = prop.name;
  info.sm_count = prop.multiProcessorCount;
  info.compute_capability = prop.major * 10 + prop.minor;
  if (auto e = cudaMemGetInfo(&info.free_memory_bytes, &info.total_memory_bytes); e != cudaSuccess)
    return cuda_error("cudaMemGetInfo", e);
  return info;
}

Result<double> measure_copy_bandwidth(int device, size_t bytes, int iters) {
  if (auto e = cudaSetDevice(device); e != cudaSuccess) return cuda_error("cudaSetDevice", e);
  Scratch s;
  if (auto e = cudaMalloc(&s.a, bytes); e != cudaSuccess) return cuda_error("cudaMalloc", e);
  if (auto e = cudaMalloc(&s.b, bytes); e != cudaSuccess) return cuda_error("cudaMalloc", e);
  cudaMemset(s.a, 1, bytes);
  cudaEventCreate(&s.start);
  cudaEventCreate(&s.stop);
  cudaMemcpyAsync(s.b, s.a, bytes, cudaMemcpyDeviceToDevice);  // warm-up
  cudaEventRecord(s.start);
  for (int i = 0; i < iters; ++i) cudaMemcpyAsync(i % 2 ? s.a : s.b, i % 2 ? s.b : s.a, bytes, cudaMemcpyDeviceToDevice);
  cudaEventRecord(s.stop);
  if (auto e = cudaEventSynchronize(s.stop); e != cudaSuccess) return cuda_error("copy", e);
  float ms = 0;
  cudaEventElapsedTime(&ms, s.start, s.stop);
  // Correct first: the destination must hold the source's bytes (b was never set
  // except by the copies, so a copy that did nothing leaves it unwritten).
  unsigned char probe[2] = {0, 0};
  if (auto e = cudaMemcpy(&probe[0], s.b, 1, cudaMemcpyDeviceToHost); e != cudaSuccess) return cuda_error("copy check", e);
  if (auto e = cudaMemcpy(&probe[1], static_cast<char*>(s.b) + bytes - 1, 1, cudaMemcpyDeviceToHost); e != cudaSuccess)
    return cuda_error("copy check", e);
  if (probe[0] != 1 || probe[1] != 1) return make_error("probe", "device copy produced wrong bytes");
  return 2.0 * static_cast<double>(bytes) * iters / (ms / 1e3);
}

Result<double> measure_bf16_gemm(int device, int m, int n, int k, int iters) {
  if (auto e = cudaSetDevice(device); e != cudaSuccess) return cuda_error("cudaSetDevice", e);
  Scratch s;
  const size_t sa = size_t(m) * k, sb = size_t(k) * n, sc = size_t(m) * n;
  if (auto e = cudaMalloc(&s.a, sa * 2); e != cudaSuccess) return cuda_error("cudaMalloc", e);
  if (auto e = cudaMalloc(&s.b, sb * 2); e != cudaSuccess) return cuda_error("cudaMalloc", e);
  if (auto e = cudaMalloc(&s.c, sc * 2); e != cudaSuccess) return cuda_error("cudaMalloc", e);
  fill_bf16<<<1024, 256>>>(static_cast<__nv_bfloat16*>(s.a), sa, 1.0f);
  fill_bf16<<<1024, 256>>>(static_cast<__nv_bfloat16*>(s.b), sb, 0.5f);
  cublasHandle_t handle = nullptr;
  if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) return make_error("cublas", "cublasCreate failed");
  const float alpha = 1.0f, beta = 0.0f;
  auto gemm = [&]() {
    return cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, s.a, CUDA_R_16BF, m, s.b, CUDA_R_16BF, k,
                        &beta, s.c, CUDA_R_16BF, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  };
  for (int i = 0; i < 3; ++i) {
    if (auto st = gemm(); st != CUBLAS_STATUS_SUCCESS) {
      cublasDestroy(handle);
      return make_error("cublas", "cublasGemmEx failed with status " + std::to_string(static_cast<int>(st)));
    }
  }
  cudaEventCreate(&s.start);
  cudaEventCreate(&s.stop);
  cudaEventRecord(s.start);
  for (int i = 0; i < iters; ++i) gemm();
  cudaEventRecord(s.stop);
  auto e = cudaEventSynchronize(s.stop);
  cublasDestroy(handle);
  if (e != cudaSuccess) return cuda_error("gemm", e);
  if (auto last = cudaGetLastError(); last != cudaSuccess) return cuda_error("gemm launch", last);
  float ms = 0;
  cudaEventElapsedTime(&ms, s.start, s.stop);
  // Correct first: a few entries of C (column-major, bf16) against a float64 host
  // dot product of the same bf16-rounded inputs; bf16 output rounding allows ~0.4%.
  const int probes[][2] = {{0, 0}, {m - 1, n - 1}, {m / 3, n / 7}, {m / 2 + 1, 5}};
  for (const auto& ij : probes) {
    const size_t i = static_cast<size_t>(ij[0]), j = static_cast<size_t>(ij[1]);
    __nv_bfloat16 got_bf16;
    if (auto ce = cudaMemcpy(&got_bf16, static_cast<__nv_bfloat16*>(s.c) + i + j * m, sizeof got_bf16,
                             cudaMemcpyDeviceToHost); ce != cudaSuccess)
      return cuda_error("gemm check", ce);
    double want = 0;
    for (size_t kk = 0; kk < static_cast<size_t>(k); ++kk)
      want += static_cast<double>(__bfloat162float(__float2bfloat16(fill_value(i + kk * m, 1.0f)))) *
              static_cast<double>(__bfloat162float(__float2bfloat16(fill_value(kk + j * k, 0.5f))));
    const double got = __bfloat162float(got_bf16);
    if (!(std::fabs(got - want) <= 1e-2 * std::fabs(want) + 1e-3))
      return make_error("probe", "cuBLAS GEMM check failed at (" + std::to_string(i) + ", " + std::to_string(j) +
                                     "): got " + std::to_string(got) + ", expected " + std::to_string(want));
  }
  return 2.0 * m * double(n) * k * iters / (ms / 1e3);
}

}  // namespace vela::cuda

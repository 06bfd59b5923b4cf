// L2 prefetch of a weight the step reads next, issued while the kernels before it
// leave HBM idle (kernels/elementwise.h: l2_prefetch). One block per SM, each thread
// a few cp.async.bulk.prefetch.L2 requests of kPrefetchChunk bytes; the requests are
// fire-and-forget, so the kernel ends as soon as the kernel before it has (PDL:
// every block waits for it before exiting, so the next kernel's wait still covers
// everything before this one).
#include <algorithm>
#include <cstdint>

#include "kernels/elementwise.h"
#include "kernels/launch.cuh"

namespace vela::kernels {
namespace {

constexpr int64_t kPrefetchChunk = 16 * 1024;
constexpr int kPrefetchThreads = 32;

__global__ void __launch_bounds__(kPrefetchThreads) l2_prefetch_kernel(const char* base, int64_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const int64_t threads = int64_t(gridDim.x) * blockDim.x;
  for (int64_t off = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * kPrefetchChunk; off < bytes;
       off += threads * kPrefetchChunk) {
    const uint32_t n = uint32_t(bytes - off < kPrefetchChunk ? bytes - off : kPrefetchChunk);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(base + off), "r"(n) : "memory");
  }
#endif
  grid_dependency_wait();
  allow_dependents();
}

}  // namespace

cudaError_t l2_prefetch(const void* ptr, size_t bytes, cudaStream_t stream) {
  bytes &= ~size_t(15);  // the bulk prefetch moves multiples of 16 bytes
  if (ptr == nullptr || bytes == 0 || device_major() < 9) return cudaSuccess;  // a hint: nothing to do
  if (reinterpret_cast<uintptr_t>(ptr) % 16 != 0) return cudaErrorInvalidValue;
  static const int sms = [] {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
      return 132;
    return n > 0 ? n : 132;
  }();
  const int64_t chunks = (int64_t(bytes) + kPrefetchChunk - 1) / kPrefetchChunk;
  const int blocks = int(std::min<int64_t>(sms, (chunks + kPrefetchThreads - 1) / kPrefetchThreads));
  return launch_kernel(l2_prefetch_kernel, dim3(blocks), dim3(kPrefetchThreads), 0, stream,
                       static_cast<const char*>(ptr), int64_t(bytes));
}

}  // namespace vela::kernels

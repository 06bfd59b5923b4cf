#include <atomic>
#include <cstdlib>
#include <cstring>

#include "kernels/launch.cuh"

namespace vela::kernels {

int device_major() {
  static const int major = [] {
    int device = 0, m = 0;
    if (cudaGetDevice(&device) != cudaSuccess) return 0;
    if (cudaDeviceGetAttribute(&m, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return 0;
    return m;
  }();
  return major;
}

int sm_count() {
  static std::atomic<int> cached[16] = {};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 132;
  if (dev >= 0 && dev < 16) {
    int v = cached[dev].load(std::memory_order_relaxed);
    if (v > 0) return v;
  }
  int n = 0;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n <= 0) n = 132;
  if (dev >= 0 && dev < 16) cached[dev].store(n, std::memory_order_relaxed);
  return n;
}

bool pdl_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("VELA_PDL");
    if (env != nullptr && std::strcmp(env, "0") == 0) return false;
    return device_major() >= 9;
  }();
  return enabled;
}

}  // namespace vela::kernels

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

bool pdl_enabled() {
  static const bool enabled = [] {
    const char* env = std::getenv("VELA_PDL");
    if (env != nullptr && std::strcmp(env, "0") == 0) return false;
    return device_major() >= 9;
  }();
  return enabled;
}

}  // namespace vela::kernels

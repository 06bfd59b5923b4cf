#pragma once
// cp.async (sm_80+): 16-byte global -> shared copies that bypass the registers, in
// commit groups a thread waits for. The attention kernels use them.
#include <cstdint>

namespace vela::kernels {

// 16-byte async copy global -> shared; src_bytes == 0 writes zeros (ptr still valid).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N));
}

}  // namespace vela::kernels

#pragma once
// Hopper's tensor memory accelerator (TMA, sm_90) and the shared-memory mbarriers
// its copies complete on: a tile of a 2-D row-major tensor lands in shared memory in
// wgmma's 128-byte swizzle layout from one instruction of one thread, the barrier
// counting the bytes in, so the threads that consume a stage wait on a barrier
// instead of a block-wide __syncthreads. Rows or columns past the tensor's edge land
// as zeros (and still count as bytes). The skinny GEMM's pipeline uses these.
//
// Host side: encode_rows_sw128 builds the CUtensorMap (the driver's
// cuTensorMapEncodeTiled, reached through the runtime's entry-point query, so nothing
// links libcuda); it is passed to the kernel as a __grid_constant__ parameter, and a
// CUDA graph captures it with the launch.
#include <cuda.h>

#include <cstdint>

namespace vela::kernels::tma {

// A CUtensorMap over a row-major bf16 matrix [rows, cols] whose rows lie row_stride
// elements apart, read in boxes of 64 columns (128 bytes: one swizzle row) by
// box_rows rows, in the 128-byte swizzle. False when the driver refuses it (base not
// 16-byte aligned, a stride not a multiple of 16 bytes, box_rows > 256) or has no
// such entry point.
bool encode_rows_sw128(CUtensorMap* map, const void* base, int64_t rows, int64_t cols, int64_t row_stride,
                       uint32_t box_rows);

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(bar)), "r"(count) : "memory");
}
// After the inits, before any other thread or the TMA unit uses the barriers (then a
// __syncthreads).
__device__ __forceinline__ void mbar_init_fence() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}
// One arrival that also expects `bytes` more to complete on the barrier (the TMA
// copies issued on it next).
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(bar)), "r"(bytes) : "memory");
#endif
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_u32(bar)) : "memory");
}
// Waits until the barrier's phase of this parity (0, 1, 0, ... for its 1st, 2nd, 3rd
// completion) has completed.
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "{\n.reg .pred p;\n"
      "WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra WAIT;\n"
      "}\n" ::"r"(smem_u32(bar)),
      "r"(parity)
      : "memory");
#endif
}

__device__ __forceinline__ void prefetch_map(const CUtensorMap* map) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
#endif
}

// The box at (column c0, row r0) of `map` into shared memory at dst (1,024-aligned for
// the swizzle), completing its bytes on bar.
__device__ __forceinline__ void load_box(void* dst, const CUtensorMap* map, uint64_t* bar, int32_t c0, int32_t r0) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];" ::"r"(
          smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_u32(bar)), "r"(c0), "r"(r0)
      : "memory");
#endif
}

}  // namespace vela::kernels::tma

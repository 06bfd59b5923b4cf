#pragma once
// 16-byte vector access for the memory-bound kernels: 8 bf16 (one uint4) or
// 8 fp32 (two float4) per thread, converted to / from fp32 registers; scalar
// to_f32 / from_f32 and bf16-pair helpers, so one kernel source serves both
// element types.
// A kernel takes the vector path only when vec8_ok() holds for all its pointers
// and element counts / strides, and falls back to scalar code otherwise.
#include <cuda_bf16.h>

#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "kernels/common.h"

namespace vela::kernels {

inline constexpr int kVec = 8;  // elements per vector access (16 bytes of bf16, 32 of fp32)

// True when p is 16-byte aligned (host or device).
__host__ __device__ inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// True when every pointer is 16-byte aligned and every count (elements) is a
// multiple of 8, so that each row start of each view stays 16-byte aligned.
inline bool vec8_ok(std::initializer_list<const void*> ptrs, std::initializer_list<int64_t> counts) {
  for (const void* p : ptrs)
    if (!aligned16(p)) return false;
  for (int64_t c : counts)
    if (c % kVec != 0) return false;
  return true;
}

__device__ inline float to_f32(bf16 v) { return __bfloat162float(v); }
__device__ inline float to_f32(float v) { return v; }

// fp32 to the element type T (bf16: round to nearest even).
template <class T>
__device__ inline T from_f32(float v) {
  if constexpr (std::is_same_v<T, float>) return v;
  else return __float2bfloat16(v);
}

// N bf16 (N even) read / written as bf16 pairs: p must be 4-byte aligned.
template <int N>
__device__ inline void load_bf16_pairs(const bf16* p, float (&f)[N]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(p);
#pragma unroll
  for (int i = 0; i < N / 2; ++i) {
    const float2 v = __bfloat1622float2(h[i]);
    f[2 * i] = v.x;
    f[2 * i + 1] = v.y;
  }
}

template <int N>
__device__ inline void store_bf16_pairs(bf16* p, const float (&f)[N]) {
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(p);
#pragma unroll
  for (int i = 0; i < N / 2; ++i) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
}

// Eight bf16 held in one 16-byte register load -> eight floats.
__device__ inline void unpack8(const uint4& raw, float (&f)[kVec]) {
  load_bf16_pairs<kVec>(reinterpret_cast<const bf16*>(&raw), f);
}

__device__ inline void load8(const bf16* p, float (&f)[kVec]) { unpack8(*reinterpret_cast<const uint4*>(p), f); }

__device__ inline void store8(bf16* p, const float (&f)[kVec]) {
  uint4 raw;
  store_bf16_pairs<kVec>(reinterpret_cast<bf16*>(&raw), f);
  *reinterpret_cast<uint4*>(p) = raw;
}

__device__ inline void load8(const float* p, float (&f)[kVec]) {
  float4 a = reinterpret_cast<const float4*>(p)[0];
  float4 b = reinterpret_cast<const float4*>(p)[1];
  f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w;
  f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

__device__ inline void store8(float* p, const float (&f)[kVec]) {
  reinterpret_cast<float4*>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
}

// Copies 8 elements without converting (bf16: one uint4; float: two float4).
__device__ inline void copy8(bf16* dst, const bf16* src) {
  *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
}
__device__ inline void copy8(float* dst, const float* src) {
  reinterpret_cast<float4*>(dst)[0] = reinterpret_cast<const float4*>(src)[0];
  reinterpret_cast<float4*>(dst)[1] = reinterpret_cast<const float4*>(src)[1];
}

// Writes 8 zeros.
template <class T>
__device__ inline void zero8(T* dst) {
  const float z[kVec] = {};
  store8(dst, z);
}

// Threads for a row of `units` work items: a multiple of 32 in [32, max_threads].
inline int threads_for(int64_t units, int max_threads) {
  int64_t t = (units + 31) / 32 * 32;
  return int(t < 32 ? 32 : (t > max_threads ? max_threads : t));
}

}  // namespace vela::kernels

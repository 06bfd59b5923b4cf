// Rotary position embedding of q and k in place, a block per token. A work unit
// is a slice of one head: the vector paths handle 8 elements of each neox half
// (16 in all) or 8 interleaved elements (4 pairs); the scalar path one pair.
#include "kernels/elementwise.h"
#include "kernels/launch.cuh"
#include "kernels/vec.cuh"

namespace vela::kernels {
namespace {

constexpr int kMaxThreads = 256;

enum class RopePath { kScalar, kNeoxVec8, kInterleavedVec8 };

template <RopePath kPath>
constexpr int64_t units_per_head(int64_t head_dim) {
  if constexpr (kPath == RopePath::kNeoxVec8) return head_dim / 2 / kVec;
  else if constexpr (kPath == RopePath::kInterleavedVec8) return head_dim / kVec;
  else return head_dim / 2;
}

template <class T, RopePath kPath>
__global__ void rope_kernel(RopeParams<T> p) {
  grid_dependency_wait();
  allow_dependents();
  const int64_t t = blockIdx.x, hd = p.head_dim, half = hd / 2;
  const float* cos_row = p.cos_sin + int64_t(p.positions[t]) * hd;
  const float* sin_row = cos_row + half;
  const int64_t per_head = units_per_head<kPath>(hd);
  const int64_t units = (p.num_q_heads + p.num_kv_heads) * per_head;
  for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
    const int64_t head = u / per_head, j = u % per_head;
    T* v = head < p.num_q_heads ? p.q + t * p.q_token_stride + head * hd
                                   : p.k + t * p.k_token_stride + (head - p.num_q_heads) * hd;
    if constexpr (kPath == RopePath::kNeoxVec8) {
      const int64_t i = j * kVec;  // element i of the first half pairs with half + i
      float a[kVec], b[kVec], c[kVec], s[kVec];
      load8(v + i, a);
      load8(v + half + i, b);
      load8(cos_row + i, c);
      load8(sin_row + i, s);
#pragma unroll
      for (int e = 0; e < kVec; ++e) {
        const float x1 = a[e], x2 = b[e];
        a[e] = x1 * c[e] - x2 * s[e];
        b[e] = x2 * c[e] + x1 * s[e];
      }
      store8(v + i, a);
      store8(v + half + i, b);
    } else if constexpr (kPath == RopePath::kInterleavedVec8) {
      const int64_t e0 = j * kVec;  // elements e0..e0+7 are pairs e0/2..e0/2+3
      float x[kVec];
      load8(v + e0, x);
      const float4 c = *reinterpret_cast<const float4*>(cos_row + e0 / 2);
      const float4 s = *reinterpret_cast<const float4*>(sin_row + e0 / 2);
      const float cc[4] = {c.x, c.y, c.z, c.w}, ss[4] = {s.x, s.y, s.z, s.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float x1 = x[2 * e], x2 = x[2 * e + 1];
        x[2 * e] = x1 * cc[e] - x2 * ss[e];
        x[2 * e + 1] = x2 * cc[e] + x1 * ss[e];
      }
      store8(v + e0, x);
    } else {
      T* a = p.interleaved ? v + 2 * j : v + j;
      T* b = p.interleaved ? v + 2 * j + 1 : v + half + j;
      const float x1 = to_f32(*a), x2 = to_f32(*b), c = cos_row[j], s = sin_row[j];
      *a = from_f32<T>(x1 * c - x2 * s);
      *b = from_f32<T>(x2 * c + x1 * s);
    }
  }
}

template <class T, RopePath kPath>
cudaError_t launch(const RopeParams<T>& p, cudaStream_t stream) {
  const int64_t units = (p.num_q_heads + p.num_kv_heads) * units_per_head<kPath>(p.head_dim);
  if (units == 0) return cudaSuccess;
  launch_kernel(rope_kernel<T, kPath>, dim3(unsigned(p.num_tokens)), dim3(threads_for(units, kMaxThreads)), 0, stream, p);
  return cudaGetLastError();
}

}  // namespace

template <class T>
cudaError_t rope(const RopeParams<T>& p, cudaStream_t stream) {
  if (p.num_tokens == 0) return cudaSuccess;
  // Every row of q, k and cos_sin starts 16-byte aligned when the bases are and
  // head_dim and the token strides are multiples of 8 (cos_sin rows are hd floats).
  const bool vec = vec8_ok({p.q, p.k, p.cos_sin}, {p.head_dim, p.q_token_stride, p.k_token_stride});
  if (vec && p.interleaved) return launch<T, RopePath::kInterleavedVec8>(p, stream);
  if (vec && (p.head_dim / 2) % kVec == 0) return launch<T, RopePath::kNeoxVec8>(p, stream);
  return launch<T, RopePath::kScalar>(p, stream);
}

template cudaError_t rope(const RopeParams<bf16>&, cudaStream_t);
template cudaError_t rope(const RopeParams<float>&, cudaStream_t);

}  // namespace vela::kernels

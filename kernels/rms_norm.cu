// RMSNorm over rows of a token-major head view, and the fused residual-add RMSNorm.
// Two passes over each row: sum of squares (reduced across the warp or block),
// then scale and store. Each thread touches the same elements in both passes,
// so x == out (in place) is safe and the second pass reads its own writes.
#include "kernels/elementwise.h"
#include "kernels/reduce.cuh"
#include "kernels/launch.cuh"
#include "kernels/vec.cuh"

namespace vela::kernels {
namespace {

constexpr int64_t kMaxWarpRowDim = 1024;  // up to this dim a warp owns a row (q/k norms)
constexpr int kWarpRowBlockThreads = 256;  // 8 rows per block in warp-per-row mode
constexpr int kMaxRowThreads = 512;        // block-per-row mode

// This thread's share of the row's sum of squares; kVec8 reads 8 at a time.
template <bool kVec8, class T>
__device__ float partial_sum_sq(const T* x, int64_t dim, int tid, int nthreads) {
  float ss = 0.0f;
  if constexpr (kVec8) {
    for (int64_t i = int64_t(tid) * kVec; i < dim; i += int64_t(nthreads) * kVec) {
      float f[kVec];
      load8(x + i, f);
#pragma unroll
      for (int j = 0; j < kVec; ++j) ss += f[j] * f[j];
    }
  } else {
    for (int64_t i = tid; i < dim; i += nthreads) {
      float v = to_f32(x[i]);
      ss += v * v;
    }
  }
  return ss;
}

// out[i] = w[i] * (src[i] * inv), the CPU op's order of operations.
template <bool kVec8, class S, class T>
__device__ void scale_row(const S* src, const T* w, float inv, int64_t dim, int tid, int nthreads, T* out) {
  if constexpr (kVec8) {
    for (int64_t i = int64_t(tid) * kVec; i < dim; i += int64_t(nthreads) * kVec) {
      float f[kVec], g[kVec];
      load8(src + i, f);
      load8(w + i, g);
#pragma unroll
      for (int j = 0; j < kVec; ++j) f[j] = g[j] * (f[j] * inv);
      store8(out + i, f);
    }
  } else {
    for (int64_t i = tid; i < dim; i += nthreads) out[i] = from_f32<T>(to_f32(w[i]) * (to_f32(src[i]) * inv));
  }
}

// kWarpRow: a warp per row (blockDim.x / 32 rows per block); else a block per row.
template <class T, bool kVec8, bool kWarpRow>
__global__ void rms_norm_kernel(RmsNormParams<T> p) {
  grid_dependency_wait();
  allow_dependents();
  const int64_t rows = p.num_tokens * p.num_heads;
  int64_t row;
  int tid, nthreads;
  if constexpr (kWarpRow) {
    row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
    tid = threadIdx.x & 31;
    nthreads = 32;
    if (row >= rows) return;  // whole warps leave; only warp-level sync below
  } else {
    row = blockIdx.x;
    tid = threadIdx.x;
    nthreads = blockDim.x;
  }
  const int64_t t = row / p.num_heads, h = row % p.num_heads;
  const T* x = p.x + t * p.x_token_stride + h * p.dim;
  T* out = p.out + t * p.out_token_stride + h * p.dim;
  float ss = partial_sum_sq<kVec8>(x, p.dim, tid, nthreads);
  if constexpr (kWarpRow)
    ss = warp_sum(ss);
  else
    ss = block_sum(ss);
  const float inv = rsqrtf(ss / float(p.dim) + p.eps);
  scale_row<kVec8>(x, p.weight, inv, p.dim, tid, nthreads, out);
}

// A block per row: residual (fp32) = [residual +] x; x = rms_norm(residual) * w.
template <class T, bool kVec8>
__global__ void add_rms_norm_kernel(AddRmsNormParams<T> p) {
  grid_dependency_wait();
  allow_dependents();
  const int64_t t = blockIdx.x;
  const int tid = threadIdx.x, nthreads = blockDim.x;
  T* x = p.x + t * p.x_token_stride;
  float* res = p.residual + t * p.dim;
  float ss = 0.0f;
  if constexpr (kVec8) {
    for (int64_t i = int64_t(tid) * kVec; i < p.dim; i += int64_t(nthreads) * kVec) {
      float xv[kVec], rv[kVec];
      load8(x + i, xv);
      if (p.first_layer) {
#pragma unroll
        for (int j = 0; j < kVec; ++j) rv[j] = xv[j];
      } else {
        load8(res + i, rv);
#pragma unroll
        for (int j = 0; j < kVec; ++j) rv[j] += xv[j];
      }
      store8(res + i, rv);
#pragma unroll
      for (int j = 0; j < kVec; ++j) ss += rv[j] * rv[j];
    }
  } else {
    for (int64_t i = tid; i < p.dim; i += nthreads) {
      float r = to_f32(x[i]);
      if (!p.first_layer) r = res[i] + r;
      res[i] = r;
      ss += r * r;
    }
  }
  ss = block_sum(ss);
  const float inv = rsqrtf(ss / float(p.dim) + p.eps);
  scale_row<kVec8>(static_cast<const float*>(res), p.weight, inv, p.dim, tid, nthreads, x);
}

}  // namespace

template <class T>
cudaError_t rms_norm(const RmsNormParams<T>& p, cudaStream_t stream) {
  const int64_t rows = p.num_tokens * p.num_heads;
  if (rows == 0 || p.dim == 0) return cudaSuccess;
  const bool vec = vec8_ok({p.x, p.out, p.weight}, {p.dim, p.x_token_stride, p.out_token_stride});
  if (p.dim <= kMaxWarpRowDim) {
    const int rows_per_block = kWarpRowBlockThreads / 32;
    const dim3 grid(unsigned((rows + rows_per_block - 1) / rows_per_block));
    if (vec)
      launch_kernel(rms_norm_kernel<T, true, true>, dim3(grid), dim3(kWarpRowBlockThreads), 0, stream, p);
    else
      launch_kernel(rms_norm_kernel<T, false, true>, dim3(grid), dim3(kWarpRowBlockThreads), 0, stream, p);
  } else {
    const int threads = threads_for(vec ? p.dim / kVec : p.dim, kMaxRowThreads);
    if (vec)
      launch_kernel(rms_norm_kernel<T, true, false>, dim3(unsigned(rows)), dim3(threads), 0, stream, p);
    else
      launch_kernel(rms_norm_kernel<T, false, false>, dim3(unsigned(rows)), dim3(threads), 0, stream, p);
  }
  return cudaGetLastError();
}

template <class T>
cudaError_t add_rms_norm(const AddRmsNormParams<T>& p, cudaStream_t stream) {
  if (p.num_tokens == 0 || p.dim == 0) return cudaSuccess;
  const bool vec = vec8_ok({p.x, p.residual, p.weight}, {p.dim, p.x_token_stride});
  const int threads = threads_for(vec ? p.dim / kVec : p.dim, kMaxRowThreads);
  if (vec)
    launch_kernel(add_rms_norm_kernel<T, true>, dim3(unsigned(p.num_tokens)), dim3(threads), 0, stream, p);
  else
    launch_kernel(add_rms_norm_kernel<T, false>, dim3(unsigned(p.num_tokens)), dim3(threads), 0, stream, p);
  return cudaGetLastError();
}

template cudaError_t rms_norm(const RmsNormParams<bf16>&, cudaStream_t);
template cudaError_t rms_norm(const RmsNormParams<float>&, cudaStream_t);
template cudaError_t add_rms_norm(const AddRmsNormParams<bf16>&, cudaStream_t);
template cudaError_t add_rms_norm(const AddRmsNormParams<float>&, cudaStream_t);

}  // namespace vela::kernels

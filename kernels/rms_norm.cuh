#pragma once
// The fused residual-add RMSNorm of one token's row, as a device function: the
// add_rms_norm kernel runs it a block per token, and the GEMV's last block runs it
// after the projection that feeds the residual stream (kernels/gemv.cu).
#include "kernels/elementwise.h"
#include "kernels/reduce.cuh"
#include "kernels/vec.cuh"

namespace vela::kernels {

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

// Token t: residual (fp32) = [residual +] x; x = rms_norm(residual) * w. Every
// thread of the block calls it (block_sum).
template <class T, bool kVec8>
__device__ void add_rms_norm_row(const AddRmsNormParams<T>& p, int64_t t) {
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

}  // namespace vela::kernels

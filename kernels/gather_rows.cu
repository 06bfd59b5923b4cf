// Row gather (e.g. the last token of each sequence before the LM head): a block
// per output row copies x[rows[i]].
#include "kernels/elementwise.h"
#include "kernels/launch.cuh"
#include "kernels/vec.cuh"

namespace vela::kernels {
namespace {

constexpr int kMaxThreads = 256;

template <class T, bool kVec8>
__global__ void gather_rows_kernel(GatherRowsParams<T> p) {
  grid_dependency_wait();
  allow_dependents();
  const int64_t r = blockIdx.x;
  const T* src = p.x + int64_t(p.rows[r]) * p.x_token_stride;
  T* dst = p.out + r * p.dim;
  if constexpr (kVec8) {
    for (int64_t i = int64_t(threadIdx.x) * kVec; i < p.dim; i += int64_t(blockDim.x) * kVec) copy8(dst + i, src + i);
  } else {
    for (int64_t i = threadIdx.x; i < p.dim; i += blockDim.x) dst[i] = src[i];
  }
}

}  // namespace

template <class T>
cudaError_t gather_rows(const GatherRowsParams<T>& p, cudaStream_t stream) {
  if (p.num_rows == 0 || p.dim == 0) return cudaSuccess;
  const bool vec = vec8_ok({p.x, p.out}, {p.dim, p.x_token_stride});
  const int threads = threads_for(vec ? p.dim / kVec : p.dim, kMaxThreads);
  if (vec)
    launch_kernel(gather_rows_kernel<T, true>, dim3(unsigned(p.num_rows)), dim3(threads), 0, stream, p);
  else
    launch_kernel(gather_rows_kernel<T, false>, dim3(unsigned(p.num_rows)), dim3(threads), 0, stream, p);
  return cudaGetLastError();
}

template cudaError_t gather_rows(const GatherRowsParams<bf16>&, cudaStream_t);
template cudaError_t gather_rows(const GatherRowsParams<float>&, cudaStream_t);

}  // namespace vela::kernels

#pragma once
// Kernel launches with Programmatic Dependent Launch (PDL, sm_90+): a kernel
// launched through launch_kernel() may be scheduled while the kernel before it
// in the stream is still finishing, so the boundary between two short kernels
// (launch, ramp, tail: ~2-4 us each at batch 1) overlaps instead of adding up.
//
// The contract every kernel launched here keeps (checked on the GPU by the
// graph-replay and model tests, which compare against the eager and CPU paths):
//   - before grid_dependency_wait() it reads only what no kernel of the step
//     writes (weights), and writes nothing;
//   - every block calls grid_dependency_wait() before it exits or touches an
//     activation, so a kernel never completes before the one it depends on;
//   - allow_dependents() comes after the wait: at most two kernels overlap,
//     the one running and the next one's weight prefetch.
// On older GPUs, on the legacy default stream, or with VELA_PDL=0 in the
// environment, launches are plain stream-ordered ones and the two device calls
// are no-ops.
#include <cuda_runtime.h>

#include <atomic>
#include <utility>

namespace vela::kernels {

// True when launches carry the PDL attribute: the current device is sm_90 or
// newer and VELA_PDL is not "0". Decided once per process (one device per worker).
bool pdl_enabled();

// Compute capability major of the current device (0 if it cannot be read), read once
// per process like pdl_enabled().
int device_major();

// Streaming multiprocessors of the current device (132 if it cannot be read), read
// once per device.
int sm_count();

// Lets kKernel launch with `bytes` of dynamic shared memory (over the 48 KB default):
// the attribute is set once per device (host-side, so also fine while a graph is being
// captured).
template <auto kKernel>
cudaError_t allow_dynamic_smem(int bytes) {
  static std::atomic<bool> done[16] = {};
  int dev = 0;
  if (auto e = cudaGetDevice(&dev); e != cudaSuccess) return e;
  const bool cached = dev >= 0 && dev < 16;
  if (cached && done[dev].load(std::memory_order_relaxed)) return cudaSuccess;
  const cudaError_t e = cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (e == cudaSuccess && cached) done[dev].store(true, std::memory_order_relaxed);
  return e;
}

__device__ __forceinline__ void grid_dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// How a kernel is launched: a thread-block cluster (1 x 1 x 1: none), programmatic
// dependent launch (on unless the stream is the legacy one or VELA_PDL=0), and a
// scheduling priority (0: the stream's).
struct LaunchOpts {
  dim3 cluster = dim3(1, 1, 1);
  bool pdl = true;
  int priority = 0;
};

// kernel<<<grid, block, smem, stream>>>(args...) as opts say. Returns the launch's error.
template <typename... Params, typename... Args>
cudaError_t launch_kernel_opts(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                               const LaunchOpts& opts, Args&&... args) {
  cudaLaunchAttribute attr[3];
  unsigned n = 0;
  const dim3 cluster = opts.cluster;
  if (opts.priority != 0) {
    attr[n].id = cudaLaunchAttributePriority;
    attr[n].val.priority = opts.priority;
    ++n;
  }
  if (opts.pdl && stream != nullptr && pdl_enabled()) {  // not on the legacy stream
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  if (cluster.x * cluster.y * cluster.z > 1) {
    attr[n].id = cudaLaunchAttributeClusterDimension;
    attr[n].val.clusterDim.x = cluster.x;
    attr[n].val.clusterDim.y = cluster.y;
    attr[n].val.clusterDim.z = cluster.z;
    ++n;
  }
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = n;
  return cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(std::forward<Args>(args))...);
}

// In thread-block clusters of `cluster` CTAs, with PDL.
template <typename... Params, typename... Args>
cudaError_t launch_kernel_clustered(void (*kernel)(Params...), dim3 grid, dim3 cluster, dim3 block, size_t smem,
                                    cudaStream_t stream, Args&&... args) {
  LaunchOpts opts;
  opts.cluster = cluster;
  return launch_kernel_opts(kernel, grid, block, smem, stream, opts, std::forward<Args>(args)...);
}

// kernel<<<grid, block, smem, stream>>>(args...), with the PDL attribute when
// pdl_enabled(). Returns the launch's error.
template <typename... Params, typename... Args>
cudaError_t launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                          Args&&... args) {
  return launch_kernel_clustered(kernel, grid, dim3(1, 1, 1), block, smem, stream, std::forward<Args>(args)...);
}

}  // namespace vela::kernels

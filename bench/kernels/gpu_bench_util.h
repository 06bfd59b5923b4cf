#pragma once
// What the GPU kernel benchmarks share: checked CUDA calls, CUDA-event timing of
// kInner back-to-back launches, and the ceiling every figure is held against, a
// 1 GiB device-to-device copy measured in the same binary (BM_CopyCeiling runs
// first; copy_gbps() measures it lazily otherwise).
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::abort();
  }
}

constexpr int kInner = 10;  // launches per timed region

struct Events {
  cudaEvent_t start{}, stop{};
  Events() {
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
  }
  ~Events() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  template <class F>
  double seconds(F launch) {  // per launch
    check(cudaEventRecord(start), "record");
    for (int i = 0; i < kInner; ++i) launch();
    check(cudaEventRecord(stop), "record");
    check(cudaEventSynchronize(stop), "sync");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
    return double(ms) * 1e-3 / kInner;
  }
};

constexpr size_t kCopyBytes = size_t(1) << 30;

inline double copy_seconds(void* dst, const void* src) {
  Events ev;
  return ev.seconds([&] { check(cudaMemcpyAsync(dst, src, kCopyBytes, cudaMemcpyDeviceToDevice), "copy"); });
}

inline double g_copy_gbps = 0.0;

inline double copy_gbps() {
  if (g_copy_gbps > 0) return g_copy_gbps;
  void *a = nullptr, *b = nullptr;
  check(cudaMalloc(&a, kCopyBytes), "malloc");
  check(cudaMalloc(&b, kCopyBytes), "malloc");
  copy_seconds(b, a);  // warm up
  double best = 1e30;
  for (int i = 0; i < 5; ++i) best = std::min(best, copy_seconds(b, a));
  cudaFree(a);
  cudaFree(b);
  g_copy_gbps = 2.0 * double(kCopyBytes) / best / 1e9;
  return g_copy_gbps;
}

inline void BM_CopyCeiling(benchmark::State& state) {
  void *a = nullptr, *b = nullptr;
  check(cudaMalloc(&a, kCopyBytes), "malloc");
  check(cudaMalloc(&b, kCopyBytes), "malloc");
  copy_seconds(b, a);
  double total = 0;
  for (auto _ : state) {
    double s = copy_seconds(b, a);
    state.SetIterationTime(s);
    total += s;
  }
  cudaFree(a);
  cudaFree(b);
  double gbps = 2.0 * double(kCopyBytes) * double(state.iterations()) / total / 1e9;
  g_copy_gbps = std::max(g_copy_gbps, gbps);
  state.counters["GB/s"] = gbps;
}
BENCHMARK(BM_CopyCeiling)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

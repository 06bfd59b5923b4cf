// NCCL all-reduce on every GPU of the machine (one communicator per device, driven
// from one thread through ncclGroupStart/End, as vela's ranks each drive theirs):
// latency at the sizes tensor parallelism sends (a decode step's hidden state,
// bf16: 8 KiB per token of a 4096-wide model) up to prefill-sized messages. Counters:
//   Time        - one all-reduce (CUDA events over a loop of calls, per call)
//   busbw_GBps  - NCCL's bus bandwidth: bytes x 2 (n-1)/n per second
// With one GPU it reports nothing (skipped). Run: bench_nccl_gpu --benchmark_min_time=0.2
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

#define CHECK_CUDA(x)                                                                  \
  do {                                                                                 \
    cudaError_t e = (x);                                                               \
    if (e != cudaSuccess) {                                                            \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e)); \
      std::exit(1);                                                                    \
    }                                                                                  \
  } while (0)
#define CHECK_NCCL(x)                                                                  \
  do {                                                                                 \
    ncclResult_t r = (x);                                                              \
    if (r != ncclSuccess) {                                                            \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, ncclGetErrorString(r)); \
      std::exit(1);                                                                    \
    }                                                                                  \
  } while (0)

struct Group {
  int n = 0;
  std::vector<ncclComm_t> comms;
  std::vector<cudaStream_t> streams;
  std::vector<void*> buffers;
  size_t capacity = size_t(256) << 20;
  Group() {
    ::setenv("NCCL_NVLS_ENABLE", "0", 0);
    CHECK_CUDA(cudaGetDeviceCount(&n));
    if (n < 2) return;
    comms.resize(size_t(n));
    std::vector<int> devs(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) devs[size_t(i)] = i;
    CHECK_NCCL(ncclCommInitAll(comms.data(), n, devs.data()));
    for (int i = 0; i < n; ++i) {
      CHECK_CUDA(cudaSetDevice(i));
      cudaStream_t s;
      CHECK_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
      streams.push_back(s);
      void* b;
      CHECK_CUDA(cudaMalloc(&b, capacity));
      CHECK_CUDA(cudaMemset(b, 0x3c, capacity));  // bf16 ~ 0.01: sums stay finite
      buffers.push_back(b);
    }
  }
  void all_reduce(size_t count) {
    CHECK_NCCL(ncclGroupStart());
    for (int i = 0; i < n; ++i)
      CHECK_NCCL(ncclAllReduce(buffers[size_t(i)], buffers[size_t(i)], count, ncclBfloat16, ncclSum, comms[size_t(i)],
                               streams[size_t(i)]));
    CHECK_NCCL(ncclGroupEnd());
  }
  void sync() {
    for (int i = 0; i < n; ++i) {
      CHECK_CUDA(cudaSetDevice(i));
      CHECK_CUDA(cudaStreamSynchronize(streams[size_t(i)]));
    }
  }
};

Group& group() {
  static Group g;
  return g;
}

void BM_AllReduceBf16(benchmark::State& state) {
  Group& g = group();
  if (g.n < 2) {
    state.SkipWithError("fewer than two GPUs");
    return;
  }
  const size_t bytes = size_t(state.range(0));
  const size_t count = bytes / 2;
  const int inner = bytes <= (1 << 20) ? 100 : 10;
  for (int w = 0; w < 5; ++w) g.all_reduce(count);
  g.sync();
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaSetDevice(0));
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  for (auto _ : state) {
    CHECK_CUDA(cudaSetDevice(0));
    CHECK_CUDA(cudaEventRecord(start, g.streams[0]));
    for (int i = 0; i < inner; ++i) g.all_reduce(count);
    CHECK_CUDA(cudaSetDevice(0));
    CHECK_CUDA(cudaEventRecord(stop, g.streams[0]));
    g.sync();
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(double(ms) / 1e3 / inner);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  state.counters["gpus"] = g.n;
  state.counters["busbw_GBps"] = benchmark::Counter(double(bytes) * 2.0 * (g.n - 1) / g.n / 1e9,
                                                    benchmark::Counter::kIsIterationInvariantRate);
}
// 8 KiB: one token of a 4096-wide model; 256 KiB: 32 tokens; up to a 8k-token prefill chunk.
BENCHMARK(BM_AllReduceBf16)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond)
    ->Arg(8 << 10)->Arg(64 << 10)->Arg(256 << 10)->Arg(2 << 20)->Arg(16 << 20)->Arg(64 << 20);

}  // namespace

BENCHMARK_MAIN();

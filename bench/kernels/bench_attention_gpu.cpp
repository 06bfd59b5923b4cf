// Paged attention on the GPU: decode bandwidth and prefill throughput, against a
// device-to-device copy measured in the same binary as the ceiling.
//
// Counters:
//   GB/s     decode: bytes the attention must touch (K and V rows of every visible
//            key, q and out) over the kernel time; copy: 2 x bytes copied (read + write)
//   vs_copy  GB/s over the copy's GB/s (BM_CopyCeiling runs first; measured lazily
//            otherwise)
//   TFLOP/s  prefill: 4 * hd * nq * sum over queries of visible keys (QK^T and PV, 2
//            FLOP per multiply-add, causal work only; = 4 q_len seq_len hd nq / 2
//            for q_len == seq_len, up to the diagonal's +1)
// Times are CUDA events around kInner back-to-back launches. The KV cache is not
// flushed from L2 between launches: cases whose K/V fit in L2 (50 MB; e.g. batch 1
// at context 512 or 4k) read partly from L2 and can exceed HBM rates.
//
// BM_Decode times both decode kernels (arg `kernel`: 0 CUDA cores, the pre-2026-12-02
// kernel; 1 tensor cores) on the same batch, and the run ends with one table row per
// (shape, batch, context): GB/s and vs_copy of each kernel side by side.
//
// Run: bench_attention_gpu --benchmark_min_time=0.5
//      bench_attention_gpu --benchmark_filter='BM_Copy|BM_Decode/batch:64/ctx:4096'  (the issue-14 case)
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <tuple>
#include <numeric>
#include <random>
#include <vector>

#include "bench/kernels/gpu_bench_util.h"
#include "kernels/attention.h"

namespace {

using vela::kernels::bf16;

struct Shape {
  int32_t nq, nk, hd;
  const char* name;
};
constexpr Shape kShapes[] = {{32, 8, 128, "llama8b g4"},
                             {16, 8, 128, "qwen3-0.6b g2"},
                             {64, 8, 128, "llama70b g8"},
                             {8, 8, 128, "mha g1"}};

// Decode results for the closing table: (shape, batch, ctx) -> per kernel {GB/s, vs_copy}.
struct DecodeRow {
  double gbps[2] = {0, 0}, vs_copy[2] = {0, 0};
};
std::map<std::tuple<int, int, int>, DecodeRow>& decode_rows() {
  static std::map<std::tuple<int, int, int>, DecodeRow> rows;
  return rows;
}

// A batch on the device: q_lens[s] new tokens of sequence s with seq_lens[s] in the
// cache; blocks handed out in shuffled order as a long-running server's would be.
struct DeviceBatch {
  std::vector<void*> allocs;
  vela::kernels::PagedAttentionParams<vela::kernels::bf16> p;

  DeviceBatch(const Shape& sh, const std::vector<int32_t>& q_lens, const std::vector<int32_t>& seq_lens,
              int32_t block_size) {
    const int32_t n = int32_t(q_lens.size());
    std::vector<int32_t> qsl(size_t(n) + 1, 0);
    int32_t max_blocks = 0, total_blocks = 0, max_q = 0, max_seq = 0;
    for (int32_t s = 0; s < n; ++s) {
      qsl[s + 1] = qsl[s] + q_lens[s];
      const int32_t blocks = (seq_lens[s] + block_size - 1) / block_size;
      max_blocks = std::max(max_blocks, blocks);
      total_blocks += blocks;
      max_q = std::max(max_q, q_lens[s]);
      max_seq = std::max(max_seq, seq_lens[s]);
    }
    std::vector<int32_t> ids(static_cast<size_t>(total_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937{42});
    std::vector<int32_t> table(size_t(n) * max_blocks, 0);
    size_t next = 0;
    for (int32_t s = 0; s < n; ++s)
      for (int32_t b = 0; b < (seq_lens[s] + block_size - 1) / block_size; ++b)
        table[size_t(s) * max_blocks + b] = ids[next++];
    const int32_t T = qsl[n];
    const size_t cache_bytes = size_t(total_blocks) * block_size * sh.nk * sh.hd * sizeof(bf16);
    auto k = alloc(cache_bytes), v = alloc(cache_bytes);
    check(cudaMemset(k, 0x3c, cache_bytes), "memset");  // bf16 0x3c3c ~ 0.0115
    check(cudaMemset(v, 0x3c, cache_bytes), "memset");
    const size_t q_bytes = size_t(T) * sh.nq * sh.hd * sizeof(bf16);
    auto q = alloc(q_bytes), out = alloc(q_bytes);
    check(cudaMemset(q, 0x3c, q_bytes), "memset");
    p.q = static_cast<bf16*>(q);
    p.q_token_stride = int64_t(sh.nq) * sh.hd;
    p.k_cache = static_cast<bf16*>(k);
    p.v_cache = static_cast<bf16*>(v);
    p.block_tables = upload(table);
    p.block_table_stride = max_blocks;
    p.query_start_loc = upload(qsl);
    p.seq_lens = upload(seq_lens);
    p.out = static_cast<bf16*>(out);
    p.out_token_stride = int64_t(sh.nq) * sh.hd;
    p.num_seqs = n;
    p.num_tokens = T;
    p.num_q_heads = sh.nq;
    p.num_kv_heads = sh.nk;
    p.head_dim = sh.hd;
    p.block_size = block_size;
    p.num_blocks = total_blocks;
    p.max_query_len = max_q;
    p.max_seq_len = max_seq;
    p.scale = 1.0f / std::sqrt(float(sh.hd));
    p.workspace_bytes = vela::kernels::paged_attention_workspace_bytes(T, sh.nq, sh.hd);
    p.workspace = alloc(p.workspace_bytes);
  }
  ~DeviceBatch() {
    for (void* a : allocs) cudaFree(a);
  }
  void* alloc(size_t bytes) {
    void* ptr = nullptr;
    check(cudaMalloc(&ptr, std::max<size_t>(bytes, 16)), "cudaMalloc");
    allocs.push_back(ptr);
    return ptr;
  }
  const int32_t* upload(const std::vector<int32_t>& h) {
    void* d = alloc(h.size() * sizeof(int32_t));
    check(cudaMemcpy(d, h.data(), h.size() * sizeof(int32_t), cudaMemcpyHostToDevice), "upload");
    return static_cast<const int32_t*>(d);
  }
  void launch() const { check(vela::kernels::paged_attention(p, nullptr), "paged_attention"); }
};

// Args: batch, context, shape index, kernel (0 CUDA cores, 1 tensor cores).
void BM_Decode(benchmark::State& state) {
  const int32_t batch = int32_t(state.range(0)), ctx = int32_t(state.range(1));
  const Shape sh = kShapes[state.range(2)];
  const int kernel = int(state.range(3));
  const double ceiling = copy_gbps();
  DeviceBatch b(sh, std::vector<int32_t>(size_t(batch), 1), std::vector<int32_t>(size_t(batch), ctx), 16);
  b.p.decode_kernel =
      kernel == 0 ? vela::kernels::DecodeKernel::kCudaCores : vela::kernels::DecodeKernel::kTensorCores;
  Events ev;
  ev.seconds([&] { b.launch(); });  // warm up
  double total = 0;
  for (auto _ : state) {
    double s = ev.seconds([&] { b.launch(); });
    state.SetIterationTime(s);
    total += s;
  }
  const double kv_bytes = 2.0 * double(batch) * ctx * sh.nk * sh.hd * sizeof(bf16);
  const double qo_bytes = 2.0 * double(batch) * sh.nq * sh.hd * sizeof(bf16);
  const double gbps = (kv_bytes + qo_bytes) * double(state.iterations()) / total / 1e9;
  state.counters["GB/s"] = gbps;
  state.counters["vs_copy"] = gbps / ceiling;
  state.SetLabel(std::string(sh.name) + (kernel == 0 ? " cuda-cores" : " tensor-cores"));
  DecodeRow& r = decode_rows()[{int(state.range(2)), batch, ctx}];
  r.gbps[kernel] = gbps;
  r.vs_copy[kernel] = gbps / ceiling;
}
BENCHMARK(BM_Decode)
    ->ArgNames({"batch", "ctx", "shape", "kernel"})
    ->ArgsProduct({{1, 64, 256}, {512, 4096, 32768}, {0, 1, 2, 3}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// Args: sequences, chunk length, cached keys before each chunk (0: whole prompts),
// shape index, kernel (0 mma.sync, 1 wgmma, 2 warp-specialized).
void BM_Prefill(benchmark::State& state) {
  const int32_t n = int32_t(state.range(0)), q = int32_t(state.range(1)), cached = int32_t(state.range(2));
  const Shape sh = kShapes[state.range(3)];
  DeviceBatch b(sh, std::vector<int32_t>(size_t(n), q), std::vector<int32_t>(size_t(n), cached + q), 16);
  using vela::kernels::PrefillKernel;
  static constexpr PrefillKernel kKernels[] = {PrefillKernel::kMmaSync, PrefillKernel::kWgmma,
                                               PrefillKernel::kWarpSpecialized};
  static constexpr const char* kNames[] = {" mma.sync", " wgmma", " warp-specialized"};
  b.p.prefill_kernel = kKernels[state.range(4)];
  Events ev;
  ev.seconds([&] { b.launch(); });
  double total = 0;
  for (auto _ : state) {
    double s = ev.seconds([&] { b.launch(); });
    state.SetIterationTime(s);
    total += s;
  }
  // (query, visible key) pairs: every cached key, then causal.
  const double pairs = double(n) * (double(q) * cached + double(q) * double(q + 1) / 2.0);
  const double flops = 4.0 * sh.hd * sh.nq * pairs;
  state.counters["TFLOP/s"] = flops * double(state.iterations()) / total / 1e12;
  state.SetLabel(std::string(sh.name) + kNames[state.range(4)]);
}
// W2's prefill step (8 x 1024, Llama-8B), a long prompt, and P1's (Qwen3-0.6B: 112
// chunks of 125 behind the 2,048 cached keys of the shared prefix), each kernel.
BENCHMARK(BM_Prefill)
    ->ArgNames({"seqs", "q_len", "cached", "shape", "kernel"})
    ->ArgsProduct({{8}, {1024}, {0}, {0}, {0, 1, 2}})
    ->ArgsProduct({{1}, {8192}, {0}, {0}, {0, 1, 2}})
    ->ArgsProduct({{112}, {125}, {2048}, {1}, {0, 1, 2}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

void print_decode_table() {
  if (decode_rows().empty()) return;
  std::printf("\ndecode attention, copy ceiling %.0f GB/s (kernel 0: CUDA cores, old; 1: tensor cores, new)\n",
              g_copy_gbps);
  std::printf("%-15s %6s %6s | %10s %8s | %10s %8s | %6s\n", "shape", "batch", "ctx", "old GB/s", "old copy",
              "new GB/s", "new copy", "new/old");
  for (const auto& [key, r] : decode_rows()) {
    const auto& [shape, batch, ctx] = key;
    std::printf("%-15s %6d %6d | %10.0f %7.1f%% | %10.0f %7.1f%% | %6.2f\n", kShapes[shape].name, batch, ctx,
                r.gbps[0], 100 * r.vs_copy[0], r.gbps[1], 100 * r.vs_copy[1],
                r.gbps[0] > 0 ? r.gbps[1] / r.gbps[0] : 0.0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  print_decode_table();
  return 0;
}

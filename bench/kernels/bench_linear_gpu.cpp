// Linear layers at decode batch sizes: the GEMV kernel (m <= 4) against cuBLASLt on
// the Llama-3.1-8B shapes, each as bandwidth over the copy ceiling measured in the
// same binary. At m <= 8 a linear layer streams its weights once: the bytes that
// count are N x K x 2 (x and out are noise), so vs_copy is the share of HBM
// bandwidth the kernel reaches (S1's whole step is these plus attention).
// Counters: GB/s (weight bytes / time), vs_copy (over BM_CopyCeiling's GB/s).
// Run: bench_linear_gpu --benchmark_min_time=0.2
#include <string>

#include "bench/kernels/gpu_bench_util.h"
#include "kernels/gemm.h"

namespace {

using vela::kernels::bf16;
using vela::kernels::GemmArgs;

struct LinearShape {
  const char* name;
  int64_t n, k;
  bool out_f32;
};
// Llama-3.1-8B: qkv, o, gate_up, down, lm_head.
constexpr LinearShape kShapes[] = {{"qkv", 6144, 4096, false},
                                   {"o", 4096, 4096, false},
                                   {"gate_up", 28672, 4096, false},
                                   {"down", 4096, 14336, false},
                                   {"lm_head", 128256, 4096, true}};

vela::kernels::Gemm& lt() {  // cuBLASLt only (no skinny kernel)
  static auto g = vela::kernels::Gemm::create(size_t(32) << 20, /*skinny=*/false);
  if (!g.ok()) {
    std::fprintf(stderr, "%s\n", g.error().message.c_str());
    std::abort();
  }
  return **g;
}

// One linear layer's operands on the device: x [m, k] and out [m, n] (room for fp32),
// both filled in `args`, and four weight copies rotated by next_weights(), so the
// timed loop reads HBM rather than L2 even for the smaller matrices.
struct LinearBuffers {
  static constexpr int kCopies = 4;
  void *x = nullptr, *out = nullptr, *w[kCopies] = {};
  GemmArgs args;
  int next = 0;
  LinearBuffers(int64_t m, int64_t n, int64_t k) {
    check(cudaMalloc(&x, size_t(m * k) * 2), "malloc");
    check(cudaMalloc(&out, size_t(m * n) * 4), "malloc");
    for (auto& p : w) {
      check(cudaMalloc(&p, size_t(n * k) * 2), "malloc");
      check(cudaMemset(p, 0x3c, size_t(n * k) * 2), "memset");
    }
    check(cudaMemset(x, 0x3c, size_t(m * k) * 2), "memset");
    args.x = static_cast<const bf16*>(x);
    args.x_row_stride = k;
    args.out = out;
    args.out_row_stride = n;
    args.m = m;
    args.n = n;
    args.k = k;
  }
  ~LinearBuffers() {
    cudaFree(x);
    cudaFree(out);
    for (auto p : w) cudaFree(p);
  }
  const void* next_weights() { return w[next++ % kCopies]; }
};

void BM_Linear(benchmark::State& state) {
  const LinearShape& s = kShapes[state.range(0)];
  const int64_t m = state.range(1);
  const bool gemv = state.range(2) != 0;
  const bool silu_mul = state.range(2) == 2;  // gate_up with the activation (ops::linear_silu_mul)
  if (gemv && m > vela::kernels::kGemvMaxRows) {
    state.SkipWithError("gemv takes m <= 4");
    return;
  }
  if (silu_mul && (std::string(s.name) != "gate_up" || m > 2)) {
    state.SkipWithError("silu_mul: the gate_up shape at m <= 2");
    return;
  }
  LinearBuffers b(m, s.n, s.k);
  GemmArgs& a = b.args;
  a.out_f32 = s.out_f32;
  a.n = silu_mul ? s.n / 2 : s.n;  // silu_mul: n outputs from 2n weight rows
  a.silu_mul = silu_mul;
  // A blocking stream of its own (the events on the legacy stream order with it):
  // launches with programmatic dependent launch (kernels/launch.cuh) overlap there
  // as they do in the model's stream.
  cudaStream_t stream = nullptr;
  check(cudaStreamCreate(&stream), "stream");
  auto launch = [&] {
    a.w = b.next_weights();
    if (gemv) check(vela::kernels::gemv(a, stream), "gemv");
    else if (!lt().run(a, stream).ok()) std::abort();
  };
  for (int i = 0; i < 3; ++i) launch();
  Events ev;
  for (auto _ : state) state.SetIterationTime(ev.seconds(launch));
  // Each iteration's manual time is one launch (Events::seconds divides by kInner).
  const double gb = double(s.n * s.k * 2) * double(state.iterations()) / 1e9;
  state.counters["GB/s"] = benchmark::Counter(gb, benchmark::Counter::kIsRate);
  state.counters["vs_copy"] = benchmark::Counter(gb / copy_gbps(), benchmark::Counter::kIsRate);
  state.SetLabel(std::string(s.name) + (silu_mul ? " gemv+silu" : gemv ? " gemv" : " cuBLASLt"));
  cudaStreamDestroy(stream);
}
BENCHMARK(BM_Linear)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond)
    ->ArgNames({"shape", "m", "gemv"})
    ->ArgsProduct({{0, 1, 2, 3, 4}, {1, 2, 4, 8}, {0, 1}})
    ->Args({2, 1, 2})
    ->Args({2, 2, 2});

// Decode batches of many sequences (W1, P1, W2's decode steps: m = 16..256 rows): the
// GEMMs of Qwen3-0.6B and Llama-3.1-8B through cuBLASLt (splits = -1) and the skinny
// wgmma kernel (splits 0: its own k split, else forced). Here a GEMM is neither a
// pure weight stream nor a full tensor-core load, so each reports both shares: the
// weights' bytes over the copy ceiling (vs_copy) and its FLOPs (TFLOP/s). At m = 256
// a Qwen3-0.6B layer's four GEMMs are 8 GFLOP over 31 MB of weights: ~9 us at the
// bf16 GEMM ceiling, ~6.5 us at the copy ceiling.
struct DecodeShape {
  const char* name;
  int64_t n, k;
};
constexpr DecodeShape kDecodeShapes[] = {{"qwen3-0.6b qkv", 4096, 1024},  {"qwen3-0.6b o", 1024, 2048},
                                         {"qwen3-0.6b gate_up", 6144, 1024}, {"qwen3-0.6b down", 1024, 3072},
                                         {"llama-8b qkv", 6144, 4096},       {"llama-8b o", 4096, 4096},
                                         {"llama-8b gate_up", 28672, 4096},  {"llama-8b down", 4096, 14336}};

void BM_LinearDecode(benchmark::State& state) {
  const DecodeShape& s = kDecodeShapes[state.range(0)];
  const int64_t m = state.range(1);
  const int splits = int(state.range(2));
  if (splits >= 0 && !vela::kernels::skinny_gemm_enabled()) {
    state.SkipWithError("the skinny GEMM needs sm_90");
    return;
  }
  LinearBuffers b(m, s.n, s.k);
  GemmArgs& a = b.args;
  cudaStream_t stream = nullptr;
  check(cudaStreamCreate(&stream), "stream");
  auto launch = [&] {
    a.w = b.next_weights();
    if (splits >= 0) check(vela::kernels::skinny_gemm(a, stream, splits), "skinny");
    else if (!lt().run(a, stream).ok()) std::abort();
  };
  for (int i = 0; i < 3; ++i) launch();
  Events ev;
  for (auto _ : state) state.SetIterationTime(ev.seconds(launch));
  const double gb = double(s.n * s.k * 2) * double(state.iterations()) / 1e9;
  state.counters["vs_copy"] = benchmark::Counter(gb / copy_gbps(), benchmark::Counter::kIsRate);
  state.counters["TFLOP/s"] =
      benchmark::Counter(2.0 * double(m * s.n * s.k) * double(state.iterations()) / 1e12, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(s.name) + (splits < 0 ? " cuBLASLt" : " skinny"));
  cudaStreamDestroy(stream);
}
BENCHMARK(BM_LinearDecode)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond)
    ->ArgNames({"shape", "m", "splits"})
    ->ArgsProduct({{0, 1, 2, 3, 4, 5, 6, 7}, {4, 16, 64, 128, 256}, {-1, 0, 1, 2, 4, 8}});

}  // namespace

BENCHMARK_MAIN();

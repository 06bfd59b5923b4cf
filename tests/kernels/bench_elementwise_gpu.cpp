// Hidden ([.bench]) throughput printout of the memory-bound kernels at T = 4096,
// H = 4096: achieved GB/s = bytes read + written (each element once) / time.
// Run with: test_elementwise_gpu "[bench]"
#include <catch2/catch.hpp>

#include <cstdio>
#include <functional>
#include <random>
#include <vector>

#include "kernels/elementwise.h"
#include "tests/kernels/gpu_test_util.h"

using namespace vela;
using namespace vela::testing;
namespace k = vela::kernels;

namespace {

// Mean milliseconds per call of launch() over `iters` calls, after a warm-up.
double time_ms(const std::function<cudaError_t()>& launch, int iters = 50) {
  cudaEvent_t start, stop;
  CUDA_OK(cudaEventCreate(&start));
  CUDA_OK(cudaEventCreate(&stop));
  for (int i = 0; i < 3; ++i) CUDA_OK(launch());
  CUDA_OK(cudaEventRecord(start));
  for (int i = 0; i < iters; ++i) CUDA_OK(launch());
  CUDA_OK(cudaEventRecord(stop));
  CUDA_OK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  CUDA_OK(cudaEventElapsedTime(&ms, start, stop));
  CUDA_OK(cudaEventDestroy(start));
  CUDA_OK(cudaEventDestroy(stop));
  return double(ms) / iters;
}

void report(const char* what, double bytes, double ms) {
  std::printf("%-14s %8.1f us  %7.1f GB/s\n", what, ms * 1e3, bytes / (ms * 1e-3) / 1e9);
}

}  // namespace

TEST_CASE("elementwise kernel throughput at T=4096, H=4096", "[.bench]") {
  const int64_t T = 4096, H = 4096, nq = 32, nk = 8, hd = 128, max_pos = 8192;
  std::mt19937_64 rng(42);
  Bf16Data x = random_bf16(size_t(T * 2 * H), -2.0f, 2.0f, rng);  // also gate_up [T, 2H]
  Bf16Data w = random_bf16(size_t(H), 0.5f, 1.5f, rng);
  DeviceArray<uint16_t> dx(x.bits), dw(w.bits), dout(size_t(T * H));
  DeviceArray<float> dres(std::vector<float>(size_t(T * H), 0.5f));
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) pos[size_t(t)] = int32_t(t);
  DeviceArray<int32_t> dpos(pos);
  DeviceArray<float> dcs(std::vector<float>(size_t(max_pos * hd), 0.5f));
  const double e = double(T * H);

  k::RmsNormParams<k::bf16> rn{.x = dx.bf16(), .out = dout.bf16(), .weight = dw.bf16(), .num_tokens = T, .num_heads = 1,
                      .dim = H, .x_token_stride = H, .out_token_stride = H};
  report("rms_norm", e * 2 * 2, time_ms([&] { return k::rms_norm(rn, nullptr); }));

  k::AddRmsNormParams<k::bf16> arn{.x = dx.bf16(), .residual = dres.get(), .weight = dw.bf16(), .num_tokens = T, .dim = H,
                          .x_token_stride = H};
  report("add_rms_norm", e * (2 + 4 + 4 + 2), time_ms([&] { return k::add_rms_norm(arn, nullptr); }));

  k::SiluAndMulParams<k::bf16> sm{.gate_up = dx.bf16(), .out = dout.bf16(), .num_tokens = T, .intermediate = H};
  report("silu_and_mul", e * (4 + 2), time_ms([&] { return k::silu_and_mul(sm, nullptr); }));

  // q [T, 32, 128] and k [T, 8, 128] inside fused qkv rows of 48 heads; cos/sin rows counted once per token.
  const int64_t width = (nq + 2 * nk) * hd;
  k::RopeParams<k::bf16> rp{.positions = dpos.get(), .q = dx.bf16(), .k = dx.bf16() + nq * hd, .cos_sin = dcs.get(),
                   .num_tokens = T, .num_q_heads = nq, .num_kv_heads = nk, .head_dim = hd,
                   .q_token_stride = width, .k_token_stride = width};
  REQUIRE(T * width <= int64_t(x.bits.size()));
  report("rope", double(T) * ((nq + nk) * hd * 2 * 2 + hd * 4), time_ms([&] { return k::rope(rp, nullptr); }));
  CUDA_OK(cudaDeviceSynchronize());
}

// NcclCommunicator on two GPUs, one thread per rank (each on its own device, as the
// worker processes are): bf16 / fp32 all-reduce and all-gather against host sums
// on fresh random data, and a stalled peer ending a wait with an error (not a hang)
// within the collective timeout. Skipped (77) with fewer than two GPUs.
#include <catch2/catch.hpp>
#include <cuda_runtime_api.h>
#include <zmq.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include "model/dtype.h"
#include "workers/nccl_communicator.h"
#include "workers/zmq_store.h"

namespace vela {
namespace {

using namespace std::chrono_literals;

int gpus() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

// Runs body(rank, comm) on `world` threads, rank r on cuda:r, each with its own
// stream, after joining one communicator through an in-process rendezvous store.
void with_group(int world, std::chrono::milliseconds timeout,
                const std::function<void(int, NcclCommunicator&, cudaStream_t)>& body) {
  zmq::context_t zmq_context;
  auto server = ZmqStoreServer::start(zmq_context, "127.0.0.1");
  REQUIRE(server);
  const std::string address = server.value()->address();
  std::vector<std::string> failures(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      ZmqStore store(zmq_context, address, 30s);
      auto comm = NcclCommunicator::connect(store, r, world, r, timeout);
      if (!comm) {
        failures[size_t(r)] = comm.error().message;
        return;
      }
      cudaStream_t stream = nullptr;
      cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
      body(r, *comm.value(), stream);
      comm.value().reset();
      cudaStreamDestroy(stream);
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) {
    INFO("rank " << r << ": " << failures[size_t(r)]);
    CHECK(failures[size_t(r)].empty());
  }
}

TEST_CASE("NCCL all-reduce and all-gather match host sums on two GPUs", "[nccl]") {
  if (gpus() < 2) {
    WARN("fewer than two GPUs: skipped");
    return;
  }
  const int world = 2;
  const size_t n = 4096 * 3 + 7;  // not a multiple of anything NCCL likes
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<std::vector<uint16_t>> bf16(world, std::vector<uint16_t>(n));
  std::vector<std::vector<float>> f32(world, std::vector<float>(n));
  for (int r = 0; r < world; ++r)
    for (size_t i = 0; i < n; ++i) {
      bf16[size_t(r)][i] = f32_to_bf16(normal(rng));
      f32[size_t(r)][i] = normal(rng);
    }
  std::vector<std::vector<uint16_t>> bf16_out(world);
  std::vector<std::vector<float>> f32_out(world), gathered(world);
  with_group(world, 20s, [&](int r, NcclCommunicator& comm, cudaStream_t stream) {
    void *b = nullptr, *f = nullptr, *g = nullptr;
    cudaMalloc(&b, n * 2);
    cudaMalloc(&f, n * 4);
    cudaMalloc(&g, n * 4 * world);
    cudaMemcpy(b, bf16[size_t(r)].data(), n * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(f, f32[size_t(r)].data(), n * 4, cudaMemcpyHostToDevice);
    cudaMemset(g, 0xff, n * 4 * world);  // poisoned: every element must be written
    comm.all_reduce_sum(b, n, DType::kBF16, reinterpret_cast<CUstream_st*>(stream));
    comm.all_reduce_sum(f, n, DType::kF32, reinterpret_cast<CUstream_st*>(stream));
    comm.all_gather(f, n, g, DType::kF32,
                    reinterpret_cast<CUstream_st*>(stream));
    auto waited = comm.wait(reinterpret_cast<CUstream_st*>(stream));
    if (!waited) std::fprintf(stderr, "rank %d: %s\n", r, waited.error().message.c_str());
    bf16_out[size_t(r)].resize(n);
    f32_out[size_t(r)].resize(n);
    gathered[size_t(r)].resize(n * world);
    cudaMemcpy(bf16_out[size_t(r)].data(), b, n * 2, cudaMemcpyDeviceToHost);
    cudaMemcpy(f32_out[size_t(r)].data(), f, n * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(gathered[size_t(r)].data(), g, n * 4 * world, cudaMemcpyDeviceToHost);
    cudaFree(b);
    cudaFree(f);
    cudaFree(g);
  });
  // f was reduced in place before the gather: every rank gathers the sums.
  size_t bad_bf16 = 0, bad_f32 = 0, bad_gather = 0;
  for (int r = 0; r < world; ++r)
    for (size_t i = 0; i < n; ++i) {
      const float want_b = bf16_to_f32(bf16[0][i]) + bf16_to_f32(bf16[1][i]);
      if (std::abs(bf16_to_f32(bf16_out[size_t(r)][i]) - want_b) > 1e-2f * (1.f + std::abs(want_b))) ++bad_bf16;
      const float want_f = f32[0][i] + f32[1][i];
      if (std::abs(f32_out[size_t(r)][i] - want_f) > 1e-5f * (1.f + std::abs(want_f))) ++bad_f32;
      for (int q = 0; q < world; ++q)
        if (gathered[size_t(r)][size_t(q) * n + i] != f32_out[size_t(q)][i]) ++bad_gather;
    }
  CHECK(bad_bf16 == 0);
  CHECK(bad_f32 == 0);
  CHECK(bad_gather == 0);
}

TEST_CASE("a stalled NCCL peer ends the wait with an error, not a hang", "[nccl]") {
  if (gpus() < 2) {
    WARN("fewer than two GPUs: skipped");
    return;
  }
  const auto timeout = 2s;
  std::string error;
  double waited_s = 0;
  with_group(2, timeout, [&](int r, NcclCommunicator& comm, cudaStream_t stream) {
    void* f = nullptr;
    cudaMalloc(&f, 1024 * 4);
    // One collective both take part in (connections made), then rank 1 stalls.
    comm.all_reduce_sum(f, 1024, DType::kF32, reinterpret_cast<CUstream_st*>(stream));
    REQUIRE(comm.wait(reinterpret_cast<CUstream_st*>(stream)));
    if (r == 0) {
      comm.all_reduce_sum(f, 1024, DType::kF32, reinterpret_cast<CUstream_st*>(stream));
      const auto start = std::chrono::steady_clock::now();
      auto waited = comm.wait(reinterpret_cast<CUstream_st*>(stream));
      waited_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!waited) error = waited.error().message;
      std::printf("rank 0: stalled peer detected after %.2f s: %s\n", waited_s, error.c_str());
    } else {
      std::this_thread::sleep_for(timeout + 2s);  // never joins the second all-reduce
      comm.abort("test: rank 1 gave up");
    }
    cudaFree(f);
  });
  CHECK(error.find("did not complete within") != std::string::npos);
  CHECK(error.find("rank 0 of 2") != std::string::npos);
  CHECK(waited_s >= 1.9);
  CHECK(waited_s < 4.0);
}

}  // namespace
}  // namespace vela

// Two real processes join through the ZMQ rendezvous store that rank 0 makes and
// run all_reduce_sum and all_gather over Gloo's TCP transport on loopback.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <vector>

#include "tests/runtime/process_helpers.h"
#include "workers/gloo_communicator.h"
#include "workers/zmq_store.h"

namespace {

// Runs in a forked child: returns the exit code (0 = every check passed).
int run_rank(int rank, int address_pipe_read, int address_pipe_write) {
  zmq::context_t ctx;
  std::unique_ptr<vela::ZmqStoreServer> server;
  std::string address;
  if (rank == 0) {
    auto s = vela::ZmqStoreServer::start(ctx, "127.0.0.1");
    if (!s) return 10;
    server = std::move(s.value());
    address = server->address();
    if (::write(address_pipe_write, address.data(), address.size()) != static_cast<ssize_t>(address.size())) return 11;
  } else {
    char buf[256] = {};
    ssize_t n = ::read(address_pipe_read, buf, sizeof(buf));
    if (n <= 0) return 12;
    address.assign(buf, static_cast<size_t>(n));
  }
  auto comm = vela::GlooCommunicator::connect(ctx, rank, 2, address, "127.0.0.1", std::chrono::seconds(20));
  if (!comm) return 13;
  // all_reduce over an odd size (97) with rank-dependent values.
  std::vector<float> data(97);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i) * (rank + 1);
  (*comm)->all_reduce_sum(data.data(), data.size());
  for (size_t i = 0; i < data.size(); ++i)
    if (std::fabs(data[i] - 3.0f * static_cast<float>(i)) > 1e-4f) return 20;
  // A large one that spans several Gloo segments.
  std::vector<float> big(300001, static_cast<float>(rank + 1));
  (*comm)->all_reduce_sum(big.data(), big.size());
  for (float v : big)
    if (v != 3.0f) return 21;
  // all_gather: rank r contributes 17 values r*100 + i.
  std::vector<float> in(17), out(34, -1.0f);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(rank * 100 + static_cast<int>(i));
  (*comm)->all_gather(in.data(), in.size(), out.data());
  for (int r = 0; r < 2; ++r)
    for (int i = 0; i < 17; ++i)
      if (out[r * 17 + i] != static_cast<float>(r * 100 + i)) return 30;
  return 0;
}

}  // namespace

TEST_CASE("Gloo communicator: two processes all-reduce and all-gather on loopback") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t children[2];
  for (int rank = 0; rank < 2; ++rank) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) ::_exit(run_rank(rank, fds[0], fds[1]));
    children[rank] = pid;
  }
  ::close(fds[0]);
  ::close(fds[1]);
  for (int rank = 0; rank < 2; ++rank) {
    auto status = vela::testing::wait_child(children[rank], std::chrono::seconds(60));
    REQUIRE(status.has_value());
    INFO("rank " << rank << " exit code " << WEXITSTATUS(*status));
    REQUIRE(WIFEXITED(*status));
    REQUIRE(WEXITSTATUS(*status) == 0);
  }
}

TEST_CASE("Gloo communicator: a missing peer is an error within the timeout, not a hang") {
  zmq::context_t ctx;
  auto server = vela::ZmqStoreServer::start(ctx, "127.0.0.1");
  REQUIRE(server.ok());
  const auto t0 = std::chrono::steady_clock::now();
  auto comm = vela::GlooCommunicator::connect(ctx, 0, 2, server.value()->address(), "127.0.0.1",
                                              std::chrono::milliseconds(500));
  REQUIRE_FALSE(comm.ok());
  CHECK(comm.error().code == "gloo_connect");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
}

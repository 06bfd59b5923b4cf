// ShmRing and StepChannel: the shared-memory step path. Records cross real process
// boundaries (fork, attach from the spec string the engine passes), sleeping readers
// are woken through their eventfds, a lagging reader holds the writer back instead
// of being overwritten, and malformed rings or records are refused with a reason.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include "transport/step_channel.h"
#include "tests/runtime/process_helpers.h"

using namespace vela;
using namespace vela::transport;
using namespace std::chrono_literals;

namespace {

constexpr int kRecords = 2000;

// Record i: 1..3 frames of seeded sizes (0..3000 bytes) and contents.
ShmFrames record(int i) {
  std::mt19937 rng(static_cast<uint32_t>(i) * 2654435761u + 7);
  ShmFrames frames(1 + rng() % 3);
  for (auto& f : frames) {
    f.resize(rng() % 3001);
    for (auto& c : f) c = static_cast<char>(rng());
  }
  return frames;
}

// A forked "worker": attaches to the channel, checks every record; rank 0 answers
// each with its index on the up ring. Exit code 0 = all records were as written.
[[noreturn]] void worker(const std::string& spec, int32_t rank, int64_t spin_ns) {
  auto channel = StepChannel::attach(spec, rank);
  if (!channel) ::_exit(10);
  auto& c = **channel;
  ShmFrames got;
  for (int i = 0; i < kRecords; ++i) {
    if (!c.down().wait_readable(static_cast<uint32_t>(rank), c.wake_fd(), spin_ns, steady_now_ns() + 10'000'000'000))
      ::_exit(11);
    uint32_t tag = 99;
    auto ok = c.down().read(static_cast<uint32_t>(rank), got, &tag);
    if (!ok || !*ok) ::_exit(12);
    if (tag != static_cast<uint32_t>(i % 2) || got != record(i)) ::_exit(13);
    if (rank == 0 && !c.up().write({std::to_string(i)}, StepChannel::kMessage, steady_now_ns() + 10'000'000'000))
      ::_exit(14);
  }
  ::_exit(0);
}

}  // namespace

TEST_CASE("StepChannel: 2000 records of 0-9 kB to two worker processes, answers back from rank 0") {
  // Small slots and 4 of them: the writer laps the ring hundreds of times and must
  // wait for the slowest reader; rank 1 never spins, so it is woken every time.
  auto channel = StepChannel::create(2, 4, 16 << 10);
  REQUIRE(channel.ok());
  auto& c = **channel;
  std::vector<pid_t> pids;
  for (int32_t rank = 0; rank < 2; ++rank) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) worker(c.worker_spec(rank), rank, rank == 0 ? 20'000 : 0);
    pids.push_back(pid);
  }
  ShmFrames answer;
  int answered = 0;
  auto take_answers = [&](bool block) {
    while (true) {
      if (block && !c.up().wait_readable(0, c.wake_fd(), 0, steady_now_ns() + 10'000'000'000)) return;
      uint32_t tag = 0;
      auto ok = c.up().read(0, answer, &tag);
      REQUIRE(ok.ok());
      if (!*ok) return;
      REQUIRE(answer == ShmFrames{std::to_string(answered)});
      ++answered;
      block = false;
    }
  };
  for (int i = 0; i < kRecords; ++i) {
    const ShmFrames r = record(i);
    REQUIRE(c.down().fits(r));
    auto w = c.down().write(r, static_cast<uint32_t>(i % 2), steady_now_ns() + 10'000'000'000);
    INFO("record " << i << ": " << (w.ok() ? std::string() : w.error().message));
    REQUIRE(w.ok());
    take_answers(false);  // the up ring has 4 slots too: keep it drained
  }
  while (answered < kRecords) {
    const int before = answered;
    take_answers(true);
    if (answered == before) break;
  }
  CHECK(answered == kRecords);
  for (pid_t pid : pids) {
    auto status = testing::wait_child(pid, 10s);
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
  }
}

TEST_CASE("ShmRing: a reader that lags holds the writer back with a deadline, naming the reader") {
  const size_t bytes = ShmRing::region_bytes(2, 3, 256);
  void* mem = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  auto ring = ShmRing::format(mem, bytes, 2, 3, 256);
  REQUIRE(ring.ok());
  const ShmFrames small = {"abc"};
  for (int i = 0; i < 3; ++i) REQUIRE(ring->write(small, 0, steady_now_ns() + 1'000'000'000).ok());
  // Reader 0 keeps up, reader 1 never reads: the fourth record has no free slot.
  ShmFrames got;
  uint32_t tag = 0;
  for (int i = 0; i < 3; ++i) REQUIRE(*ring->read(0, got, &tag));
  CHECK_FALSE(*ring->read(0, got, &tag));  // nothing more for reader 0
  const auto t0 = std::chrono::steady_clock::now();
  auto full = ring->write(small, 0, steady_now_ns() + 50'000'000);
  REQUIRE_FALSE(full.ok());
  CHECK(full.error().code == "ring_full");
  CHECK(full.error().message.find("reader 1") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 >= 45ms);
  // Once reader 1 reads one record, its slot is free again.
  REQUIRE(*ring->read(1, got, &tag));
  CHECK(got == small);
  CHECK(ring->write({"next"}, 5, steady_now_ns() + 1'000'000'000).ok());
  REQUIRE(*ring->read(0, got, &tag));
  CHECK(got == ShmFrames{"next"});
  CHECK(tag == 5);

  // A record larger than a slot is refused: the caller sends it another way.
  const ShmFrames big = {std::string(300, 'x')};
  CHECK_FALSE(ring->fits(big));
  auto refused = ring->write(big, 0, steady_now_ns());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == "too_large");
  std::free(mem);
}

TEST_CASE("ShmRing: malformed rings and records are refused with a reason") {
  const size_t bytes = ShmRing::region_bytes(1, 2, 8192);
  void* mem = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  std::memset(mem, 0, bytes);
  auto none = ShmRing::attach(mem, bytes);
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message.find("magic") != std::string::npos);
  CHECK_FALSE(ShmRing::format(mem, bytes - 1, 1, 2, 8192).ok());  // region too small
  CHECK_FALSE(ShmRing::format(mem, bytes, 0, 2, 8192).ok());      // no reader
  auto ring = ShmRing::format(mem, bytes, 1, 2, 8192);
  REQUIRE(ring.ok());
  CHECK_FALSE(ShmRing::attach(mem, bytes - 64).ok());  // header promises more than the region

  // A record whose frame length runs past its slot (a corrupted length word).
  const uint64_t marker = 4660;
  REQUIRE(ring->write({std::string(marker, 'q')}, 0, steady_now_ns()).ok());
  auto* words = static_cast<uint64_t*>(mem);
  size_t found = 0;
  for (size_t i = 0; i < bytes / 8; ++i)
    if (words[i] == marker) {
      words[i] = uint64_t{1} << 40;
      ++found;
    }
  REQUIRE(found == 1);
  ShmFrames got;
  uint32_t tag = 0;
  auto bad = ring->read(0, got, &tag);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == "bad_record");
  CHECK(bad.error().message.find("runs past its slot") != std::string::npos);

  CHECK_FALSE(StepChannel::attach("not-a-spec", 0).ok());
  CHECK_FALSE(StepChannel::attach("1:2", 0).ok());
  std::free(mem);
}

#pragma once
// StepChannel: the shared-memory step path of one worker group. One memfd holds two
// ShmRings: "down" carries each step's SchedulerOutput from the engine to every rank
// (reader r = rank r), "up" carries rank 0's ModelRunnerOutput back (one reader, the
// engine). Wake-ups go through eventfds: one per rank for down, one for up (the
// engine's). The engine creates the channel before spawning its workers; each worker
// inherits the memfd and its two eventfds (no name in /dev/shm, so nothing is left
// behind when a process is SIGKILLed) and attaches with the spec string it is given.
// Control messages stay on the ZeroMQ socket, and so does a step or output too large
// for a slot: transport/step_link.h is that protocol; this class owns memory and fds.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "transport/shm_ring.h"

namespace vela::transport {

class StepChannel {
 public:
  // Record tags.
  static constexpr uint32_t kMessage = 0;   // the record is an encoded message
  static constexpr uint32_t kOnSocket = 1;  // this step travels on the socket instead

  // Engine end: a fresh channel for world_size ranks.
  static Result<std::unique_ptr<StepChannel>> create(int32_t world_size, uint32_t slots, uint64_t slot_bytes);
  // Worker end of `rank`, from the spec the engine passed (worker_spec()).
  static Result<std::unique_ptr<StepChannel>> attach(const std::string& spec, int32_t rank);
  ~StepChannel();
  StepChannel(const StepChannel&) = delete;
  StepChannel& operator=(const StepChannel&) = delete;

  // Engine end: the fds worker `rank` must inherit, and the spec naming them.
  std::vector<int> worker_fds(int32_t rank) const;
  std::string worker_spec(int32_t rank) const;

  ShmRing& down() { return down_; }
  ShmRing& up() { return up_; }
  // This end's view: the ring it reads (as reader()) and the ring it writes.
  ShmRing& inbox() { return is_engine_ ? up_ : down_; }
  ShmRing& outbox() { return is_engine_ ? down_ : up_; }
  uint32_t reader() const { return reader_; }
  // The eventfd this end sleeps on: the engine's "up" fd, or this rank's "down" fd.
  int wake_fd() const { return is_engine_ ? up_fd_ : down_fds_.at(0); }

 private:
  StepChannel() = default;
  Status map(size_t size);

  bool is_engine_ = false;
  uint32_t reader_ = 0;  // of inbox(): the engine is the up ring's only reader, rank r reads down as r
  int memfd_ = -1;
  void* mem_ = nullptr;
  size_t size_ = 0;
  std::vector<int> down_fds_;  // engine: one per rank; worker: its own
  int up_fd_ = -1;
  ShmRing down_, up_;
};

}  // namespace vela::transport

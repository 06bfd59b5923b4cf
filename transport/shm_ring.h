#pragma once
// ShmRing: one writer, N readers, a ring of fixed-size slots in shared memory. It
// carries the step path between an engine replica and its local workers (the
// SchedulerOutput broadcast down, rank 0's ModelRunnerOutput up) without ZeroMQ's
// I/O-thread hops: a record is copied in by the writer and out by each reader, and a
// reader that is asleep is woken through its eventfd, which it polls beside its
// sockets and pidfds.
//
// Sleep/wake is a Dekker handshake on two seq_cst atomics: a reader announces
// `sleeping` and then re-reads write_seq; the writer publishes write_seq and then
// reads `sleeping`. At least one of them sees the other, so a wake-up is never lost,
// and a reader that is spinning costs the writer no syscall.
//
// Slot i holds record i mod num_slots; the writer reuses a slot only when every
// reader has copied its record out (read_seq), so a reader that lags makes the
// writer wait (with a deadline), never read torn data. A record that does not fit a
// slot is the caller's to send another way (fits()).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace vela::transport {

using ShmFrames = std::vector<std::string>;

class ShmRing {
 public:
  static constexpr uint32_t kMaxReaders = 64;

  // Bytes of shared memory a ring of this shape needs (header + slots).
  static size_t region_bytes(uint32_t readers, uint32_t slots, uint64_t slot_bytes);
  // Formats `mem` (region_bytes long, zero or garbage) as an empty ring.
  static Result<ShmRing> format(void* mem, size_t size, uint32_t readers, uint32_t slots, uint64_t slot_bytes);
  // Attaches to a ring another process formatted; checks the header against `size`.
  static Result<ShmRing> attach(void* mem, size_t size);

  ShmRing() = default;
  uint32_t readers() const;
  uint32_t slots() const;
  uint64_t slot_bytes() const;

  // ---- writer --------------------------------------------------------------------
  // Eventfds to write when a reader sleeps (one per reader, or -1: never woken).
  void set_wake_fds(std::vector<int> fds) { wake_fds_ = std::move(fds); }
  // Whether `frames` fit one slot (with the record header).
  bool fits(const ShmFrames& frames) const;
  // Publishes one record: `frames` (which must fit) and a caller-defined tag. Waits
  // for the oldest slot to be read by every reader until deadline_ns (steady clock);
  // then fails with "ring_full" naming the reader that lags.
  Status write(const ShmFrames& frames, uint32_t tag, int64_t deadline_ns);
  uint64_t written() const;

  // ---- reader r --------------------------------------------------------------------
  bool readable(uint32_t reader) const;
  // Copies the next record into `frames` (strings keep their capacity) and its tag.
  // False when nothing is published; an error when the record is malformed.
  Result<bool> read(uint32_t reader, ShmFrames& frames, uint32_t* tag);
  // Spins (pause, and a yield every few microseconds so a peer on the same core can
  // run) until a record is readable or spin_ns have passed. True when readable.
  bool spin(uint32_t reader, int64_t spin_ns) const;
  // Before blocking on the wake fd: true means "sleep now"; false means a record
  // arrived meanwhile (do not block). Call end_sleep() after waking either way.
  bool begin_sleep(uint32_t reader);
  void end_sleep(uint32_t reader, int wake_fd);
  // spin, then begin_sleep / poll(wake_fd) / end_sleep until a record is readable or
  // deadline_ns (steady clock) passes; for a reader with no other fd to watch (a
  // worker or the engine watches its sockets and pidfds beside it instead).
  bool wait_readable(uint32_t reader, int wake_fd, int64_t spin_ns, int64_t deadline_ns);

 private:
  struct Header;
  struct ReaderState;
  explicit ShmRing(char* base) : base_(base) {}
  Header* header() const;
  ReaderState* reader_state(uint32_t r) const;
  char* slot(uint64_t index) const;

  char* base_ = nullptr;
  std::vector<int> wake_fds_;
};

// Steady-clock nanoseconds (the clock write() deadlines use).
int64_t steady_now_ns();

}  // namespace vela::transport

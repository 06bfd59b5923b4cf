#include "transport/shm_ring.h"

#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VELA_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define VELA_CPU_RELAX() asm volatile("yield")
#else
#define VELA_CPU_RELAX() ((void)0)
#endif

namespace vela::transport {

namespace {
constexpr uint64_t kMagic = 0x56454c4152494e47ull;  // "VELARING"
constexpr uint32_t kVersion = 1;
constexpr size_t kLine = 64;
// Record layout in a slot: u32 tag, u32 frame count, u64 length per frame, bytes.
constexpr size_t kRecordHeader = 8;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
}  // namespace

int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct alignas(kLine) ShmRing::Header {
  uint64_t magic;
  uint32_t version;
  uint32_t readers;
  uint32_t slots;
  uint32_t pad;
  uint64_t slot_bytes;
  uint64_t region_bytes;
  alignas(kLine) std::atomic<uint64_t> write_seq;  // records published
};

struct alignas(kLine) ShmRing::ReaderState {
  std::atomic<uint64_t> read_seq;   // records this reader has copied out
  std::atomic<uint32_t> sleeping;   // 1 while blocked (or about to block) on its eventfd
};

static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free,
              "shared-memory atomics must be lock-free to work across processes");

size_t ShmRing::region_bytes(uint32_t readers, uint32_t slots, uint64_t slot_bytes) {
  return sizeof(Header) + size_t{readers} * sizeof(ReaderState) + size_t{slots} * round_up(slot_bytes, kLine);
}

ShmRing::Header* ShmRing::header() const { return reinterpret_cast<Header*>(base_); }
ShmRing::ReaderState* ShmRing::reader_state(uint32_t r) const {
  return reinterpret_cast<ReaderState*>(base_ + sizeof(Header)) + r;
}
char* ShmRing::slot(uint64_t index) const {
  const Header* h = header();
  return base_ + sizeof(Header) + size_t{h->readers} * sizeof(ReaderState) +
         (index % h->slots) * round_up(h->slot_bytes, kLine);
}
uint32_t ShmRing::readers() const { return header()->readers; }
uint32_t ShmRing::slots() const { return header()->slots; }
uint64_t ShmRing::slot_bytes() const { return header()->slot_bytes; }
uint64_t ShmRing::written() const { return header()->write_seq.load(std::memory_order_acquire); }

Result<ShmRing> ShmRing::format(void* mem, size_t size, uint32_t readers, uint32_t slots, uint64_t slot_bytes) {
  if (readers < 1 || readers > kMaxReaders)
    return make_error("bad_ring", "shared-memory ring: readers must be 1.." + std::to_string(kMaxReaders) +
                                      ", got " + std::to_string(readers));
  if (slots < 1) return make_error("bad_ring", "shared-memory ring: needs at least one slot");
  if (slot_bytes < 64) return make_error("bad_ring", "shared-memory ring: slot_bytes must be >= 64");
  const size_t need = region_bytes(readers, slots, slot_bytes);
  if (!mem || size < need)
    return make_error("bad_ring", "shared-memory ring: region of " + std::to_string(size) + " bytes, needs " +
                                      std::to_string(need));
  if (reinterpret_cast<uintptr_t>(mem) % kLine != 0)
    return make_error("bad_ring", "shared-memory ring: region is not 64-byte aligned");
  std::memset(mem, 0, sizeof(Header) + size_t{readers} * sizeof(ReaderState));
  auto* h = new (mem) Header{};
  h->version = kVersion;
  h->readers = readers;
  h->slots = slots;
  h->slot_bytes = slot_bytes;
  h->region_bytes = need;
  h->write_seq.store(0, std::memory_order_relaxed);
  ShmRing ring(static_cast<char*>(mem));
  for (uint32_t r = 0; r < readers; ++r) {
    auto* s = new (ring.reader_state(r)) ReaderState{};
    s->read_seq.store(0, std::memory_order_relaxed);
    s->sleeping.store(0, std::memory_order_relaxed);
  }
  // The magic last: an attacher that sees it sees a formatted header.
  std::atomic_thread_fence(std::memory_order_release);
  h->magic = kMagic;
  return ring;
}

Result<ShmRing> ShmRing::attach(void* mem, size_t size) {
  if (!mem || size < sizeof(Header) || reinterpret_cast<uintptr_t>(mem) % kLine != 0)
    return make_error("bad_ring", "shared-memory ring: region too small or misaligned");
  const auto* h = static_cast<const Header*>(mem);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (h->magic != kMagic) return make_error("bad_ring", "shared-memory ring: no ring header (bad magic)");
  if (h->version != kVersion)
    return make_error("bad_ring", "shared-memory ring: version " + std::to_string(h->version) + ", expected " +
                                      std::to_string(kVersion));
  if (h->readers < 1 || h->readers > kMaxReaders || h->slots < 1 || h->slot_bytes < 64 ||
      h->region_bytes != region_bytes(h->readers, h->slots, h->slot_bytes) || h->region_bytes > size)
    return make_error("bad_ring", "shared-memory ring: header does not match the region (" + std::to_string(size) +
                                      " bytes)");
  return ShmRing(static_cast<char*>(mem));
}

bool ShmRing::fits(const ShmFrames& frames) const {
  size_t n = kRecordHeader + 8 * frames.size();
  for (const auto& f : frames) n += f.size();
  return n <= header()->slot_bytes;
}

Status ShmRing::write(const ShmFrames& frames, uint32_t tag, int64_t deadline_ns) {
  Header* h = header();
  if (!fits(frames))
    return make_error("too_large", "shared-memory ring: record does not fit a slot of " +
                                       std::to_string(h->slot_bytes) + " bytes");
  const uint64_t seq = h->write_seq.load(std::memory_order_relaxed);
  // The slot last held record seq - slots: every reader must have copied it out.
  if (seq >= h->slots) {
    const uint64_t need = seq - h->slots + 1;
    for (int spins = 0;; ++spins) {
      uint32_t lagging = h->readers;
      for (uint32_t r = 0; r < h->readers; ++r)
        if (reader_state(r)->read_seq.load(std::memory_order_acquire) < need) {
          lagging = r;
          break;
        }
      if (lagging == h->readers) break;
      if (steady_now_ns() >= deadline_ns)
        return make_error("ring_full", "shared-memory ring: reader " + std::to_string(lagging) + " has not read record " +
                                           std::to_string(need - 1) + " (" + std::to_string(h->slots) +
                                           " records behind)");
      if (spins < 64) {
        VELA_CPU_RELAX();
      } else if (spins < 256) {
        sched_yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
  }
  char* p = slot(seq);
  const uint32_t count = static_cast<uint32_t>(frames.size());
  std::memcpy(p, &tag, 4);
  std::memcpy(p + 4, &count, 4);
  char* lengths = p + kRecordHeader;
  char* data = lengths + 8 * frames.size();
  for (size_t i = 0; i < frames.size(); ++i) {
    const uint64_t len = frames[i].size();
    std::memcpy(lengths + 8 * i, &len, 8);
    std::memcpy(data, frames[i].data(), len);
    data += len;
  }
  h->write_seq.store(seq + 1, std::memory_order_seq_cst);
  for (uint32_t r = 0; r < h->readers; ++r) {
    if (reader_state(r)->sleeping.load(std::memory_order_seq_cst) && r < wake_fds_.size() && wake_fds_[r] >= 0) {
      const uint64_t one = 1;
      (void)!::write(wake_fds_[r], &one, sizeof(one));
    }
  }
  return ok_status();
}

bool ShmRing::readable(uint32_t reader) const {
  return header()->write_seq.load(std::memory_order_acquire) >
         reader_state(reader)->read_seq.load(std::memory_order_relaxed);
}

Result<bool> ShmRing::read(uint32_t reader, ShmFrames& frames, uint32_t* tag) {
  const Header* h = header();
  ReaderState* s = reader_state(reader);
  const uint64_t seq = s->read_seq.load(std::memory_order_relaxed);
  if (h->write_seq.load(std::memory_order_acquire) <= seq) return false;
  const char* p = slot(seq);
  const uint64_t cap = h->slot_bytes;
  uint32_t count = 0;
  std::memcpy(tag, p, 4);
  std::memcpy(&count, p + 4, 4);
  if (kRecordHeader + 8 * uint64_t{count} > cap)
    return make_error("bad_record", "shared-memory ring: record " + std::to_string(seq) + " claims " +
                                        std::to_string(count) + " frames");
  const char* lengths = p + kRecordHeader;
  uint64_t used = kRecordHeader + 8 * uint64_t{count};
  frames.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t len = 0;
    std::memcpy(&len, lengths + 8 * i, 8);
    if (len > cap - used)
      return make_error("bad_record", "shared-memory ring: record " + std::to_string(seq) + " frame " +
                                          std::to_string(i) + " runs past its slot");
    frames[i].assign(p + used, len);
    used += len;
  }
  s->read_seq.store(seq + 1, std::memory_order_release);
  return true;
}

bool ShmRing::spin(uint32_t reader, int64_t spin_ns) const {
  if (readable(reader)) return true;
  if (spin_ns <= 0) return false;
  const int64_t until = steady_now_ns() + spin_ns;
  for (int i = 1;; ++i) {
    for (int k = 0; k < 32; ++k) {
      if (readable(reader)) return true;
      VELA_CPU_RELAX();
    }
    // A yield every ~1-2 us: with more processes than cores the peer we wait for may
    // need this core.
    if (i % 8 == 0) {
      sched_yield();
      if (steady_now_ns() >= until) return readable(reader);
    }
  }
}

bool ShmRing::begin_sleep(uint32_t reader) {
  ReaderState* s = reader_state(reader);
  s->sleeping.store(1, std::memory_order_seq_cst);
  if (header()->write_seq.load(std::memory_order_seq_cst) > s->read_seq.load(std::memory_order_relaxed)) {
    s->sleeping.store(0, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void ShmRing::end_sleep(uint32_t reader, int wake_fd) {
  reader_state(reader)->sleeping.store(0, std::memory_order_relaxed);
  if (wake_fd >= 0) {
    uint64_t counter = 0;
    (void)!::read(wake_fd, &counter, sizeof(counter));  // non-blocking: drains a pending wake
  }
}

bool ShmRing::wait_readable(uint32_t reader, int wake_fd, int64_t spin_ns, int64_t deadline_ns) {
  while (true) {
    if (spin(reader, spin_ns)) return true;
    const int64_t left_ms = (deadline_ns - steady_now_ns()) / 1000000;
    if (left_ms <= 0) return readable(reader);
    if (!begin_sleep(reader)) continue;
    pollfd p{wake_fd, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 100)));
    end_sleep(reader, wake_fd);
  }
}

}  // namespace vela::transport

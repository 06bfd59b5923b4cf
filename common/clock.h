#pragma once
// Injectable clocks: time-based logic takes a Clock& so tests can drive time.
#include <chrono>
#include <cstdint>

namespace vela {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ns() const = 0;  // monotonic nanoseconds
};

class SteadyClock final : public Clock {
 public:
  int64_t now_ns() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
  }
};

class ManualClock final : public Clock {
 public:
  int64_t now_ns() const override { return t_ns_; }
  void advance_ns(int64_t d) { t_ns_ += d; }
  void set_ns(int64_t t) { t_ns_ = t; }
 private:
  int64_t t_ns_ = 0;
};

// Wall-clock nanoseconds since the Unix epoch (for timestamps that cross processes).
inline int64_t wall_time_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace vela

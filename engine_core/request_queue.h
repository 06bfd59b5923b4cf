#pragma once
// The waiting queue, behind a small interface so the scheduling policy is one
// choice at construction. Entries are request slots; each entry carries its own
// ordering key so the queue never reaches back into the request table.
//  - FCFS: arrival order; a preempted request goes back to the front (it arrived
//    before everything still waiting).
//  - Priority: smallest (priority, arrival_time, arrival_seq) first; a preempted
//    request re-enters with its original key.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <vector>

#include "engine_core/request.h"

namespace vela {

enum class SchedulingPolicy : uint8_t { kFcfs, kPriority };

// Parses "fcfs" | "priority"; false on anything else.
bool parse_scheduling_policy(std::string_view text, SchedulingPolicy* out);

// Whether a is a better preemption victim than b: lower priority (a larger
// priority value) first under the priority policy, then the later arrival.
bool is_better_victim(const Request& a, const Request& b, SchedulingPolicy policy);

class RequestQueue {
 public:
  virtual ~RequestQueue() = default;
  virtual void push(const Request& request) = 0;            // a new arrival
  virtual void push_preempted(const Request& request) = 0;  // back from RUNNING
  virtual int32_t front() const = 0;                        // slot; requires !empty()
  virtual void pop_front() = 0;
  virtual bool remove(int32_t slot) = 0;                    // O(n); for aborts
  virtual size_t size() const = 0;
  bool empty() const { return size() == 0; }
  // Slots in queue order (tests and integrity checks; allocates).
  virtual std::vector<int32_t> slots_in_order() const = 0;
};

std::unique_ptr<RequestQueue> make_request_queue(SchedulingPolicy policy);

class FcfsQueue final : public RequestQueue {
 public:
  void push(const Request& request) override { slots_.push_back(request.slot()); }
  void push_preempted(const Request& request) override { slots_.push_front(request.slot()); }
  int32_t front() const override { return slots_.front(); }
  void pop_front() override { slots_.pop_front(); }
  bool remove(int32_t slot) override;
  size_t size() const override { return slots_.size(); }
  std::vector<int32_t> slots_in_order() const override { return {slots_.begin(), slots_.end()}; }

 private:
  std::deque<int32_t> slots_;
};

class PriorityQueue final : public RequestQueue {
 public:
  void push(const Request& request) override;
  void push_preempted(const Request& request) override { push(request); }
  int32_t front() const override { return heap_.front().slot; }
  void pop_front() override;
  bool remove(int32_t slot) override;
  size_t size() const override { return heap_.size(); }
  std::vector<int32_t> slots_in_order() const override;

 private:
  struct Entry {
    int32_t priority;
    double arrival_time;
    uint64_t arrival_seq;
    int32_t slot;
  };
  // std heap algorithms keep the *largest* first, so "after" orders the best last.
  static bool after(const Entry& a, const Entry& b);
  std::vector<Entry> heap_;
};

}  // namespace vela

#include "engine_core/request_queue.h"

#include <algorithm>
#include <tuple>

namespace vela {

bool parse_scheduling_policy(std::string_view text, SchedulingPolicy* out) {
  if (text == "fcfs") {
    *out = SchedulingPolicy::kFcfs;
    return true;
  }
  if (text == "priority") {
    *out = SchedulingPolicy::kPriority;
    return true;
  }
  return false;
}

bool is_better_victim(const Request& a, const Request& b, SchedulingPolicy policy) {
  if (policy == SchedulingPolicy::kPriority && a.priority() != b.priority())
    return a.priority() > b.priority();
  return a.arrival_seq() > b.arrival_seq();
}

std::unique_ptr<RequestQueue> make_request_queue(SchedulingPolicy policy) {
  if (policy == SchedulingPolicy::kPriority) return std::make_unique<PriorityQueue>();
  return std::make_unique<FcfsQueue>();
}

bool FcfsQueue::remove(int32_t slot) {
  const auto it = std::find(slots_.begin(), slots_.end(), slot);
  if (it == slots_.end()) return false;
  slots_.erase(it);
  return true;
}

bool PriorityQueue::after(const Entry& a, const Entry& b) {
  return std::tie(a.priority, a.arrival_time, a.arrival_seq) >
         std::tie(b.priority, b.arrival_time, b.arrival_seq);
}

void PriorityQueue::push(const Request& request) {
  heap_.push_back(Entry{request.priority(), request.arrival_time(), request.arrival_seq(), request.slot()});
  std::push_heap(heap_.begin(), heap_.end(), after);
}

void PriorityQueue::pop_front() {
  std::pop_heap(heap_.begin(), heap_.end(), after);
  heap_.pop_back();
}

bool PriorityQueue::remove(int32_t slot) {
  const auto it = std::find_if(heap_.begin(), heap_.end(), [slot](const Entry& e) { return e.slot == slot; });
  if (it == heap_.end()) return false;
  *it = heap_.back();
  heap_.pop_back();
  std::make_heap(heap_.begin(), heap_.end(), after);
  return true;
}

std::vector<int32_t> PriorityQueue::slots_in_order() const {
  std::vector<Entry> sorted = heap_;
  std::sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) { return after(b, a); });
  std::vector<int32_t> slots;
  slots.reserve(sorted.size());
  for (const Entry& e : sorted) slots.push_back(e.slot);
  return slots;
}

}  // namespace vela

#pragma once
// A Prometheus histogram: cumulative bucket counts over fixed upper bounds, the sum
// and the count. Not thread-safe (ServeMetrics holds the lock).
#include <cstdint>
#include <string>
#include <vector>

namespace vela::metrics {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)), counts_(bounds_.size(), 0) {}
  void observe(double value) {
    for (size_t i = 0; i < bounds_.size(); ++i)
      if (value <= bounds_[i]) ++counts_[i];  // cumulative: every bucket at or above
    sum_ += value;
    ++count_;
  }
  // Appends NAME_bucket{le=..}, NAME_sum and NAME_count lines (labels: `k="v"` or empty).
  void render(const std::string& name, const std::string& labels, std::string& out) const;
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // counts_[i]: observations <= bounds_[i]
  double sum_ = 0;
  uint64_t count_ = 0;
};

}  // namespace vela::metrics

#include "perf/serve_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace vela::perf {

int64_t RequestRecord::output_tokens() const {
  int64_t n = 0;
  for (const auto& a : arrivals) n += a.tokens;
  return n;
}

RequestLatency request_latency(const RequestRecord& r) {
  RequestLatency l;
  l.e2e_s = r.end_s - r.send_s;
  l.tpot_s = std::nan("");
  if (r.arrivals.empty()) {
    l.ttft_s = std::nan("");
    return l;
  }
  l.ttft_s = r.arrivals.front().time_s - r.send_s;
  double prev = r.arrivals.front().time_s;
  for (size_t i = 0; i < r.arrivals.size(); ++i) {
    const auto& a = r.arrivals[i];
    if (i > 0) l.itl_s.push_back(a.time_s - prev);
    for (int32_t k = 1; k < a.tokens; ++k) l.itl_s.push_back(0.0);  // delivered together
    prev = a.time_s;
  }
  const int64_t n = r.output_tokens();
  if (n > 1) l.tpot_s = (l.e2e_s - l.ttft_s) / static_cast<double>(n - 1);
  return l;
}

Percentiles percentiles(std::vector<double> v) {
  Percentiles p;
  p.count = v.size();
  if (v.empty()) {
    p.mean = p.p50 = p.p90 = p.p99 = std::nan("");
    return p;
  }
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    const double rank = q * static_cast<double>(v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(rank));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
  };
  p.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  return p;
}

ServeSummary summarize(const std::vector<RequestRecord>& records, double wall_s) {
  ServeSummary s;
  s.requests = records.size();
  s.wall_s = wall_s;
  std::vector<double> ttft, tpot, itl, e2e;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    std::string why = r.failure;
    if (why.empty() && !r.finished) why = "never finished";
    if (why.empty() && r.output_tokens() != r.expected_tokens)
      why = "produced " + std::to_string(r.output_tokens()) + " tokens, expected " + std::to_string(r.expected_tokens);
    if (!why.empty()) {
      ++s.failed;
      if (s.failures.size() < 5) s.failures.push_back(std::to_string(i) + ": " + why);
      continue;
    }
    ++s.completed;
    s.output_tokens += r.output_tokens();
    const auto l = request_latency(r);
    ttft.push_back(l.ttft_s);
    if (!std::isnan(l.tpot_s)) tpot.push_back(l.tpot_s);
    itl.insert(itl.end(), l.itl_s.begin(), l.itl_s.end());
    e2e.push_back(l.e2e_s);
  }
  if (wall_s > 0) {
    s.request_throughput = static_cast<double>(s.completed) / wall_s;
    s.output_throughput = static_cast<double>(s.output_tokens) / wall_s;
  }
  s.ttft_s = percentiles(std::move(ttft));
  s.tpot_s = percentiles(std::move(tpot));
  s.itl_s = percentiles(std::move(itl));
  s.e2e_s = percentiles(std::move(e2e));
  return s;
}

}  // namespace vela::perf

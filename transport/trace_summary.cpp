#include "transport/trace_summary.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace vela {

Result<std::vector<TraceRecord>> read_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error("not_found", "cannot open trace file '" + path + "'");
  std::vector<TraceRecord> out;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object())
      return make_error("malformed", path + ":" + std::to_string(line_no) + ": not a JSON object");
    TraceRecord r;
    r.type = j.value("type", "");
    r.from = j.value("from", "");
    r.to = j.value("to", "");
    r.bytes = j.value("bytes", uint64_t{0});
    r.step_id = j.value("step", uint64_t{0});
    r.request_id = j.value("request_id", "");
    r.send_time_ns = j.value("send_ns", int64_t{0});
    r.recv_time_ns = j.value("recv_ns", int64_t{0});
    out.push_back(std::move(r));
  }
  return out;
}

Status write_chrome_trace(const std::string& jsonl_path, const std::string& out_path) {
  VELA_TRY_ASSIGN(const auto records, read_trace(jsonl_path));
  int64_t t0 = INT64_MAX;
  for (const auto& r : records) t0 = std::min(t0, r.send_time_ns > 0 ? r.send_time_ns : r.recv_time_ns);
  std::map<std::string, int> tids;
  nlohmann::json events = nlohmann::json::array();
  for (const auto& r : records) {
    auto [it, added] = tids.emplace(r.to, static_cast<int>(tids.size()) + 1);
    if (added)
      events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", 1}, {"tid", it->second}, {"args", {{"name", r.to}}}});
    const int64_t start = r.send_time_ns > 0 ? r.send_time_ns : r.recv_time_ns;
    events.push_back({{"ph", "X"},
                      {"name", r.type},
                      {"cat", r.from + "->" + r.to},
                      {"pid", 1},
                      {"tid", it->second},
                      {"ts", static_cast<double>(start - t0) / 1000.0},
                      {"dur", static_cast<double>(std::max<int64_t>(0, r.recv_time_ns - start)) / 1000.0},
                      {"args", {{"from", r.from}, {"bytes", r.bytes}, {"step", r.step_id}, {"request_id", r.request_id}}}});
  }
  std::ofstream out(out_path);
  if (!out) return make_error("write_failed", "cannot write '" + out_path + "'");
  out << nlohmann::json{{"traceEvents", events}, {"displayTimeUnit", "ns"}}.dump() << "\n";
  return ok_status();
}

TraceSummary summarize_trace(const std::vector<TraceRecord>& records) {
  TraceSummary s;
  std::map<std::string, std::vector<double>> latencies;
  for (const auto& r : records) {
    auto& t = s.by_type[r.type];
    t.count++;
    t.bytes += r.bytes;
    if (r.send_time_ns > 0 && r.recv_time_ns >= r.send_time_ns)
      latencies[r.type].push_back(static_cast<double>(r.recv_time_ns - r.send_time_ns) / 1000.0);
    if (r.step_id > 0 && (r.type == "SchedulerOutput" || r.type == "ModelRunnerOutput")) {
      auto [it, added] = s.steps.emplace(r.step_id, std::make_pair(INT64_MAX, INT64_MIN));
      if (r.type == "SchedulerOutput") it->second.first = std::min(it->second.first, r.send_time_ns);
      else it->second.second = std::max(it->second.second, r.recv_time_ns);
    }
  }
  for (auto& [type, v] : latencies) {
    std::sort(v.begin(), v.end());
    auto pct = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))]; };
    auto& t = s.by_type[type];
    t.p50_us = pct(0.5);
    t.p90_us = pct(0.9);
    t.p99_us = pct(0.99);
    t.max_us = v.back();
  }
  return s;
}

std::string format_summary(const TraceSummary& s, size_t max_steps_shown) {
  std::ostringstream o;
  char line[256];
  std::snprintf(line, sizeof(line), "%-22s %8s %12s %10s %10s %10s %10s\n", "message", "count", "bytes", "p50 us",
                "p90 us", "p99 us", "max us");
  o << line;
  for (const auto& [type, t] : s.by_type) {
    std::snprintf(line, sizeof(line), "%-22s %8llu %12llu %10.1f %10.1f %10.1f %10.1f\n", type.c_str(),
                  static_cast<unsigned long long>(t.count), static_cast<unsigned long long>(t.bytes), t.p50_us, t.p90_us,
                  t.p99_us, t.max_us);
    o << line;
  }
  o << "\nsteps: " << s.steps.size() << "\n";
  if (!s.steps.empty()) {
    const int64_t t0 = s.steps.begin()->second.first;
    o << "step        start ms   round trip us\n";
    size_t shown = 0;
    for (const auto& [id, span] : s.steps) {
      if (shown++ >= max_steps_shown) {
        o << "... (" << s.steps.size() - max_steps_shown << " more)\n";
        break;
      }
      const bool complete = span.first != INT64_MAX && span.second != INT64_MIN;
      std::snprintf(line, sizeof(line), "%-10llu %10.3f %15s\n", static_cast<unsigned long long>(id),
                    span.first != INT64_MAX ? static_cast<double>(span.first - t0) / 1e6 : 0.0,
                    complete ? std::to_string((span.second - span.first) / 1000).c_str() : "-");
      o << line;
    }
  }
  return o.str();
}

}  // namespace vela

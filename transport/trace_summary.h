#pragma once
// Reading a message trace back: Chrome trace-event JSON (open in Perfetto) and the
// summary `vela trace summarize` prints.
#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "transport/trace_record.h"

namespace vela {

Result<std::vector<TraceRecord>> read_trace(const std::string& jsonl_path);

// One complete event per record (a slice from send to receive on the receiver's track).
Status write_chrome_trace(const std::string& jsonl_path, const std::string& out_path);

struct MessageTypeSummary {
  uint64_t count = 0;
  uint64_t bytes = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, max_us = 0;  // receive - send
};

struct TraceSummary {
  std::map<std::string, MessageTypeSummary> by_type;
  // step id -> (first SchedulerOutput send, last ModelRunnerOutput receive) in ns
  std::map<uint64_t, std::pair<int64_t, int64_t>> steps;
};

TraceSummary summarize_trace(const std::vector<TraceRecord>& records);
std::string format_summary(const TraceSummary& summary, size_t max_steps_shown = 20);

}  // namespace vela

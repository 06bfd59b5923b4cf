#pragma once
// One message crossing an actor or process boundary, as the trace records it.
// Every process appends to the same JSONL file (one write(2) per line with O_APPEND,
// so lines from different processes never interleave); `vela trace` reads it back.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vela {
namespace msg {
struct Envelope;
}

struct TraceRecord {
  std::string type;        // message type, e.g. "SchedulerOutput"
  std::string from;        // sender, e.g. "engine0", "worker0.1", "frontend", "client"
  std::string to;
  uint64_t bytes = 0;      // encoded size on the wire (0 for in-process actor messages)
  uint64_t step_id = 0;    // step messages; 0 otherwise
  std::string request_id;  // request messages; empty otherwise
  int64_t send_time_ns = 0;  // wall clock, ns since the epoch
  int64_t recv_time_ns = 0;
};

// Null when tracing is off: the hot path tests one pointer and pays nothing else.
using TraceFn = std::function<void(TraceRecord)>;

std::string to_json_line(const TraceRecord& record);  // one line, no newline

// The record of an encoded message `from` -> `to`, received at recv_time_ns (wall).
TraceRecord received_record(const msg::Envelope& envelope, std::string from, std::string to,
                            const std::vector<std::string>& frames, int64_t recv_time_ns);

// Appends records to a JSONL file. Thread-safe: each record is one write(2).
class TraceFile {
 public:
  explicit TraceFile(const std::string& path);
  ~TraceFile();
  TraceFile(const TraceFile&) = delete;
  TraceFile& operator=(const TraceFile&) = delete;
  bool ok() const { return fd_ >= 0; }
  void append(const TraceRecord& record);

 private:
  int fd_ = -1;
};

}  // namespace vela

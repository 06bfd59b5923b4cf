#pragma once
// Latency figures of a serving benchmark (`vela bench serve`), computed from what the
// client saw: when each request was sent and when each streamed event carrying
// tokens arrived. Kept apart from the ZeroMQ loop so the arithmetic is testable.
//
// Definitions (times on the client's steady clock):
//   TTFT  send -> the first event carrying at least one token.
//   ITL   the gaps between successive token arrivals. An event carrying k tokens
//         delivers them at once: its first token's gap is measured from the previous
//         token-carrying event, the other k - 1 count as gaps of 0. So a request with
//         n output tokens has exactly n - 1 ITLs, and their sum is the time from the
//         first to the last token (the mean ITL of one request is its streaming TPOT).
//   TPOT  (E2E - TTFT) / (n - 1); undefined (left out) for n = 1.
//   E2E   send -> the request's final event.
// Failed requests (error event, error/abort final, wrong token count, timeout) are
// counted, and left out of the latency percentiles.
#include <cstdint>
#include <string>
#include <vector>

namespace vela::perf {

struct TokenArrival {
  double time_s = 0;    // when the event was received, seconds since the run started
  int32_t tokens = 0;   // tokens it carried (> 0)
};

struct RequestRecord {
  double send_s = 0;                   // when the request was handed to the client
  double end_s = 0;                    // when its final (or error, or timeout) was seen
  std::vector<TokenArrival> arrivals;  // token-carrying events, in arrival order
  int32_t expected_tokens = 0;         // max_tokens (decoded exactly: ignore_eos)
  bool finished = false;               // a final arrived (or it failed: see failure)
  std::string failure;                 // empty = succeeded; else why it failed
  int64_t output_tokens() const;
};

struct RequestLatency {
  double ttft_s = 0;
  double tpot_s = 0;          // NaN when the request produced a single token
  double e2e_s = 0;
  std::vector<double> itl_s;  // n - 1 gaps
};
RequestLatency request_latency(const RequestRecord& r);

// Percentiles with linear interpolation between closest ranks (numpy's default).
struct Percentiles {
  size_t count = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;  // NaN when count == 0
};
Percentiles percentiles(std::vector<double> values);

struct ServeSummary {
  size_t requests = 0, completed = 0, failed = 0;
  std::vector<std::string> failures;  // "<index>: <why>" for the first few failures
  int64_t output_tokens = 0;          // of completed requests
  double wall_s = 0;
  double request_throughput = 0;      // completed requests / wall time
  double output_throughput = 0;       // completed requests' output tokens / wall time
  Percentiles ttft_s, tpot_s, itl_s, e2e_s;
};
// wall_s: from the run's start (the first scheduled send) to the last final.
ServeSummary summarize(const std::vector<RequestRecord>& records, double wall_s);

}  // namespace vela::perf

#pragma once
// ServeMetrics: what `vela serve` counts while it serves, for GET /metrics (Prometheus
// text exposition, names under `vela:` in the spirit of vLLM's). The FrontendActor
// reports requests (admitted, first token, finished), each EngineCoreActor its
// replica's scheduler gauges and step intervals, the HTTP server its responses. One
// mutex: updates are a few per request or step, reads one per scrape.
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine_core/scheduler_stats.h"
#include "metrics/histogram.h"

namespace vela::metrics {

class ServeMetrics {
 public:
  ServeMetrics(size_t num_replicas, std::string model_name);

  // FrontendActor.
  void request_admitted(int64_t num_prompt_tokens);
  void first_token(double ttft_s);
  // reason: stop | length | abort | error | shutdown. tpot_s < 0: fewer than 2 tokens.
  void request_finished(const std::string& reason, int64_t num_output_tokens, double e2e_s, double tpot_s);
  void request_refused(const std::string& code);  // busy, invalid_value, ... (never admitted)
  void set_replica_healthy(size_t replica, bool healthy);
  void set_draining();

  // EngineCoreActor (after each pump).
  void scheduler_stats(size_t replica, const SchedulerStats& stats);
  void step_interval(double seconds);
  void queue_time(double seconds);  // frontend arrival -> first scheduled in a step

  // HTTP server: one per response, by route and status.
  void http_response(const std::string& route, int status);

  // The replica's scheduler gauges as last reported (for the pong's KV figures).
  SchedulerStats replica_stats(size_t replica) const;

  // 200-worthy: every replica healthy and not draining.
  bool healthy() const;
  bool draining() const;
  std::string render_prometheus() const;

 private:
  struct Replica {
    bool healthy = false;
    SchedulerStats stats;
  };
  mutable std::mutex mu_;
  std::string model_name_;
  std::vector<Replica> replicas_;
  bool draining_ = false;
  int64_t prompt_tokens_ = 0;
  int64_t generation_tokens_ = 0;
  int64_t requests_admitted_ = 0;
  std::map<std::string, int64_t> finished_by_reason_;
  std::map<std::string, int64_t> refused_by_code_;
  std::map<std::pair<std::string, int>, int64_t> http_responses_;
  Histogram ttft_s_;
  Histogram tpot_s_;
  Histogram e2e_s_;
  Histogram step_s_;
  Histogram queue_s_;
  Histogram prompt_len_;
  Histogram output_len_;
};

}  // namespace vela::metrics

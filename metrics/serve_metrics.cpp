#include "metrics/serve_metrics.h"

#include <charconv>
#include <cmath>

namespace vela::metrics {
namespace {

// Shortest text that reads back to v; Prometheus spells infinities +Inf / -Inf.
std::string num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : "0";
}

// Label values escape backslash, quote and newline (the exposition format's rule).
std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::string& out, const std::string& name, const char* type, const char* help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void sample(std::string& out, const std::string& name, const std::string& labels, double v) {
  out += name;
  if (!labels.empty()) out += "{" + labels + "}";
  out += " " + num(v) + "\n";
}

const std::vector<double> kLatencyBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
                                             0.75,  1.0,   2.5,  5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0};
const std::vector<double> kTokenLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03,
                                                  0.04,   0.05,  0.075,  0.1,   0.15, 0.2,   0.3,  0.4,   0.5,
                                                  0.75,   1.0,   2.5};
const std::vector<double> kLengthBuckets = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000};

}  // namespace

void Histogram::render(const std::string& name, const std::string& labels, std::string& out) const {
  const std::string sep = labels.empty() ? "" : labels + ",";
  for (size_t i = 0; i < bounds_.size(); ++i)
    out += name + "_bucket{" + sep + "le=\"" + num(bounds_[i]) + "\"} " + std::to_string(counts_[i]) + "\n";
  out += name + "_bucket{" + sep + "le=\"+Inf\"} " + std::to_string(count_) + "\n";
  sample(out, name + "_sum", labels, sum_);
  sample(out, name + "_count", labels, static_cast<double>(count_));
}

ServeMetrics::ServeMetrics(size_t num_replicas, std::string model_name)
    : model_name_(std::move(model_name)),
      replicas_(num_replicas),
      ttft_s_(kLatencyBuckets),
      tpot_s_(kTokenLatencyBuckets),
      e2e_s_(kLatencyBuckets),
      step_s_(kTokenLatencyBuckets),
      queue_s_(kLatencyBuckets),
      prompt_len_(kLengthBuckets),
      output_len_(kLengthBuckets) {}

void ServeMetrics::request_admitted(int64_t num_prompt_tokens) {
  std::lock_guard lock(mu_);
  ++requests_admitted_;
  prompt_tokens_ += num_prompt_tokens;
  prompt_len_.observe(static_cast<double>(num_prompt_tokens));
}

void ServeMetrics::first_token(double ttft_s) {
  std::lock_guard lock(mu_);
  ttft_s_.observe(ttft_s);
}

void ServeMetrics::request_finished(const std::string& reason, int64_t num_output_tokens, double e2e_s, double tpot_s) {
  std::lock_guard lock(mu_);
  finished_by_reason_[reason]++;
  generation_tokens_ += num_output_tokens;
  output_len_.observe(static_cast<double>(num_output_tokens));
  e2e_s_.observe(e2e_s);
  if (tpot_s >= 0) tpot_s_.observe(tpot_s);
}

void ServeMetrics::request_refused(const std::string& code) {
  std::lock_guard lock(mu_);
  refused_by_code_[code]++;
}

void ServeMetrics::set_replica_healthy(size_t replica, bool healthy) {
  std::lock_guard lock(mu_);
  if (replica < replicas_.size()) replicas_[replica].healthy = healthy;
}

void ServeMetrics::set_draining() {
  std::lock_guard lock(mu_);
  draining_ = true;
}

void ServeMetrics::scheduler_stats(size_t replica, const SchedulerStats& stats) {
  std::lock_guard lock(mu_);
  if (replica < replicas_.size()) replicas_[replica].stats = stats;
}

void ServeMetrics::step_interval(double seconds) {
  std::lock_guard lock(mu_);
  step_s_.observe(seconds);
}

void ServeMetrics::queue_time(double seconds) {
  std::lock_guard lock(mu_);
  queue_s_.observe(seconds);
}

void ServeMetrics::http_response(const std::string& route, int status) {
  std::lock_guard lock(mu_);
  http_responses_[{route, status}]++;
}

SchedulerStats ServeMetrics::replica_stats(size_t replica) const {
  std::lock_guard lock(mu_);
  return replica < replicas_.size() ? replicas_[replica].stats : SchedulerStats{};
}

bool ServeMetrics::healthy() const {
  std::lock_guard lock(mu_);
  if (draining_) return false;
  for (const auto& r : replicas_)
    if (!r.healthy) return false;
  return !replicas_.empty();
}

bool ServeMetrics::draining() const {
  std::lock_guard lock(mu_);
  return draining_;
}

std::string ServeMetrics::render_prometheus() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(16 << 10);
  const std::string model = "model_name=\"" + escape(model_name_) + "\"";
  auto replica_label = [&](size_t i) { return model + ",replica=\"" + std::to_string(i) + "\""; };
  auto per_replica = [&](const std::string& name, const char* type, const char* help, auto value) {
    header(out, name, type, help);
    for (size_t i = 0; i < replicas_.size(); ++i) sample(out, name, replica_label(i), value(replicas_[i]));
  };
  per_replica("vela:replica_healthy", "gauge", "1 while the replica's workers are alive and its engine core runs.",
              [](const Replica& r) { return r.healthy ? 1.0 : 0.0; });
  per_replica("vela:num_requests_running", "gauge", "Requests in the replica's running batch.",
              [](const Replica& r) { return double(r.stats.num_running); });
  per_replica("vela:num_requests_waiting", "gauge", "Requests waiting to be scheduled (preempted ones included).",
              [](const Replica& r) { return double(r.stats.num_waiting); });
  per_replica("vela:kv_cache_usage_perc", "gauge", "Fraction of usable KV blocks held by requests (0 to 1).",
              [](const Replica& r) { return r.stats.kv_cache_usage; });
  per_replica("vela:prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.",
              [](const Replica& r) { return double(r.stats.prefix_cache_query_tokens); });
  per_replica("vela:prefix_cache_hits_total", "counter", "Prompt tokens served from the prefix cache.",
              [](const Replica& r) { return double(r.stats.prefix_cache_hit_tokens); });
  per_replica("vela:prefix_cache_hit_rate", "gauge", "Prefix-cache hit tokens / queried tokens since start.",
              [](const Replica& r) { return r.stats.prefix_cache_hit_rate; });
  per_replica("vela:num_preemptions_total", "counter", "Requests preempted (recomputed later) for KV space.",
              [](const Replica& r) { return double(r.stats.num_preemptions); });
  per_replica("vela:engine_steps_total", "counter", "Steps the replica's scheduler planned.",
              [](const Replica& r) { return double(r.stats.num_steps); });

  header(out, "vela:requests_admitted_total", "counter", "Requests accepted and handed to an engine replica.");
  sample(out, "vela:requests_admitted_total", model, double(requests_admitted_));
  header(out, "vela:request_success_total", "counter", "Finished requests by finish reason.");
  for (const char* reason : {"stop", "length", "abort", "error", "shutdown"}) {
    auto it = finished_by_reason_.find(reason);
    sample(out, "vela:request_success_total", model + ",finished_reason=\"" + reason + "\"",
           it == finished_by_reason_.end() ? 0.0 : double(it->second));
  }
  header(out, "vela:request_refused_total", "counter", "Requests refused before admission, by error code.");
  for (const auto& [code, n] : refused_by_code_)
    sample(out, "vela:request_refused_total", model + ",code=\"" + escape(code) + "\"", double(n));
  header(out, "vela:prompt_tokens_total", "counter", "Prompt tokens of admitted requests.");
  sample(out, "vela:prompt_tokens_total", model, double(prompt_tokens_));
  header(out, "vela:generation_tokens_total", "counter", "Output tokens of finished requests.");
  sample(out, "vela:generation_tokens_total", model, double(generation_tokens_));

  header(out, "vela:time_to_first_token_seconds", "histogram", "Arrival at the frontend to the first output token.");
  ttft_s_.render("vela:time_to_first_token_seconds", model, out);
  header(out, "vela:time_per_output_token_seconds", "histogram", "Per request: (end - first token) / (tokens - 1).");
  tpot_s_.render("vela:time_per_output_token_seconds", model, out);
  header(out, "vela:e2e_request_latency_seconds", "histogram", "Arrival at the frontend to the final output.");
  e2e_s_.render("vela:e2e_request_latency_seconds", model, out);
  header(out, "vela:request_queue_time_seconds", "histogram", "Arrival at the frontend to first scheduled in a step.");
  queue_s_.render("vela:request_queue_time_seconds", model, out);
  header(out, "vela:engine_step_interval_seconds", "histogram",
         "Time between consecutive step outputs of a busy replica (the step time as the engine sees it).");
  step_s_.render("vela:engine_step_interval_seconds", model, out);
  header(out, "vela:request_prompt_tokens", "histogram", "Prompt length of admitted requests.");
  prompt_len_.render("vela:request_prompt_tokens", model, out);
  header(out, "vela:request_generation_tokens", "histogram", "Output length of finished requests.");
  output_len_.render("vela:request_generation_tokens", model, out);

  header(out, "vela:http_responses_total", "counter", "HTTP responses by route and status code.");
  for (const auto& [key, n] : http_responses_)
    sample(out, "vela:http_responses_total", "route=\"" + escape(key.first) + "\",code=\"" + std::to_string(key.second) + "\"",
           double(n));
  return out;
}

}  // namespace vela::metrics

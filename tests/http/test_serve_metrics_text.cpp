// ServeMetrics renders valid Prometheus text whose counters add up.
#include <catch2/catch.hpp>

#include <regex>
#include <sstream>

#include "metrics/serve_metrics.h"

using namespace vela;

TEST_CASE("ServeMetrics: every sample line is well-formed; histograms are cumulative") {
  metrics::ServeMetrics m(2, "demo");
  m.set_replica_healthy(0, true);
  CHECK_FALSE(m.healthy());  // replica 1 not up yet
  m.set_replica_healthy(1, true);
  CHECK(m.healthy());
  m.request_admitted(10);
  m.request_admitted(5);
  m.first_token(0.003);
  m.first_token(0.3);
  m.request_finished("stop", 4, 0.5, 0.01);
  m.request_finished("length", 2, 1.5, -1);
  m.http_response("/v1/completions", 200);
  m.queue_time(0.002);
  SchedulerStats s;
  s.num_running = 3;
  s.kv_cache_usage = 0.25;
  m.scheduler_stats(1, s);
  const std::string text = m.render_prometheus();
  const std::regex sample_line(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? [-+0-9.eEInfa]+$)");
  std::istringstream in(text);
  std::string line;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) continue;
    INFO(line);
    CHECK(std::regex_match(line, sample_line));
    ++samples;
  }
  CHECK(samples > 50);
  CHECK(text.find("vela:prompt_tokens_total{model_name=\"demo\"} 15\n") != std::string::npos);
  CHECK(text.find("vela:generation_tokens_total{model_name=\"demo\"} 6\n") != std::string::npos);
  CHECK(text.find("vela:request_success_total{model_name=\"demo\",finished_reason=\"stop\"} 1\n") != std::string::npos);
  CHECK(text.find("vela:num_requests_running{model_name=\"demo\",replica=\"1\"} 3\n") != std::string::npos);
  CHECK(text.find("vela:kv_cache_usage_perc{model_name=\"demo\",replica=\"1\"} 0.25\n") != std::string::npos);
  CHECK(text.find("vela:time_to_first_token_seconds_bucket{model_name=\"demo\",le=\"0.005\"} 1\n") != std::string::npos);
  CHECK(text.find("vela:time_to_first_token_seconds_bucket{model_name=\"demo\",le=\"0.5\"} 2\n") != std::string::npos);
  CHECK(text.find("vela:time_to_first_token_seconds_count{model_name=\"demo\"} 2\n") != std::string::npos);
  CHECK(text.find("vela:time_per_output_token_seconds_count{model_name=\"demo\"} 1\n") != std::string::npos);
  CHECK(text.find("vela:request_queue_time_seconds_bucket{model_name=\"demo\",le=\"0.005\"} 1\n") != std::string::npos);
  CHECK(text.find("vela:http_responses_total{route=\"/v1/completions\",code=\"200\"} 1\n") != std::string::npos);
  m.set_draining();
  CHECK_FALSE(m.healthy());
}

// The latency arithmetic of `vela bench serve` (perf/serve_metrics.h) on hand-made
// timelines whose answers are known.
#include <catch2/catch.hpp>

#include <cmath>

#include "perf/serve_metrics.h"

using namespace vela::perf;
using Catch::Detail::Approx;

namespace {
RequestRecord record(double send, std::vector<TokenArrival> arrivals, double end, int32_t expected) {
  RequestRecord r;
  r.send_s = send;
  r.arrivals = std::move(arrivals);
  r.end_s = end;
  r.expected_tokens = expected;
  r.finished = true;
  return r;
}
}  // namespace

TEST_CASE("TTFT, ITL, TPOT and E2E of one streamed request") {
  // Sent at 1.0; tokens: 1 at 1.5, 2 at 1.7 (one delta), 1 at 2.0; final (no tokens) at 2.1.
  auto r = record(1.0, {{1.5, 1}, {1.7, 2}, {2.0, 1}}, 2.1, 4);
  auto l = request_latency(r);
  CHECK(r.output_tokens() == 4);
  CHECK(l.ttft_s == Approx(0.5));
  CHECK(l.e2e_s == Approx(1.1));
  // 4 tokens -> 3 gaps: 0.2, then 0 for the second token of the 2-token delta, then 0.3.
  REQUIRE(l.itl_s.size() == 3);
  CHECK(l.itl_s[0] == Approx(0.2));
  CHECK(l.itl_s[1] == 0.0);
  CHECK(l.itl_s[2] == Approx(0.3));
  CHECK(l.tpot_s == Approx((1.1 - 0.5) / 3));
}

TEST_CASE("a first delta carrying several tokens gives zero gaps; one token has no TPOT") {
  auto l = request_latency(record(0.0, {{0.25, 3}}, 0.25, 3));
  CHECK(l.ttft_s == Approx(0.25));
  CHECK(l.itl_s == std::vector<double>{0.0, 0.0});
  CHECK(l.tpot_s == Approx(0.0));
  auto single = request_latency(record(0.0, {{0.1, 1}}, 0.1, 1));
  CHECK(single.itl_s.empty());
  CHECK(std::isnan(single.tpot_s));
}

TEST_CASE("percentiles interpolate between closest ranks") {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);  // unsorted on purpose
  auto p = percentiles(v);
  CHECK(p.count == 100);
  CHECK(p.mean == Approx(50.5));
  CHECK(p.p50 == Approx(50.5));
  CHECK(p.p90 == Approx(90.1));
  CHECK(p.p99 == Approx(99.01));
  auto one = percentiles({7.0});
  CHECK((one.p50 == 7.0 && one.p99 == 7.0));
  CHECK(std::isnan(percentiles({}).p50));
}

TEST_CASE("failed requests are counted, named, and kept out of the latencies") {
  std::vector<RequestRecord> rs;
  rs.push_back(record(0.0, {{0.1, 1}, {0.2, 1}}, 0.2, 2));   // fine: TTFT 0.1
  rs.push_back(record(0.0, {{0.4, 1}, {0.6, 1}}, 0.6, 2));   // fine: TTFT 0.4
  rs.push_back(record(0.0, {{0.05, 1}}, 0.3, 2));            // one token short
  auto err = record(0.0, {}, 0.01, 2);
  err.failure = "error [invalid_value] prompt_token_ids[0]: out of range";
  rs.push_back(err);
  RequestRecord lost;  // never finished: the run ended without its final
  lost.expected_tokens = 2;
  rs.push_back(lost);
  auto s = summarize(rs, 2.0);
  CHECK(s.requests == 5);
  CHECK(s.completed == 2);
  CHECK(s.failed == 3);
  REQUIRE(s.failures.size() == 3);
  CHECK(s.failures[0] == "2: produced 1 tokens, expected 2");
  CHECK(s.failures[1].find("invalid_value") != std::string::npos);
  CHECK(s.failures[2] == "4: never finished");
  CHECK(s.output_tokens == 4);
  CHECK(s.request_throughput == Approx(1.0));
  CHECK(s.output_throughput == Approx(2.0));
  CHECK(s.ttft_s.count == 2);
  CHECK(s.ttft_s.p50 == Approx(0.25));
  CHECK(s.itl_s.count == 2);
  CHECK(s.e2e_s.p99 == Approx(0.2 + 0.99 * 0.4));
}

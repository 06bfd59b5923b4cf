// `vela bench serve` against a real `vela serve` of the reference qwen3-tiny model
// (model runner, one worker process): L1 scaled down must finish with no failures
// and ordered percentiles; refused requests must show up as failures, not vanish.
#include <catch2/catch.hpp>

#include <cmath>

#include "perf/workloads.h"
#include "tests/bench/report_json.h"
#include "tests/bench/run_vela.h"
#include "tests/http/http_client.h"
#include "tests/runtime/serve_fixture.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;

namespace {

const std::string kModel = std::string(VELA_REFERENCE_DIR) + "/models/qwen3-tiny";

std::string served_model_yaml() {
  return "model:\n  path: " + kModel + "\ncache:\n  cpu_kv_cache_gib: 0.05\n";
}

void check_ordered(const nlohmann::json& report, const std::string& name) {
  const double p50 = value_of(report, name + " p50"), p90 = value_of(report, name + " p90"),
               p99 = value_of(report, name + " p99");
  INFO(name << " p50 " << p50 << " p90 " << p90 << " p99 " << p99);
  CHECK(p50 >= 0);
  CHECK(p50 <= p90);
  CHECK(p90 <= p99);
}

}  // namespace

TEST_CASE("vela bench serve drives L1 against vela serve with no failures") {
  ServeProcess server(served_model_yaml(), "-bench", "model");
  REQUIRE(server.connect());  // up and answering before the clock starts
  TempDir dir;
  auto run = run_vela({"bench", "serve", "--server", server.endpoint(), "--workload", "L1", "--num-requests", "12",
                       "--rate", "20", "--length-factor", "0.05", "--max-token-id", "1000", "--model", kModel,
                       "--hbm-tbps", "4", "--gemm-tflops", "800", "--device", "cpu (test)", "--no-progress", "--save", "--results-dir",
                       dir.path(), "--request-timeout", "30"},
                      60s);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  const auto report = read_json(dir.only_json());
  REQUIRE(report.is_object());
  CHECK(report["kind"] == "serve");
  CHECK(report["workload"] == "L1");
  CHECK(report["device"].get<std::string>().rfind("cpu (test)", 0) == 0);
  CHECK(report["config"].get<std::string>().find("qwen3-tiny") != std::string::npos);
  CHECK(value_of(report, "requests") == 12);
  CHECK(value_of(report, "completed") == 12);
  CHECK(value_of(report, "failed") == 0);
  CHECK(value_of(report, "offered rate") == 20);
  const auto l1 = perf::digest(*perf::make_workload("L1", perf::WorkloadScale{12, 0.05, 1000}));
  CHECK(value_of(report, "output tokens") == l1.output_tokens);
  CHECK(value_of(report, "requests/s") > 0);
  CHECK(value_of(report, "output tokens/s") > 0);
  // 12 arrivals at 20 req/s take about 0.6 s; the run cannot end before the last send.
  const auto schedule = perf::make_workload("L1", perf::WorkloadScale{12, 0.05, 1000});
  const double last_arrival = schedule->requests.back().arrival_offset_s * 4.0 / 20.0;
  CHECK(value_of(report, "wall time") >= last_arrival);
  for (const char* name : {"TTFT", "TPOT", "ITL", "E2E"}) check_ordered(report, name);
  CHECK(value_of(report, "TTFT p50") > 0);
  CHECK(value_of(report, "TPOT p50") > 0);
  CHECK(value_of(report, "E2E p50") >= value_of(report, "TTFT p50"));
  // TTFT and TPOT carry their floors from the given ceilings; a CPU is far above them.
  for (const char* name : {"TTFT p50", "TPOT p50"}) {
    auto f = figure(report, name);
    REQUIRE(f);
    REQUIRE(f->contains("limit"));
    CHECK((*f)["limit"].get<double>() > 0);
    CHECK((*f)["ratio"].get<double>() < 1.0);
  }
}

TEST_CASE("vela bench serve runs the same workload through the ZeroMQ and the HTTP front") {
  const int port = free_port();
  ServeProcess server(served_model_yaml() + "http:\n  port: " + std::to_string(port) + "\n  api_key: k\n", "-bench-http",
                      "model");
  REQUIRE(server.connect());
  TempDir dir;
  auto run = run_vela({"bench", "serve", "--server", server.endpoint(), "--http", "http://127.0.0.1:" + std::to_string(port),
                       "--api-key", "k", "--workload", "L1", "--num-requests", "8", "--rate", "20", "--length-factor",
                       "0.05", "--max-token-id", "1000", "--model", kModel, "--hbm-tbps", "4", "--gemm-tflops", "800",
                       "--device", "cpu (test)", "--no-progress", "--save", "--results-dir", dir.path(),
                       "--request-timeout", "30"},
                      90s);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  CHECK(run.output.find("== ZeroMQ") != std::string::npos);
  CHECK(run.output.find("== HTTP (OpenAI API)") != std::string::npos);
  int reports = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    const auto report = read_json(entry.path().string());
    INFO(entry.path());
    CHECK(value_of(report, "completed") == 8);
    CHECK(value_of(report, "failed") == 0);
    CHECK(value_of(report, "TTFT p50") > 0);
    const auto l1 = perf::digest(*perf::make_workload("L1", perf::WorkloadScale{8, 0.05, 1000}));
    CHECK(value_of(report, "output tokens") == l1.output_tokens);  // token counts line up over HTTP too
    ++reports;
  }
  CHECK(reports == 2);
}

TEST_CASE("vela bench serve counts refused requests as failures and exits non-zero") {
  ServeProcess server(served_model_yaml(), "-bench-fail", "model");
  REQUIRE(server.connect());
  // Ids up to 200000 are outside qwen3's 151936-token vocabulary: the server refuses each.
  auto run = run_vela({"bench", "serve", "--server", server.endpoint(), "--workload", "L1", "--num-requests", "4",
                       "--rate", "50", "--length-factor", "0.05", "--max-token-id", "200000", "--no-progress"},
                      30s);
  INFO(run.output);
  CHECK(run.exit_code == 2);
  CHECK(run.output.find("4 of 4 requests failed") != std::string::npos);
  CHECK(run.output.find("invalid_value") != std::string::npos);
}

TEST_CASE("vela bench serve refuses --rate for a workload without arrivals and a server that is not there") {
  auto rate = run_vela({"bench", "serve", "--server", "ipc:///tmp/vela-nobody.sock", "--workload", "W1", "--rate", "5"}, 20s);
  CHECK(rate.exit_code == 2);
  CHECK(rate.output.find("--rate") != std::string::npos);
  auto nobody = run_vela({"bench", "serve", "--server", "ipc:///tmp/vela-nobody.sock", "--connect-timeout", "1"}, 20s);
  CHECK(nobody.exit_code == 2);
  CHECK(nobody.output.find("no answer") != std::string::npos);
}

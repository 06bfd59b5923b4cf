// `vela bench throughput` and `vela bench roofline` as a user runs them: the real
// executable on the reference qwen3-tiny model, scaled-down workloads, and the
// saved JSON report checked against the workload the test generates itself.
#include <catch2/catch.hpp>

#include <cmath>
#include <regex>

#include "perf/workloads.h"
#include "tests/bench/report_json.h"
#include "tests/bench/run_vela.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;

namespace {

const std::string kModel = std::string(VELA_REFERENCE_DIR) + "/models/qwen3-tiny";
const perf::WorkloadScale kScale{8, 0.02, 1000};

std::vector<std::string> throughput_args(const std::string& workload, const std::string& results_dir) {
  return {"bench", "throughput", "--workload", workload, "--model", kModel, "--num-requests", "8",
          "--length-factor", "0.02", "--max-token-id", "1000", "--set", "cache.cpu_kv_cache_gib=0.05",
          "--set", "logging.level=warn", "--no-progress", "--save", "--results-dir", results_dir};
}

}  // namespace

TEST_CASE("vela bench throughput runs every all-at-once workload and saves its figures") {
  for (const std::string w : {"W1", "W2", "S1", "P1"}) {
    DYNAMIC_SECTION("workload " << w) {
      TempDir dir;
      auto args = throughput_args(w, dir.path());
      const bool with_ceilings = w != "W1";  // W1 runs without, to see figures without limits
      if (with_ceilings) args.insert(args.end(), {"--hbm-tbps", "4", "--gemm-tflops", "800"});
      auto run = run_vela(args, 60s);
      INFO(run.output);
      REQUIRE(run.exit_code == 0);
      const auto path = dir.only_json();
      REQUIRE_FALSE(path.empty());
      const auto report = read_json(path);
      REQUIRE(report.is_object());
      CHECK(report["kind"] == "throughput");
      CHECK(report["workload"] == w);
      CHECK_FALSE(report["commit"].get<std::string>().empty());
      CHECK(report["config"].get<std::string>().find("qwen3-tiny") != std::string::npos);

      auto expected = perf::digest(*perf::make_workload(w, kScale));
      CHECK(value_of(report, "requests") == 8);
      CHECK(value_of(report, "output tokens") == expected.output_tokens);
      CHECK(value_of(report, "prompt tokens") == expected.prompt_tokens);
      CHECK(value_of(report, "output tokens/s") > 0);
      CHECK(value_of(report, "wall time") > 0);
      CHECK(value_of(report, "peak host memory") > 0);
      if (w == "P1") CHECK(value_of(report, "prefix-cache hit rate") > 0);

      auto tput = figure(report, "output tokens/s");
      REQUIRE(tput);
      if (with_ceilings) {
        REQUIRE(tput->contains("limit"));
        REQUIRE(tput->contains("ratio"));
        const double limit = (*tput)["limit"], ratio = (*tput)["ratio"];
        CHECK(limit > 0);
        CHECK(ratio == Approx(value_of(report, "output tokens/s") / limit));
        CHECK(ratio < 1.0);  // a CPU is far below an H200-class roofline
        CHECK((*tput)["limit_name"].get<std::string>().find("roofline") != std::string::npos);
        auto wall = figure(report, "wall time");
        REQUIRE(wall);
        CHECK(wall->contains("limit"));
      } else {
        // The CPU build measures the CPU's own ceilings in the same run.
        REQUIRE(tput->contains("limit"));
        CHECK((*tput)["limit_name"].get<std::string>().find("roofline (cpu") != std::string::npos);
      }
    }
  }
}

TEST_CASE("vela bench throughput refuses L1 and names the command to use") {
  auto run = run_vela({"bench", "throughput", "--workload", "L1"}, 20s);
  CHECK(run.exit_code != 0);
  CHECK(run.output.find("L1") != std::string::npos);
}

TEST_CASE("vela bench roofline prints every workload's bound from given ceilings") {
  auto run = run_vela({"bench", "roofline", "--hbm-tbps", "4.15", "--gemm-tflops", "760"}, 20s);
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  for (const char* line : {"HBM copy bandwidth", "bf16 GEMM rate", "W1 lower bound", "W2 lower bound", "S1 lower bound",
                           "L1 TTFT floor", "L1 TPOT floor", "P1 lower bound"})
    CHECK(run.output.find(line) != std::string::npos);
  // BENCHMARKS.md: at 4.15 TB/s, S1 (16 GB of weights) is about 3.9 ms/token.
  std::smatch m;
  REQUIRE(std::regex_search(run.output, m, std::regex(R"(S1 ms/token at the bound\s+([0-9.]+) ms)")));
  const double ms = std::stod(m[1]);
  CHECK(ms > 3.5);
  CHECK(ms < 4.3);
  REQUIRE(std::regex_search(run.output, m, std::regex(R"(HBM copy bandwidth\s+([0-9.]+) TB/s)")));
  CHECK(std::stod(m[1]) == Approx(4.15));
}

#include <catch2/catch.hpp>

#include <cstdio>
#include <set>
#include <string>

#include "perf/report.h"
#include "perf/roofline.h"
#include "perf/workloads.h"

using namespace vela::perf;

TEST_CASE("workloads follow BENCHMARKS.md and are deterministic") {
  auto w1 = make_workload("W1");
  REQUIRE(w1.ok());
  REQUIRE(w1->requests.size() == 256);
  std::set<size_t> lengths;
  for (const auto& r : w1->requests) {
    CHECK(r.prompt_token_ids.size() >= 100);
    CHECK(r.prompt_token_ids.size() <= 1024);
    CHECK(r.max_tokens >= 100);
    CHECK(r.max_tokens <= 1024);
    for (int32_t id : r.prompt_token_ids) CHECK((id >= 0 && id < 10000));
    lengths.insert(r.prompt_token_ids.size());
  }
  CHECK(lengths.size() > 100);  // really uniform, not constant
  auto again = make_workload("W1");
  CHECK(again->requests[17].prompt_token_ids == w1->requests[17].prompt_token_ids);

  auto w2 = make_workload("W2");
  CHECK(w2->requests.size() == 256);
  CHECK(w2->requests[0].prompt_token_ids.size() == 1024);
  CHECK(w2->requests[0].max_tokens == 128);
  auto s1 = make_workload("S1");
  CHECK(s1->requests.size() == 1);
  CHECK(s1->requests[0].max_tokens == 256);
  auto l1 = make_workload("L1");
  CHECK(l1->requests.size() == 200);
  // Poisson at 4 req/s: 200 arrivals take about 50 s.
  CHECK(l1->requests.back().arrival_offset_s > 35);
  CHECK(l1->requests.back().arrival_offset_s < 65);
  auto p1 = make_workload("P1");
  REQUIRE(p1->requests.size() == 256);
  for (size_t i = 0; i < 2048; i += 97) CHECK(p1->requests[0].prompt_token_ids[i] == p1->requests[255].prompt_token_ids[i]);
  CHECK_FALSE(make_workload("W9").ok());
}

TEST_CASE("scaled workloads for CPU runs") {
  auto w = make_workload("W1", WorkloadScale{8, 0.05, 500});
  REQUIRE(w->requests.size() == 8);
  for (const auto& r : w->requests) {
    CHECK(r.prompt_token_ids.size() <= 52);
    for (int32_t id : r.prompt_token_ids) CHECK(id < 500);
  }
}

TEST_CASE("the bounds reproduce BENCHMARKS.md's figures from its ceilings") {
  const Ceilings h200{4.15e12, 760e12};
  auto qwen = read_model_shape(std::string(VELA_SOURCE_DIR) + "/perf/models/qwen3-0.6b/config.json");
  auto llama = read_model_shape(std::string(VELA_SOURCE_DIR) + "/perf/models/llama-3.1-8b/config.json");
  REQUIRE(qwen.ok());
  REQUIRE(llama.ok());
  CHECK(qwen->num_params == 596049920);
  CHECK(llama->num_params == 8030261248);
  // BENCHMARKS.md: W1 ~3.9 s, W2 ~7 s, S1 ~3.9 ms/token.
  auto w1 = workload_bound(*make_workload("W1"), *qwen, h200);
  CHECK(w1.total_s() == Approx(3.9).epsilon(0.15));
  auto w2 = workload_bound(*make_workload("W2"), *llama, h200);
  CHECK(w2.total_s() == Approx(7.0).epsilon(0.15));
  auto s1 = workload_bound(*make_workload("S1"), *llama, h200);
  CHECK(s1.total_s() / 256 * 1e3 == Approx(3.9).epsilon(0.1));
}

TEST_CASE("a shared prefix's KV counts once per decode step, not once per sequence") {
  const Ceilings h200{4.15e12, 760e12};
  auto qwen = read_model_shape(std::string(VELA_SOURCE_DIR) + "/perf/models/qwen3-0.6b/config.json");
  REQUIRE(qwen.ok());
  auto p1 = make_workload("P1");
  REQUIRE(p1.ok());
  REQUIRE(p1->shared_prefix_tokens > 0);
  const auto shared = workload_bound(*p1, *qwen, h200, 256);
  Workload unshared = *p1;
  unshared.shared_prefix_tokens = 0;  // the same prompts, as if nothing were shared
  const auto full = workload_bound(unshared, *qwen, h200, 256);
  // Fewer bytes to read: the decode KV term shrinks by about the prefix's share of
  // the context times the sequences per step; prefill shrinks too (computed once).
  CHECK(shared.decode_kv_s < full.decode_kv_s / 4);
  CHECK(shared.prefill_s < full.prefill_s);
  CHECK(shared.decode_weights_s == Approx(full.decode_weights_s));
  CHECK(shared.decode_kv_s > 0);
}

TEST_CASE("prefill counts attention: a prompt token attends to every key before it") {
  const Ceilings h200{4.15e12, 760e12};
  auto qwen = read_model_shape(std::string(VELA_SOURCE_DIR) + "/perf/models/qwen3-0.6b/config.json");
  REQUIRE(qwen.ok());
  CHECK(qwen->attn_flops_per_token_key == 4 * 28 * 16 * 128);
  Workload one;
  one.requests.resize(1);
  one.requests[0].prompt_token_ids.assign(1000, 1);
  one.requests[0].max_tokens = 1;
  const double body = 2.0 * double(qwen->body_params()) * 1000;
  const double attn = double(qwen->attn_flops_per_token_key) * 1000 * 1001 / 2;
  CHECK(workload_bound(one, *qwen, h200).prefill_s == Approx((body + attn) / 760e12));
  // P1: the 255 requests after the first attend to the 2k prefix they hit, so
  // attention is a large part of what their short suffixes cost.
  auto p1 = make_workload("P1");
  REQUIRE(p1.ok());
  const auto b = workload_bound(*p1, *qwen, h200, 256);
  CHECK(b.prefill_s * 760e12 > 1.4 * 2.0 * double(qwen->body_params()) * double(b.prompt_tokens));
}

TEST_CASE("reports show measured / limit") {
  Report r{"throughput", "W1", "cpu", utc_now_iso8601(), build_commit(), "", {}};
  r.figures.push_back({"output tokens/s", 1000, "tok/s", 4000, "roofline", true});
  r.figures.push_back({"wall time", 8, "s", 4, "roofline", false});
  CHECK(r.figures[0].ratio() == Approx(0.25));
  CHECK(r.figures[1].ratio() == Approx(0.5));
  auto table = format_table(r);
  CHECK(table.find("25.0%") != std::string::npos);
  auto json = to_json(r);
  CHECK(json.find("\"ratio\": 0.25") != std::string::npos);
}

TEST_CASE("hf_baseline.py generates the very same workloads") {
  for (const char* name : {"W1", "W2", "S1", "L1", "P1"}) {
    std::string cmd = "python3 " + std::string(VELA_SOURCE_DIR) + "/scripts/gpu/hf_baseline.py --dump " + name;
    FILE* pipe = popen(cmd.c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buf[512] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, pipe);
    REQUIRE(pclose(pipe) == 0);
    std::string line(buf, n);
    auto d = digest(*make_workload(name));
    INFO(name << ": " << line);
    CHECK(line.find("\"requests\": " + std::to_string(d.requests) + ",") != std::string::npos);
    CHECK(line.find("\"prompt_tokens\": " + std::to_string(d.prompt_tokens) + ",") != std::string::npos);
    CHECK(line.find("\"output_tokens\": " + std::to_string(d.output_tokens) + ",") != std::string::npos);
    CHECK(line.find("\"checksum\": " + std::to_string(d.checksum) + "}") != std::string::npos);
  }
}

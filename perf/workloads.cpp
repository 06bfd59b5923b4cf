#include "perf/workloads.h"

#include <algorithm>
#include <cmath>

namespace vela::perf {
namespace {

int32_t scaled(int64_t n, double f) { return std::max<int32_t>(1, static_cast<int32_t>(std::lround(n * f))); }

std::vector<int32_t> random_prompt(SplitMix64& rng, int32_t n, int32_t max_id) {
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = static_cast<int32_t>(rng.uniform(0, max_id - 1));
  return ids;
}

}  // namespace

Result<Workload> make_workload(const std::string& name, const WorkloadScale& scale) {
  Workload w;
  w.name = name;
  auto count = [&](int32_t def) { return scale.num_requests > 0 ? scale.num_requests : def; };
  const double f = scale.length_factor;
  const int32_t max_id = scale.max_token_id;
  if (name == "W1") {
    // 256 requests at t=0, input and output uniform in 100..1024 (seed 0).
    w.model_shape = "qwen3-0.6b";
    SplitMix64 rng(0);
    for (int32_t i = 0; i < count(256); ++i) {
      int32_t in = scaled(rng.uniform(100, 1024), f);
      int32_t out = scaled(rng.uniform(100, 1024), f);
      w.requests.push_back({random_prompt(rng, in, max_id), out, 0.0});
    }
  } else if (name == "W2" || name == "S1" || name == "L1") {
    // W2: 256 x (1024 in, 128 out) at t=0. S1: 1 x (128 in, 256 out).
    // L1: 200 x (1024 in, 128 out), Poisson arrivals at 4 req/s.
    w.model_shape = "llama-3.1-8b";
    const bool s1 = name == "S1", l1 = name == "L1";
    const int32_t n = count(s1 ? 1 : l1 ? 200 : 256);
    const int32_t in = scaled(s1 ? 128 : 1024, f), out = scaled(s1 ? 256 : 128, f);
    SplitMix64 rng(s1 ? 2 : l1 ? 3 : 1);
    w.request_rate = l1 ? 4.0 : 0.0;
    double t = 0.0;
    for (int32_t i = 0; i < n; ++i) {
      if (l1) t += -std::log(1.0 - rng.unit()) / w.request_rate;
      w.requests.push_back({random_prompt(rng, in, max_id), out, t});
    }
  } else if (name == "P1") {
    // 256 requests sharing a 2048-token system prefix + uniform 50..200 own tokens, 64 out.
    w.model_shape = "qwen3-0.6b";
    SplitMix64 rng(4);
    auto prefix = random_prompt(rng, scaled(2048, f), max_id);
    w.shared_prefix_tokens = static_cast<int32_t>(prefix.size());
    for (int32_t i = 0; i < count(256); ++i) {
      auto own = random_prompt(rng, scaled(rng.uniform(50, 200), f), max_id);
      std::vector<int32_t> prompt = prefix;
      prompt.insert(prompt.end(), own.begin(), own.end());
      w.requests.push_back({std::move(prompt), scaled(64, f), 0.0});
    }
  } else {
    return make_error("bad_workload", "unknown workload '" + name + "' (W1, W2, S1, L1, P1)");
  }
  return w;
}

WorkloadDigest digest(const Workload& w) {
  WorkloadDigest d;
  for (const auto& r : w.requests) {
    for (int32_t id : r.prompt_token_ids) d.checksum = d.checksum * 1000003u + static_cast<uint64_t>(id);
    d.checksum = d.checksum * 1000003u + static_cast<uint64_t>(r.max_tokens);
    ++d.requests;
    d.prompt_tokens += static_cast<int64_t>(r.prompt_token_ids.size());
    d.output_tokens += r.max_tokens;
  }
  return d;
}

}  // namespace vela::perf

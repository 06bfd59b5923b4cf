#pragma once
// The standard workloads of ../shared/BENCHMARKS.md (W1, W2, S1, L1, P1), generated
// from their seeds with splitmix64 so the Python baseline script
// (scripts/gpu/hf_baseline.py) produces the very same prompts and lengths.
#include <cstdint>
#include <string>
#include <vector>

#include "common/hash.h"
#include "common/result.h"

namespace vela::perf {

struct BenchRequest {
  std::vector<int32_t> prompt_token_ids;
  int32_t max_tokens = 0;          // decoded exactly (ignore_eos)
  double arrival_offset_s = 0.0;   // 0 for all-at-once workloads; Poisson for L1
};

struct Workload {
  std::string name;                // W1, W2, S1, L1, P1
  std::string model_shape;         // perf/models/<model_shape>/config.json
  std::vector<BenchRequest> requests;
  double request_rate = 0.0;       // requests/s for L1; 0 = all at t=0
  int32_t shared_prefix_tokens = 0; // P1: leading tokens every prompt shares (computed once with prefix caching)
};

// Overrides for small CPU runs (CI): scale request counts and lengths down.
struct WorkloadScale {
  int32_t num_requests = 0;        // 0 = the workload's own count
  double length_factor = 1.0;      // multiplies input and output lengths (min 1 token)
  int32_t max_token_id = 10000;    // prompts use ids below this (and below the vocab)
};

// splitmix64: the shared generator (identical in hf_baseline.py).
struct SplitMix64 {
  uint64_t state;
  explicit SplitMix64(uint64_t seed) : state(seed) {}
  uint64_t next() {
    const uint64_t r = splitmix64(state);
    state += 0x9E3779B97F4A7C15ull;
    return r;
  }
  // Uniform in [lo, hi] (modulo bias < 2^-50 for these ranges).
  int64_t uniform(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1)); }
  // Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

// Counts, lengths and a checksum of the ids: hf_baseline.py --dump prints the same
// digest, which proves both sides run the very same requests.
struct WorkloadDigest {
  int64_t requests = 0, prompt_tokens = 0, output_tokens = 0;
  uint64_t checksum = 0;
};
WorkloadDigest digest(const Workload& w);

Result<Workload> make_workload(const std::string& name, const WorkloadScale& scale = {});

}  // namespace vela::perf

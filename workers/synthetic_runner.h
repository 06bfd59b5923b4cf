#pragma once
// SyntheticRunner: a Runner that computes nothing. It keeps the same persistent
// batch a model runner keeps (tokens and computed counts per request, built only
// from SchedulerOutput deltas) and "samples" a token that is a pure function of the
// request's token history, so the engine's own overhead can be measured and the
// step protocol tested across processes without a model. Every rank answers alike.
#include <memory>

#include "workers/runner.h"

namespace vela {

struct SyntheticRunnerOptions {
  int32_t vocab_size = 32000;
  uint64_t kv_cache_bytes = uint64_t{1} << 30;  // what profiling "finds"
  uint64_t bytes_per_token = 1024;              // K+V bytes per token per block slot
};

std::unique_ptr<Runner> make_synthetic_runner(const SyntheticRunnerOptions& options = {});

// The token the synthetic runner samples after a sequence whose last token is
// last_token and whose length is num_tokens (tests predict outputs with it).
int32_t synthetic_next_token(int32_t last_token, int64_t num_tokens, int32_t vocab_size);

}  // namespace vela

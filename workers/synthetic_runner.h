#pragma once
// The synthetic runner: the no-op runner (same persistent batch as the model
// runner, built only from SchedulerOutput deltas) whose "sampled" token is a pure
// function of the request's token history, so tests across processes can predict
// every token without a model. It never stops by EOS.
#include <memory>

#include "workers/runner.h"

namespace vela {

struct SyntheticRunnerOptions {
  int32_t vocab_size = 32000;
  uint64_t kv_cache_bytes = uint64_t{1} << 30;  // what profiling "finds"
  uint64_t bytes_per_token = 1024;              // K+V bytes per token per block slot
  int64_t step_time_us = 0;                     // > 0: every step takes at least this long
};

std::unique_ptr<Runner> make_synthetic_runner(const SyntheticRunnerOptions& options = {});

// The token the synthetic runner samples after a sequence whose last token is
// last_token and whose length is num_tokens (tests predict outputs with it).
int32_t synthetic_next_token(int32_t last_token, int64_t num_tokens, int32_t vocab_size);

}  // namespace vela

#pragma once
// NoopRunner: answers every step without computing anything. It follows the same
// SchedulerOutput bookkeeping as the model runner (PersistentBatch, step inputs,
// block tables), so the engine around it runs exactly as it would; what it
// measures is the engine's own overhead. Its "sampled" token is either fixed or,
// for the synthetic runner (workers/synthetic_runner.h), a pure function of the
// request's token history that tests can predict.
#include <cstdint>
#include <memory>

#include "workers/runner.h"

namespace vela {

struct NoopRunnerOptions {
  // false: every sampled request gets the smallest id that is not an EOS id of the
  // model (0 usually). true: synthetic_next_token(last token, length), and the
  // profile below instead of the model's config.
  bool synthetic_tokens = false;
  int32_t vocab_size = 32000;                   // profile when synthetic (or no model config)
  uint64_t kv_cache_bytes = 0;                  // 0: LoadModel's CPU budget
  uint64_t bytes_per_token = 0;                 // 0: from the model's shape
  // > 0: every step takes at least this long (the core sleeps, as the host does while
  // a GPU computes): the overlap benchmark's stand-in for a forward pass.
  int64_t step_time_us = 0;
};

std::unique_ptr<Runner> make_noop_runner(const NoopRunnerOptions& options = {});

}  // namespace vela

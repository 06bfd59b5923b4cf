#include "workers/synthetic_runner.h"

#include "workers/noop_runner.h"

namespace vela {

int32_t synthetic_next_token(int32_t last_token, int64_t num_tokens, int32_t vocab_size) {
  // splitmix64 of (last token, length): deterministic, spread over the vocabulary.
  uint64_t z = (static_cast<uint64_t>(static_cast<uint32_t>(last_token)) << 32) ^
               static_cast<uint64_t>(num_tokens) ^ 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<int32_t>(z % static_cast<uint64_t>(vocab_size));
}

std::unique_ptr<Runner> make_synthetic_runner(const SyntheticRunnerOptions& options) {
  NoopRunnerOptions noop;
  noop.synthetic_tokens = true;
  noop.vocab_size = options.vocab_size;
  noop.kv_cache_bytes = options.kv_cache_bytes;
  noop.bytes_per_token = options.bytes_per_token;
  noop.step_time_us = options.step_time_us;
  return make_noop_runner(noop);
}

}  // namespace vela

#pragma once
// The model runner: loads an HF model (this rank's shard) onto its device (the CPU
// in fp32, or one CUDA GPU in bf16), owns the paged KV cache, and runs one step
// per SchedulerOutput: persistent batch update, flat inputs (one async copy to the
// GPU), forward, logits for the sampled rows, sampling on rank 0.
#include <cstdint>
#include <memory>
#include <string>

#include "workers/runner.h"

namespace vela {

class Communicator;

struct ModelRunnerOptions {
  // KV cache size on the CPU (the config's cache.cpu_kv_cache_gib, in bytes).
  // 0 = LoadModel.memory_utilization x total RAM, less the weights.
  uint64_t cpu_kv_cache_bytes = 0;
  // "cpu" or "cuda:N" (parallel.devices, --device).
  std::string device = "cpu";
};

// comm: this rank's collectives; nullptr means a single rank.
std::unique_ptr<Runner> make_model_runner(Communicator* comm);
std::unique_ptr<Runner> make_model_runner(Communicator* comm, const ModelRunnerOptions& options);

}  // namespace vela

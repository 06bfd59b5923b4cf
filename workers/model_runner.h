#pragma once
// The model runner: loads an HF model (this rank's shard) onto its device (the CPU
// in fp32, or one CUDA GPU in bf16 or fp32: model.dtype), owns the paged KV cache, and runs one step
// per SchedulerOutput: persistent batch update, flat inputs (one async copy to the
// GPU), forward, logits for the sampled rows, sampling on rank 0.
#include <cstdint>
#include <memory>
#include <optional>
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

// What the runner did with CUDA graphs (workers/decode_graphs.h), for logs and tests.
struct ModelRunnerStats {
  int32_t graphs_captured = 0;  // decode graphs captured at init_kv_cache
  double capture_seconds = 0;   // warm-up + capture + instantiation of all of them
  uint64_t graph_bytes = 0;     // device memory they took (free memory before - after)
  uint64_t graph_steps = 0;     // steps replayed from a graph
  // Of those: graphs of decode steps over a shared prefix (LoadModel.prefix_caching).
  int32_t cascade_graphs_captured = 0;
  uint64_t cascade_graph_steps = 0;
  uint64_t eager_steps = 0;     // steps launched op by op (mixed steps, big batches, eager mode, the CPU)
  // Where a step's time goes on this rank (seconds summed over steps): building the
  // inputs on the host (batch update, packing, checks, the upload enqueued), enqueuing
  // the forward / graph and the sampler, and waiting for the device (the sampled ids
  // and the end-of-step sync). prep + launch is host time the device may idle through
  // unless it still has work queued.
  double prep_seconds = 0, launch_seconds = 0, wait_seconds = 0, execute_seconds = 0;
  // Steps whose inputs were built ahead, while the device ran the step before (the
  // driver's lookahead, Runner::set_lookahead), and the host time that took (hidden
  // behind the device; not in prep_seconds).
  uint64_t ahead_steps = 0;
  double ahead_seconds = 0;
  // Per kind of step, the runner's time from the upload to the end of the final wait
  // (launch + wait; where the driver works between launch() and finish_into(), as the
  // in-process executor does, that time is not in it, though the device runs the step
  // meanwhile): where a workload's time goes between replayed decode steps and eager
  // ones (prefill / mixed), and the tokens the eager ones ran.
  double graph_step_seconds = 0, eager_step_seconds = 0;
  uint64_t eager_tokens = 0;
  // The host between steps: from the end of a step's final wait to the next step's
  // upload, summed over the steps that had one before them; the device has nothing
  // of ours to run then (engine time not hidden behind it).
  double gap_seconds = 0;
  uint64_t gaps = 0;
};

// comm: this rank's collectives; nullptr means a single rank.
std::unique_ptr<Runner> make_model_runner(Communicator* comm);
std::unique_ptr<Runner> make_model_runner(Communicator* comm, const ModelRunnerOptions& options);
// The stats of a runner made by make_model_runner; nullopt for any other runner.
std::optional<ModelRunnerStats> model_runner_stats(const Runner& runner);

}  // namespace vela

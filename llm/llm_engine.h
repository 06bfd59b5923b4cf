#pragma once
// LLMEngine: the blocking driver of an EngineCore, no actors: `vela generate
// --model`, `vela bench throughput` and tests use it. At tensor_parallel_size 1 its
// executor is an InProcessExecutor (one runner in this process, no sockets); above,
// the WorkerGroupExecutor `vela serve` uses (one worker process per rank, NCCL or
// Gloo between them). The EngineCore, its startup and its step loop are the ones
// `vela serve` runs; only the executor differs.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "configs/config.h"
#include "engine_core/engine_core.h"
#include "llm/in_process_executor.h"
#include "messages/engine_core_output.h"
#include "messages/engine_core_request.h"
#include "workers/runner.h"

namespace vela {

class LLMEngine {
 public:
  // Loads the runner (weights, memory profile), sizes the KV cache and builds the
  // scheduler. config must have gone through resolve_model_paths().
  static Result<std::unique_ptr<LLMEngine>> create(const Config& config, std::unique_ptr<Runner> runner);
  // The model runner (or the no-op runner when runner == "noop"); at
  // tensor_parallel_size > 1, vela-worker processes running it.
  static Result<std::unique_ptr<LLMEngine>> create(const Config& config, const std::string& runner = "model");

  // Validates and queues a request; on rejection returns its kError output.
  std::optional<EngineCoreOutput> add_request(EngineCoreRequest request);
  std::vector<EngineCoreOutput> abort_requests(const std::vector<std::string>& request_ids);

  // One step: schedule and submit (two steps in flight with async scheduling), then
  // apply the oldest step's output. The outputs stay valid until the next step.
  Result<const EngineCoreOutputs*> step();
  bool has_unfinished_requests() const { return core_->has_work(); }

  const Scheduler& scheduler() const { return core_->scheduler(); }
  const ProfileResult& profile() const { return core_->facts().workers.profiles[0]; }
  int32_t num_blocks() const { return core_->facts().num_blocks; }
  int32_t max_model_len() const { return core_->scheduler().limits().max_model_len; }
  // The runner the steps run on (its stats: workers/model_runner.h model_runner_stats).
  // The runner in this process; null at tensor_parallel_size > 1 (the ranks are
  // worker processes).
  const Runner* runner() const {
    auto* in_process = dynamic_cast<const InProcessExecutor*>(executor_.get());
    return in_process != nullptr ? &in_process->runner() : nullptr;
  }

 private:
  LLMEngine() = default;

  std::unique_ptr<Executor> executor_;
  std::unique_ptr<EngineCore> core_;  // borrows executor_
  EngineCoreOutputs outputs_;         // reused every step
};

}  // namespace vela

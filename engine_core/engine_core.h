#pragma once
// EngineCore: the Scheduler (with its KVCacheManager) and an Executor, driven the
// same way by both drivers: llm/LLMEngine (in-process, blocking) and the
// EngineCoreActor (`vela serve`, event-driven). Plain C++: no actors, no sockets,
// no threads of its own.
//
// Startup (create(), written once): every rank loads the model and profiles its
// memory -> one pool size every rank can hold (agree_num_blocks) -> InitKVCache on
// every rank -> the Scheduler (Scheduler::create). The block size is checked once
// (validate_scheduler_limits, before any worker starts) and travels once, from
// limits.block_size_tokens in LoadModel; workers keep it from there.
//
// Steps: submit_steps() schedules and hands steps to the executor while fewer than
// max_steps_in_flight() are in flight; collect() applies the oldest one's output.
// With limits.async_scheduling two steps are in flight: step N+1 is scheduled (and
// on the workers' queue) while step N runs, so the engine's own work per step hides
// behind the workers' (scheduler.h says how pending tokens are handled).
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine_core/admission.h"
#include "engine_core/executor.h"
#include "engine_core/scheduler.h"

namespace vela {

struct EngineCoreOptions {
  SchedulerLimits limits;           // num_blocks is ignored: agreed at startup
  LoadModel load;                   // what every rank loads (its block size is limits')
  int32_t num_blocks_override = 0;  // > 0: the pool size (cache.num_gpu_blocks), else from the profiles
};

// What the engine knows once it runs: enough to admit requests before they reach it.
struct EngineFacts {
  WorkerFacts workers;
  int32_t num_blocks = 0;           // the pool, null block included
  int32_t vocab_size = 0;
  int32_t eos_token_id = -1;
  AdmissionLimits admission;
};

// The pool every rank can hold: the minimum over ranks of available / per-block
// bytes (or the override), at least 2 blocks (block 0 is the null block).
Result<int32_t> agree_num_blocks(const std::vector<ProfileResult>& profiles, int32_t num_blocks_override);

class EngineCore {
 public:
  // Runs the startup sequence through `executor`, which must outlive the core.
  static Result<std::unique_ptr<EngineCore>> create(const EngineCoreOptions& options, Executor& executor);

  // Queues a request (its eos_token_id defaults to the model's); on rejection returns
  // its kError output (why it can never run).
  std::optional<EngineCoreOutput> add_request(EngineCoreRequest request);
  std::vector<EngineCoreOutput> abort_requests(const std::vector<std::string>& request_ids);

  // Schedules and submits steps while there is work and room in flight.
  Status submit_steps();
  // Applies the oldest step's output when it arrives within timeout_ms (< 0: the
  // executor's step deadline): true and `out` filled (valid until the next call), or
  // false with nothing applied. An Error: the workers failed; the core is unusable.
  Result<bool> collect(EngineCoreOutputs& out, int timeout_ms);

  // Requests to run, finished ids to tell the workers, or steps still in flight.
  bool has_work() const {
    return num_in_flight_ > 0 || scheduler_->has_unfinished_requests() || scheduler_->has_finished_requests_to_report();
  }
  size_t num_steps_in_flight() const { return num_in_flight_; }
  size_t max_steps_in_flight() const { return scheduler_->limits().async_scheduling ? 2 : 1; }
  const Scheduler& scheduler() const { return *scheduler_; }
  const EngineFacts& facts() const { return facts_; }
  Executor& executor() { return executor_; }

 private:
  EngineCore(Executor& executor, EngineFacts facts, std::unique_ptr<Scheduler> scheduler)
      : executor_(executor), facts_(std::move(facts)), scheduler_(std::move(scheduler)) {}

  Executor& executor_;
  EngineFacts facts_;
  std::unique_ptr<Scheduler> scheduler_;
  // One buffer per step in flight: the executor borrows it until its output is in.
  std::array<SchedulerOutput, 2> steps_;
  size_t oldest_ = 0;         // index of the oldest step in flight
  size_t num_in_flight_ = 0;
  ModelRunnerOutput result_;  // reused: the executor swaps each output in
};

}  // namespace vela

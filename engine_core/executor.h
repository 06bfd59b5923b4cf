#pragma once
// Executor: how an EngineCore reaches its workers. Two implementations: the
// in-process executor (one Runner in this process, llm/in_process_executor.h) and
// the worker group (one process per rank, executor/worker_group_executor.h). The
// EngineCore drives both the same way; the startup sequence is its own.
#include <cstdint>
#include <functional>
#include <vector>

#include "common/result.h"
#include "messages/model_runner_output.h"
#include "messages/scheduler_output.h"
#include "messages/worker_control.h"

namespace vela {

// What the workers said at startup, by rank.
struct WorkerFacts {
  std::vector<Hello> hellos;
  std::vector<ProfileResult> profiles;
};

class Executor {
 public:
  virtual ~Executor() = default;

  // Starts the workers (spawn, Hello), loads the model on every rank (each gets
  // `load` with its rank filled in) and returns what each rank reported.
  virtual Result<WorkerFacts> start(const LoadModel& load) = 0;
  // Allocates the KV cache on every rank.
  virtual Status init_kv_cache(const InitKVCache& init) = 0;

  // Hands one step to the workers. The executor borrows `step` until that step's
  // output has been collected (the EngineCore keeps one buffer per step in flight);
  // an in-process executor may fill its placeholders in place.
  virtual Status submit(SchedulerOutput& step) = 0;
  // The oldest submitted step's output, swapped into `out`: true when there was one,
  // false when it has not arrived within timeout_ms (< 0: wait as long as the step
  // deadline allows). An Error means the workers failed (health): every step in
  // flight is lost.
  virtual Result<bool> collect(ModelRunnerOutput& out, int timeout_ms) = 0;
  // Called from any thread when collect() has something (an output or a failure) for
  // an event-driven caller. Set before start().
  virtual void set_notify(std::function<void()> notify) { (void)notify; }

  // Asks every worker to stop, waits up to grace_s, then kills what is left.
  virtual void shutdown(double grace_s) = 0;
};

}  // namespace vela

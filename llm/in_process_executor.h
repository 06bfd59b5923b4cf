#pragma once
// InProcessExecutor: one Runner in this process, no sockets. submit() launches the
// step (Runner::launch: inputs built, work enqueued on the device) and returns, so the
// engine schedules the next step while the device runs this one. With async
// scheduling that next step is submitted before this one's output is collected: the
// runner then builds its inputs from the lookahead while the device still runs (as
// in a worker process), finishes this step, and the next step's placeholders are filled
// from its output before it is launched. collect() finishes a step still running.
// VELA_INPROCESS_OVERLAP=0 finishes every step inside its submit() (A/B runs).
#include <deque>
#include <memory>

#include "engine_core/executor.h"
#include "workers/runner.h"

namespace vela {

class InProcessExecutor final : public Executor {
 public:
  explicit InProcessExecutor(std::unique_ptr<Runner> runner);
  ~InProcessExecutor() override;

  Result<WorkerFacts> start(const LoadModel& load) override;
  Status init_kv_cache(const InitKVCache& init) override;
  Status submit(SchedulerOutput& step) override;
  Result<bool> collect(ModelRunnerOutput& out, int timeout_ms) override;  // true: an output arrived
  void shutdown(double) override {}

  Runner& runner() { return *runner_; }
  const Runner& runner() const { return *runner_; }

 private:
  // The launched step's output into ready_ (its lookahead showing `next`, or none).
  Status finish(const SchedulerOutput* next);

  std::unique_ptr<Runner> runner_;
  bool running_ = false;                    // a step launched and not finished
  bool overlap_ = true;                     // VELA_INPROCESS_OVERLAP=0: finish each step in submit()
  std::deque<ModelRunnerOutput> ready_;     // outputs not collected yet, oldest first
  std::vector<ModelRunnerOutput> spare_;    // collected buffers, reused (their capacity kept)
};

}  // namespace vela

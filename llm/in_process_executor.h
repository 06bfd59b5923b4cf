#pragma once
// InProcessExecutor: one Runner in this process, no sockets. submit() runs the step
// at once and keeps its output until collect(); with async scheduling the next step
// arrives before the previous output is collected, and its placeholders are filled
// from that output, as a worker process fills them from its own last output.
#include <deque>
#include <memory>

#include "engine_core/executor.h"
#include "workers/runner.h"

namespace vela {

class InProcessExecutor final : public Executor {
 public:
  explicit InProcessExecutor(std::unique_ptr<Runner> runner) : runner_(std::move(runner)) {}

  Result<WorkerFacts> start(const LoadModel& load) override;
  Status init_kv_cache(const InitKVCache& init) override;
  Status submit(SchedulerOutput& step) override;
  Result<bool> collect(ModelRunnerOutput& out, int timeout_ms) override;  // true: an output arrived
  void shutdown(double) override {}

  Runner& runner() { return *runner_; }
  const Runner& runner() const { return *runner_; }

 private:
  std::unique_ptr<Runner> runner_;
  std::deque<ModelRunnerOutput> ready_;     // outputs not collected yet, oldest first
  std::vector<ModelRunnerOutput> spare_;    // collected buffers, reused (their capacity kept)
};

}  // namespace vela

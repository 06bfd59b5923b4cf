#pragma once
// Runner: what a worker process drives, one per device. The CPU model runner
// (workers/model_runner.*) and the no-op runner used to measure the engine's own
// overhead both implement it; the worker's message loop knows nothing else.
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "common/result.h"
#include "messages/model_runner_output.h"
#include "messages/scheduler_output.h"
#include "messages/worker_control.h"

namespace vela {

class Communicator;

class Runner {
 public:
  virtual ~Runner() = default;
  // Loads weights (this rank's shard) and profiles memory: how many bytes the KV
  // cache may take and how many bytes one block needs.
  virtual Result<ProfileResult> load(const LoadModel& request) = 0;
  virtual Status init_kv_cache(const InitKVCache& request) = 0;
  // Runs one step. Every rank runs it; only rank 0's output is sent back.
  virtual Result<ModelRunnerOutput> execute(const SchedulerOutput& step) = 0;
  // Same, into `out` (the worker reuses it across steps, so a runner that fills it in
  // place allocates nothing once warm). The default moves execute()'s result in.
  virtual Status execute_into(const SchedulerOutput& step, ModelRunnerOutput& out) {
    VELA_TRY_ASSIGN(out, execute(step));
    return ok_status();
  }
  // execute() in two halves, for a driver with work of its own while the device runs
  // the step (the in-process executor: the engine schedules the next step meanwhile):
  // launch() builds the step's inputs and enqueues its work; finish_into() asks the
  // lookahead for the next step (building its inputs while the device still runs this
  // one), waits and hands over the output. One step at a time: launch, finish, launch.
  // Default (runners that have nothing to overlap): launch runs execute() and keeps
  // its output for finish_into().
  virtual Status launch(const SchedulerOutput& step) {
    if (launched_)
      return make_error("bad_step", "step " + std::to_string(step.step_id) + " launched before the last was finished");
    VELA_TRY_ASSIGN(launched_out_, execute(step));
    launched_ = true;
    return ok_status();
  }
  virtual Status finish_into(ModelRunnerOutput& out) {
    if (!launched_) return make_error("not_launched", "finish without a launched step");
    launched_ = false;
    std::swap(out, launched_out_);
    return ok_status();
  }
  // What the driver has already received after the step being run: the next step
  // (its placeholders not filled yet) or nullptr. A runner may call it while the device
  // runs a step and build the next step's host inputs then; when that step is executed
  // (placeholders filled) it finds them ready. Default: not used.
  using Lookahead = std::function<const SchedulerOutput*()>;
  virtual void set_lookahead(Lookahead) {}

 private:
  ModelRunnerOutput launched_out_;  // the default launch()'s output, until finished
  bool launched_ = false;
};

}  // namespace vela

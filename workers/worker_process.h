#pragma once
// The message loop of one `vela-worker` process: connect a DEALER to the engine's
// ROUTER, say Hello, load and profile on LoadModel, allocate on InitKVCache, then run
// every SchedulerOutput through the Runner (rank 0 answers with ModelRunnerOutput).
// The worker dies with its engine: PR_SET_PDEATHSIG plus a parent-pid check each poll.
#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "workers/runner.h"

namespace vela {

class Communicator;

struct WorkerOptions {
  int32_t rank = 0;
  int32_t world_size = 1;
  int32_t replica = 0;
  std::string device = "cpu";
  std::string engine_endpoint;
  std::string runner = "model";
  pid_t parent_pid = 0;            // 0: do not watch the parent
  std::string trace_path;          // append receive records here when not empty
  std::string dist_host = "127.0.0.1";
  double collective_timeout_s = 60;
  std::string step_channel;        // StepChannel spec (MEMFD:DOWNFD:UPFD); empty: steps on the socket
  int64_t step_spin_ns = 0;        // spin this long for the next step before sleeping
};

// Makes the runner named by options.runner; comm outlives it.
using RunnerFactory =
    std::function<Result<std::unique_ptr<Runner>>(const std::string& runner, Communicator* comm)>;

// Returns the process exit code: 0 after Shutdown, non-zero when the engine vanished
// or the worker could not start.
int run_worker(const WorkerOptions& options, const RunnerFactory& make_runner);

}  // namespace vela

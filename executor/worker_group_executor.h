#pragma once
// WorkerGroupExecutor: the Executor of `vela serve`, one replica's worker processes.
// One thread of its own owns the WorkerGroup (and with it the ROUTER socket and the
// StepChannel's engine end; it also spawns the workers, so their PR_SET_PDEATHSIG
// follows a thread that lives as long as they should). Callers on any thread hand
// steps over by pointer (no copy: the EngineCore keeps the buffer until the output
// is collected) and take outputs back by swap; start() and init_kv_cache() wait for
// the thread's answer. Outputs and failures are announced through set_notify().
#include <zmq.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "engine_core/executor.h"
#include "executor/worker_group.h"

namespace vela {

class WorkerGroupExecutor final : public Executor {
 public:
  explicit WorkerGroupExecutor(WorkerGroupOptions options, TraceFn trace = nullptr);
  ~WorkerGroupExecutor() override;  // shutdown(0)
  WorkerGroupExecutor(const WorkerGroupExecutor&) = delete;
  WorkerGroupExecutor& operator=(const WorkerGroupExecutor&) = delete;

  Result<WorkerFacts> start(const LoadModel& load) override;
  Status init_kv_cache(const InitKVCache& init) override;
  Status submit(SchedulerOutput& step) override;
  Result<bool> collect(ModelRunnerOutput& out, int timeout_ms) override;  // true: an output arrived
  void set_notify(std::function<void()> notify) override;
  // Thread-safe: Shutdown to the workers, up to grace_s for them to exit, then join.
  void shutdown(double grace_s) override;
  // Thread-safe: why the workers failed, once they have (also with no step in flight,
  // when collect() has nothing to say).
  std::optional<std::string> failure();

 private:
  void run();
  void wake();
  void fail(const std::string& error);  // on the thread: kill the group, record, announce
  void announce();
  void release_devices();  // lets the next replica sharing a GPU start (see the .cpp)

  WorkerGroupOptions options_;
  TraceFn trace_;
  std::string name_;
  zmq::context_t context_;
  std::unique_ptr<WorkerGroup> group_;  // touched by the thread only
  int wake_fd_ = -1;                    // eventfd: the thread polls it beside the sockets

  std::mutex mu_;                       // guards everything below
  std::condition_variable cv_;
  std::function<void()> notify_;
  std::optional<LoadModel> start_request_;
  std::optional<Result<WorkerFacts>> start_result_;
  std::optional<InitKVCache> init_request_;
  std::optional<Status> init_result_;
  std::deque<const SchedulerOutput*> steps_;  // handed over, not yet submitted
  struct Ready {
    ModelRunnerOutput output;
    int64_t queued_ns = 0;              // wall time the thread queued it (traces the hop)
  };
  std::deque<Ready> ready_;             // outputs not collected yet, oldest first
  std::vector<ModelRunnerOutput> spare_;  // collected buffers, reused
  std::optional<std::string> failure_;  // the group failed (or was shut down)
  bool stop_ = false;
  double stop_grace_s_ = 0;
  std::thread thread_;
  std::vector<std::string> gated_devices_;  // GPUs this group holds while it starts (caller's thread)
};

}  // namespace vela

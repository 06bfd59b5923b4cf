#pragma once
// ExecutorThread: the one thread that owns an engine replica's worker sockets. It
// starts the WorkerGroup, then waits on three things at once: a step handed over by
// the engine (queue + eventfd wake), rank 0's output, and worker deaths / deadlines.
// Results leave through callbacks (the actor layer turns them into messages). After a
// failure every worker is killed; restart() starts a fresh group.
#include <zmq.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "executor/worker_group.h"

namespace vela {

struct ExecutorCallbacks {
  std::function<void(const WorkerGroupInfo&)> on_ready;
  std::function<void(ModelRunnerOutput&&)> on_output;
  std::function<void(const std::string&)> on_failure;  // startup failure or death
};

class ExecutorThread {
 public:
  ExecutorThread(WorkerGroupOptions options, ExecutorCallbacks callbacks, TraceFn trace = nullptr);
  ~ExecutorThread();  // stop(0)
  ExecutorThread(const ExecutorThread&) = delete;
  ExecutorThread& operator=(const ExecutorThread&) = delete;

  void submit(SchedulerOutput step);  // thread-safe
  void restart();                     // thread-safe: spawn a new group after a failure
  // Thread-safe: Shutdown to the workers, up to grace_s for them to exit, then join.
  void stop(double grace_s);
  std::vector<pid_t> worker_pids() const;  // thread-safe snapshot

 private:
  void run();
  void wake();
  enum class Command { kNone, kRestart, kStop };

  WorkerGroupOptions options_;
  ExecutorCallbacks callbacks_;
  TraceFn trace_;
  zmq::context_t context_;
  int wake_fd_ = -1;  // eventfd: the thread polls it beside the sockets
  mutable std::mutex mu_;
  std::deque<SchedulerOutput> steps_;
  Command command_ = Command::kNone;
  double stop_grace_s_ = 0;
  std::vector<pid_t> pids_;
  std::thread thread_;
};

}  // namespace vela

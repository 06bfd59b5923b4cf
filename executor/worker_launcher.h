#pragma once
// Starting and watching `vela-worker` processes. A worker is spawned with
// posix_spawn and watched through a pidfd (pollable next to ZeroMQ sockets), so a
// death is noticed within one poll, not at the next message. No CAF here.
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace vela {

struct WorkerSpec {
  int32_t rank = 0;              // rank inside its tensor-parallel group
  int32_t world_size = 1;        // tensor_parallel_size
  int32_t replica = 0;           // data-parallel engine index
  std::string device = "cpu";
  std::string engine_endpoint;   // the executor's ROUTER the worker connects to
  std::string runner = "model";  // "model" (the CPU model runner) or "synthetic"
  std::string log_level = "info";
  std::string trace_path;        // empty: no tracing; else append records to this JSONL
  std::string step_channel;      // StepChannel::worker_spec(rank); empty: steps on the socket
  std::vector<int> inherit_fds;  // fds the child keeps (the step channel's memfd, eventfds)
  int64_t step_spin_ns = 0;      // how long an idle worker spins on the channel before sleeping
  std::vector<std::string> env;  // NAME=VALUE added to the child's environment (its CURVE keys)
};

// How a process ended, as waitpid reported it.
struct ExitStatus {
  bool exited = false;    // exit() was called: see code
  int code = 0;
  int signal = 0;         // killed by this signal when !exited
  std::string describe() const;
};

class WorkerProcess {
 public:
  WorkerProcess() = default;
  WorkerProcess(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}
  WorkerProcess(WorkerProcess&& other) noexcept;
  WorkerProcess& operator=(WorkerProcess&& other) noexcept;
  ~WorkerProcess();  // SIGKILLs and reaps a process that is still running

  pid_t pid() const { return pid_; }
  // Readable (POLLIN) once the process has exited; -1 when pidfd_open is unsupported.
  int pidfd() const { return pidfd_; }
  // Non-blocking: the exit status once the process has ended (and reaps it).
  std::optional<ExitStatus> try_reap();
  // Waits up to timeout_s for the process to end, then SIGKILLs it; always reaps.
  ExitStatus stop(double timeout_s);
  void signal(int sig) const;
  bool reaped() const { return reaped_; }

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  bool reaped_ = false;
  std::optional<ExitStatus> status_;
};

// The `vela-worker` binary: $VELA_WORKER_BINARY, else beside the running executable.
std::string default_worker_binary();

// Spawns one worker. The child gets --parent-pid so it can exit when the engine dies.
Result<WorkerProcess> spawn_worker(const std::string& binary, const WorkerSpec& spec);

}  // namespace vela

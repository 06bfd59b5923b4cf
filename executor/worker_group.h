#pragma once
// WorkerGroup: the workers of one engine replica (tensor_parallel_size processes)
// seen from the engine. It spawns them, runs their side of the startup (Hello,
// LoadModel + profile; then InitKVCache with the pool the EngineCore agreed on),
// broadcasts each step's SchedulerOutput and collects rank 0's ModelRunnerOutput, in
// order, with up to two steps in flight. It is driven by one thread (the
// WorkerGroupExecutor's thread owns the ROUTER socket) and never blocks without a deadline:
// a worker's death (pidfd), a step deadline, or an error message all surface as a
// failure event within one poll.
#include <zmq.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "engine_core/executor.h"
#include "transport/curve_auth.h"
#include "transport/step_channel.h"
#include "transport/step_link.h"
#include "transport/trace_record.h"
#include "executor/worker_launcher.h"
#include "messages/codec.h"

namespace vela {

struct WorkerGroupOptions {
  int32_t replica = 0;                 // data-parallel index (names endpoints and traces)
  int32_t world_size = 1;              // tensor-parallel ranks in this group
  std::vector<std::string> devices;    // one per rank; empty = "cpu" for every rank
  std::string transport = "ipc";       // ipc | tcp
  std::string host = "127.0.0.1";      // tcp bind address
  std::string worker_binary;           // empty = default_worker_binary()
  std::string runner = "model";        // passed to vela-worker --runner
  std::string log_level = "info";
  std::string trace_path;              // passed to workers (they append their own records)
  double startup_timeout_s = 120;
  double step_timeout_s = 30;
  // The step path: "shm" (a StepChannel: shared-memory rings, eventfd wakes; control
  // messages stay on the socket) or "socket" (everything over ZeroMQ).
  std::string step_channel = "shm";
  uint64_t shm_slot_bytes = 4u << 20;  // a step or output larger than this takes the socket
  uint32_t shm_slots = 4;
  // How long a waiting end spins on the channel before sleeping on its eventfd: the
  // engine while a step is in flight, a worker after its last step.
  int64_t step_spin_ns = 200000;
};

struct WorkerEvent {
  enum class Kind { kNone, kStepOutput, kFailure };
  Kind kind = Kind::kNone;
  ModelRunnerOutput output;            // kStepOutput
  std::string error;                   // kFailure: which rank, what happened
};

class WorkerGroup {
 public:
  WorkerGroup(zmq::context_t& context, WorkerGroupOptions options, TraceFn trace = nullptr);
  ~WorkerGroup();  // kills any worker still running
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;

  // Spawns the workers, says LoadModel (`load`, its rank fields set per rank) and
  // returns every rank's Hello and ProfileResult. On failure every worker is killed.
  Result<WorkerFacts> start(const LoadModel& load);
  // InitKVCache to every rank and an Ack from each. On failure every worker is killed.
  Status init_kv_cache(const InitKVCache& init);

  // Broadcasts one step; its output comes back after those of the steps before it.
  static constexpr size_t kMaxStepsInFlight = 2;
  Status submit_step(const SchedulerOutput& step);
  size_t num_steps_in_flight() const { return in_flight_.size(); }

  // Waits up to timeout_ms for rank 0's output, a worker's death or error, or the
  // step deadline. wake_fd (optional, e.g. an eventfd) is polled too: when it becomes
  // readable poll returns kNone at once so the caller can look at new work.
  WorkerEvent poll(int timeout_ms, int wake_fd = -1);
  // Same, filling `ev` (its output's vectors and strings are reused across steps).
  void poll(int timeout_ms, WorkerEvent& ev, int wake_fd = -1);

  // Sends Shutdown, waits up to grace_s for each worker to exit, then SIGKILLs.
  void shutdown(double grace_s);
  // SIGKILLs every worker and reaps it (after a failure).
  void kill_all();

  std::vector<pid_t> pids() const;
  const std::string& endpoint() const { return endpoint_; }

 private:
  struct Incoming {
    int32_t rank = -1;
    msg::Decoded decoded;
  };
  // Waits for the next decoded message from any worker, watching deaths and the deadline.
  Result<Incoming> receive(int64_t deadline_ns, const char* waiting_for);
  std::string check_deaths();  // non-empty description when a worker has exited
  // Non-empty when a worker is stopped (SIGSTOP, a debugger): its peers would wait on
  // it in every collective until the step deadline. Read from /proc; looked at once a
  // step is late by a second, so a stopped rank is named within about a second.
  std::string check_stopped();
  // Waits up to grace_ms for a worker to die (its pidfd); the description, or empty.
  // A rank's error is often the echo of a peer's death (its collective read failed):
  // the death is the cause to report.
  std::string wait_for_death(int grace_ms);
  // Step deadline: which ranks are stopped (SIGSTOP: /proc state T), else all of them.
  std::string describe_stuck_ranks();
  // "worker rank(s) 1 (pid N), ... stopped (...)" for the stopped workers; empty if none.
  std::string stopped_ranks();
  // Decodes the message in in_frames_ from worker `rank`; true when it filled `ev`.
  bool accept(const char* rank, WorkerEvent& ev);
  Status send_to(int32_t rank, const msg::Frames& frames);

  zmq::context_t& context_;
  WorkerGroupOptions options_;
  TraceFn trace_;
  // tcp: CURVE with keys made for this group (the workers get theirs in their
  // environment), so nothing else on the host or network can speak for a rank.
  std::unique_ptr<transport::CurveAuthenticator> auth_;
  std::vector<std::string> worker_env_;
  zmq::socket_t router_;
  std::unique_ptr<transport::StepChannel> channel_;  // null: steps on the socket
  std::optional<transport::StepSender> steps_;       // down to every rank (made by start())
  std::optional<transport::StepReceiver> outputs_;   // rank 0's outputs and every rank's errors
  std::string endpoint_;
  std::vector<WorkerProcess> workers_;
  std::string name_;                       // "engine<replica>"
  uint64_t next_control_id_ = 1;
  struct InFlight {
    uint64_t step_id;
    // Its output is due by then: step_timeout_s after it could start, i.e. after it was
    // sent or after the step before it answered, whichever is later (a step queued
    // behind another in the worker is not late for the time it waited).
    int64_t deadline_ns;
    int64_t submit_ns;  // when it was sent, or became the oldest in flight if later
  };
  int64_t last_stop_check_ns_ = 0;
  std::deque<InFlight> in_flight_;         // oldest first
  bool all_pidfds_ = false;                // every worker has a pidfd (deaths wake poll)
  std::vector<std::string> identities_;    // ROUTER identity by rank ("w<rank>")
  // Reused across steps so the step path does not allocate once warm.
  msg::Frames step_frames_;                // the encoded SchedulerOutput
  msg::Frames in_frames_;                  // the message being received
  std::string in_identity_;
  msg::Message incoming_;                  // decoded in place
  std::vector<zmq::pollitem_t> poll_items_;  // the caller's wake fd and the pidfds
};

}  // namespace vela

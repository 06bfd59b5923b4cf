#include "executor/executor_thread.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/logging.h"

namespace vela {

ExecutorThread::ExecutorThread(WorkerGroupOptions options, ExecutorCallbacks callbacks, TraceFn trace)
    : options_(std::move(options)), callbacks_(std::move(callbacks)), trace_(std::move(trace)) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  thread_ = std::thread([this] { run(); });
}

ExecutorThread::~ExecutorThread() {
  stop(0);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void ExecutorThread::wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

void ExecutorThread::submit(SchedulerOutput step) {
  {
    std::lock_guard lock(mu_);
    steps_.push_back(std::move(step));
  }
  wake();
}

void ExecutorThread::restart() {
  {
    std::lock_guard lock(mu_);
    if (command_ == Command::kNone) command_ = Command::kRestart;
  }
  wake();
}

void ExecutorThread::stop(double grace_s) {
  {
    std::lock_guard lock(mu_);
    command_ = Command::kStop;
    stop_grace_s_ = grace_s;
  }
  wake();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::vector<pid_t> ExecutorThread::worker_pids() const {
  std::lock_guard lock(mu_);
  return pids_;
}

void ExecutorThread::run() {
  // The group lives on this thread, which also spawns the workers: their
  // PR_SET_PDEATHSIG follows this thread, which lives as long as they should.
  auto log = logger("executor");
  bool need_start = true;
  std::unique_ptr<WorkerGroup> group;
  while (true) {
    if (need_start) {
      need_start = false;
      group = std::make_unique<WorkerGroup>(context_, options_, trace_);
      auto info = group->start();
      {
        std::lock_guard lock(mu_);
        pids_ = group->pids();
        steps_.clear();  // steps planned for a dead group are void
      }
      if (info) {
        callbacks_.on_ready(info.value());
      } else {
        group.reset();
        callbacks_.on_failure(info.error().message);
      }
    }
    // Drain the wake counter, then look at commands and queued steps.
    uint64_t counter = 0;
    (void)!::read(wake_fd_, &counter, sizeof(counter));
    Command command;
    std::optional<SchedulerOutput> step;
    {
      std::lock_guard lock(mu_);
      command = command_;
      if (command_ == Command::kRestart) command_ = Command::kNone;
      if (group && !group->step_in_flight() && !steps_.empty()) {
        step = std::move(steps_.front());
        steps_.pop_front();
      }
    }
    if (command == Command::kStop) {
      if (group) group->shutdown(stop_grace_s_);
      return;
    }
    if (command == Command::kRestart && !group) {
      need_start = true;
      continue;
    }
    if (!group) {  // failed and waiting for restart or stop
      pollfd p{wake_fd_, POLLIN, 0};
      ::poll(&p, 1, 100);
      continue;
    }
    if (step) {
      if (auto sent = group->submit_step(*step); !sent) {
        group->kill_all();
        group.reset();
        callbacks_.on_failure(sent.error().message);
        continue;
      }
    }
    // WorkerGroup::poll watches the ROUTER, the pidfds and the step deadline; the
    // eventfd is passed as an extra fd so a new step or a command interrupts it.
    auto ev = group->poll(50, wake_fd_);
    if (ev.kind == WorkerEvent::Kind::kStepOutput) {
      callbacks_.on_output(std::move(ev.output));
    } else if (ev.kind == WorkerEvent::Kind::kFailure) {
      log->error("{}", ev.error);
      group->kill_all();
      group.reset();
      callbacks_.on_failure(ev.error);
    }
  }
}

}  // namespace vela

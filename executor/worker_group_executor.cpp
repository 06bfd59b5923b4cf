#include "executor/worker_group_executor.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <set>

#include "common/clock.h"
#include "common/logging.h"

namespace vela {
namespace {

// Replicas that share a GPU start one at a time. A worker's KV budget is its share
// of the card less the memory that appeared since its runtime opened
// (workers/memory_profile.h); that measures its own use only while no other worker
// on the card is allocating. Held from start() until the KV cache is allocated.
class DeviceStartupGate {
 public:
  void acquire(const std::vector<std::string>& devices) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return std::none_of(devices.begin(), devices.end(), [&](auto& d) { return busy_.count(d); }); });
    busy_.insert(devices.begin(), devices.end());
  }
  void release(const std::vector<std::string>& devices) {
    {
      std::lock_guard lock(mu_);
      for (const auto& d : devices) busy_.erase(d);
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> busy_;
};

DeviceStartupGate& startup_gate() {
  static DeviceStartupGate gate;
  return gate;
}

}  // namespace

WorkerGroupExecutor::WorkerGroupExecutor(WorkerGroupOptions options, TraceFn trace)
    : options_(std::move(options)), trace_(std::move(trace)), name_("engine" + std::to_string(options_.replica)) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  thread_ = std::thread([this] { run(); });
}

WorkerGroupExecutor::~WorkerGroupExecutor() {
  shutdown(0);
  release_devices();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void WorkerGroupExecutor::wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

void WorkerGroupExecutor::set_notify(std::function<void()> notify) {
  std::lock_guard lock(mu_);
  notify_ = std::move(notify);
}

void WorkerGroupExecutor::announce() {
  std::function<void()> notify;
  {
    std::lock_guard lock(mu_);
    notify = notify_;
  }
  cv_.notify_all();
  if (notify) notify();
}

Result<WorkerFacts> WorkerGroupExecutor::start(const LoadModel& load) {
  release_devices();  // a restart: the previous start's hold, if any
  for (const auto& d : options_.devices)
    if (d.rfind("cuda", 0) == 0) gated_devices_.push_back(d);
  startup_gate().acquire(gated_devices_);
  {
    std::lock_guard lock(mu_);
    if (stop_) {
      release_devices();
      return make_error("shut_down", name_ + ": shut down");
    }
    start_result_.reset();
    init_result_.reset();
    start_request_ = load;
  }
  wake();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return start_result_.has_value(); });
  Result<WorkerFacts> result = *start_result_;
  lock.unlock();
  if (!result) release_devices();
  return result;
}

void WorkerGroupExecutor::release_devices() {
  if (gated_devices_.empty()) return;
  startup_gate().release(gated_devices_);
  gated_devices_.clear();
}

Status WorkerGroupExecutor::init_kv_cache(const InitKVCache& init) {
  {
    std::lock_guard lock(mu_);
    if (failure_) return make_error("workers_failed", *failure_);
    init_request_ = init;
  }
  wake();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return init_result_.has_value() || failure_.has_value(); });
  Status result = init_result_ ? *init_result_ : Status(make_error("workers_failed", *failure_));
  lock.unlock();
  release_devices();  // the KV cache is allocated (or the start failed): the next replica may start
  return result;
}

Status WorkerGroupExecutor::submit(SchedulerOutput& step) {
  {
    std::lock_guard lock(mu_);
    if (failure_) return make_error("workers_failed", *failure_);
    steps_.push_back(&step);
  }
  wake();
  return ok_status();
}

Result<bool> WorkerGroupExecutor::collect(ModelRunnerOutput& out, int timeout_ms) {
  std::unique_lock lock(mu_);
  auto has_news = [&] { return !ready_.empty() || failure_.has_value(); };
  if (timeout_ms < 0) {
    cv_.wait(lock, has_news);
  } else if (timeout_ms > 0) {
    cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), has_news);
  }
  if (ready_.empty()) {
    if (failure_) return make_error("workers_failed", *failure_);
    return false;
  }
  std::swap(out, ready_.front().output);
  const int64_t queued_ns = ready_.front().queued_ns;
  spare_.push_back(std::move(ready_.front().output));
  ready_.pop_front();
  lock.unlock();
  if (trace_) {  // the hop from this executor's thread to the engine's
    TraceRecord rec;
    rec.type = "ModelRunnerOutput";
    rec.from = name_ + ".executor";
    rec.to = name_;
    rec.step_id = out.step_id;
    rec.send_time_ns = queued_ns;
    rec.recv_time_ns = wall_time_ns();
    trace_(std::move(rec));
  }
  return true;
}

std::optional<std::string> WorkerGroupExecutor::failure() {
  std::lock_guard lock(mu_);
  return failure_;
}

void WorkerGroupExecutor::shutdown(double grace_s) {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    stop_grace_s_ = grace_s;
  }
  wake();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  cv_.notify_all();
}

void WorkerGroupExecutor::fail(const std::string& error) {
  logger("executor")->error("{}", error);
  if (group_) group_->kill_all();
  group_.reset();
  {
    std::lock_guard lock(mu_);
    if (!failure_) failure_ = error;
    steps_.clear();
  }
  announce();
}

void WorkerGroupExecutor::run() {
  WorkerEvent ev;
  while (true) {
    uint64_t counter = 0;
    (void)!::read(wake_fd_, &counter, sizeof(counter));
    bool stop = false;
    double grace_s = 0;
    std::optional<LoadModel> start;
    std::optional<InitKVCache> init;
    const SchedulerOutput* step = nullptr;
    {
      std::lock_guard lock(mu_);
      stop = stop_;
      grace_s = stop_grace_s_;
      std::swap(start, start_request_);
      std::swap(init, init_request_);
      if (group_ && group_->num_steps_in_flight() < WorkerGroup::kMaxStepsInFlight && !steps_.empty()) {
        step = steps_.front();
        steps_.pop_front();
      }
    }
    if (stop) {
      if (group_) group_->shutdown(grace_s);
      group_.reset();
      {
        std::lock_guard lock(mu_);
        if (!failure_) failure_ = name_ + ": shut down";
        if (start) start_result_ = make_error("shut_down", name_ + ": shut down while starting");
        if (init) init_result_ = make_error("shut_down", name_ + ": shut down while starting");
      }
      announce();
      return;
    }
    if (start) {
      group_ = std::make_unique<WorkerGroup>(context_, options_, trace_);
      auto facts = group_->start(*start);
      if (!facts) group_.reset();
      {
        std::lock_guard lock(mu_);
        if (!facts) failure_ = facts.error().message;
        start_result_ = std::move(facts);
      }
      cv_.notify_all();
      continue;
    }
    if (init && group_) {
      auto done = group_->init_kv_cache(*init);
      if (!done) group_.reset();
      {
        std::lock_guard lock(mu_);
        if (!done) failure_ = done.error().message;
        init_result_ = std::move(done);
      }
      cv_.notify_all();
      continue;
    }
    if (!group_) {  // not started, or failed: wait for a command
      pollfd p{wake_fd_, POLLIN, 0};
      ::poll(&p, 1, 100);
      continue;
    }
    if (step) {
      if (auto sent = group_->submit_step(*step); !sent) {
        fail(sent.error().message);
        continue;
      }
      wake();  // look at the queue again before sleeping: a second step may be waiting
    }
    // WorkerGroup::poll watches the ROUTER, the pidfds and the step deadline; the
    // eventfd is passed as an extra fd so a new step or a command interrupts it.
    group_->poll(50, ev, wake_fd_);
    if (ev.kind == WorkerEvent::Kind::kStepOutput) {
      {
        std::lock_guard lock(mu_);
        Ready& r = ready_.emplace_back();
        if (!spare_.empty()) {
          r.output = std::move(spare_.back());
          spare_.pop_back();
        }
        std::swap(r.output, ev.output);
        r.queued_ns = wall_time_ns();
      }
      announce();
    } else if (ev.kind == WorkerEvent::Kind::kFailure) {
      fail(ev.error);
    }
  }
}

}  // namespace vela

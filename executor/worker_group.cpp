#include "executor/worker_group.h"

#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>

#include "common/clock.h"
#include "common/logging.h"
#include "transport/zmq_io.h"

namespace vela {

namespace {

// A step this late gets its workers checked for being stopped (then every half of it).
constexpr int64_t kStoppedCheckAfterNs = 1'000'000'000;

int64_t now_ns() { return SteadyClock().now_ns(); }
// How long a rank's error waits for a peer's death to show (its likely cause).
constexpr int kDeathGraceMs = 300;
int64_t seconds_to_ns(double s) { return static_cast<int64_t>(s * 1e9); }
std::string identity_of(int32_t rank) { return "w" + std::to_string(rank); }

}  // namespace

WorkerGroup::WorkerGroup(zmq::context_t& context, WorkerGroupOptions options, TraceFn trace)
    : context_(context), options_(std::move(options)), trace_(std::move(trace)),
      router_(context_, zmq::socket_type::router), name_("engine" + std::to_string(options_.replica)) {
  transport::configure_socket(router_);
  router_.set(zmq::sockopt::router_mandatory, 1);
  if (options_.worker_binary.empty()) options_.worker_binary = default_worker_binary();
}

WorkerGroup::~WorkerGroup() {
  kill_all();
  transport::remove_ipc_file(endpoint_);
}

std::vector<pid_t> WorkerGroup::pids() const {
  std::vector<pid_t> out;
  for (const auto& w : workers_) out.push_back(w.pid());
  return out;
}

Status WorkerGroup::send_to(int32_t rank, const msg::Frames& frames) {
  if (transport::send_frames(router_, frames, identities_[size_t(rank)])) return ok_status();
  // A refused send usually means the worker is gone: its socket closes as it exits,
  // a moment before the process can be reaped. Wait briefly on its pidfd so the
  // error names the real cause (the signal or exit code), not the symptom.
  const WorkerProcess& w = workers_[size_t(rank)];
  if (w.pidfd() >= 0) {
    pollfd p{w.pidfd(), POLLIN, 0};
    ::poll(&p, 1, 500);
  }
  if (auto dead = check_deaths(); !dead.empty()) return make_error("worker_died", dead);
  return make_error("send_failed", name_ + ": could not send to worker rank " + std::to_string(rank) +
                                       " (disconnected or its queue is full)");
}

std::string WorkerGroup::check_deaths() {
  for (size_t r = 0; r < workers_.size(); ++r) {
    if (auto status = workers_[r].try_reap())
      return name_ + ": worker rank " + std::to_string(r) + " (pid " + std::to_string(workers_[r].pid()) +
             ") " + status->describe();
  }
  return {};
}

std::string WorkerGroup::wait_for_death(int grace_ms) {
  const int64_t deadline = now_ns() + int64_t{grace_ms} * 1000000;
  while (true) {
    if (auto dead = check_deaths(); !dead.empty()) return dead;
    const int64_t left_ms = (deadline - now_ns()) / 1000000;
    if (left_ms <= 0) return {};
    std::vector<pollfd> fds;
    for (auto& w : workers_)
      if (w.pidfd() >= 0) fds.push_back({w.pidfd(), POLLIN, 0});
    if (fds.empty()) {
      ::poll(nullptr, 0, static_cast<int>(std::min<int64_t>(left_ms, 10)));
    } else {
      ::poll(fds.data(), fds.size(), static_cast<int>(left_ms));
    }
  }
}

std::string WorkerGroup::stopped_ranks() {
  std::string stopped;
  for (size_t r = 0; r < workers_.size(); ++r) {
    // /proc/PID/stat: "pid (comm) state ..."; comm may hold spaces, so look after the last ')'.
    std::ifstream in("/proc/" + std::to_string(workers_[r].pid()) + "/stat");
    std::string line;
    std::getline(in, line);
    const auto paren = line.rfind(')');
    const char state = paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : '?';
    if (state == 'T' || state == 't')
      stopped += (stopped.empty() ? "" : ", ") + std::to_string(r) + " (pid " + std::to_string(workers_[r].pid()) + ")";
  }
  return stopped.empty() ? "" : "worker rank(s) " + stopped + " stopped (SIGSTOP or a debugger)";
}

std::string WorkerGroup::check_stopped() {
  const std::string stopped = stopped_ranks();
  return stopped.empty() ? "" : name_ + ": " + stopped + "; the other ranks wait on it";
}

std::string WorkerGroup::describe_stuck_ranks() {
  if (std::string stopped = stopped_ranks(); !stopped.empty()) return stopped;
  if (workers_.size() == 1) return "worker rank 0 (pid " + std::to_string(workers_[0].pid()) + ") stopped making progress";
  return "none of ranks 0.." + std::to_string(workers_.size() - 1) +
         " is stopped; one of them hangs (rank 0 answers for all: a rank stuck in a kernel or a collective holds it)";
}

Result<WorkerGroup::Incoming> WorkerGroup::receive(int64_t deadline_ns, const char* waiting_for) {
  while (true) {
    if (auto dead = check_deaths(); !dead.empty())
      return make_error("worker_died", dead + " while waiting for " + waiting_for);
    VELA_TRY_ASSIGN(const auto from, outputs_->receive(in_frames_, &in_identity_));
    if (from != transport::StepReceiver::From::kNothing) {
      const int64_t recv_wall = wall_time_ns();
      auto decoded = msg::decode(in_frames_);
      if (!decoded) {
        logger("executor")->error("{}: dropping undecodable frame from {}: {}", name_, in_identity_,
                                  decoded.error().message);
        continue;
      }
      Incoming in{in_identity_.size() > 1 && in_identity_[0] == 'w' ? std::atoi(in_identity_.c_str() + 1) : -1,
                  std::move(decoded.value())};
      if (trace_)
        trace_(received_record(in.decoded.envelope, name_ + ".worker" + std::to_string(in.rank), name_, in_frames_,
                               recv_wall));
      return in;
    }
    const int64_t left = deadline_ns - now_ns();
    if (left <= 0)
      return make_error("timeout", name_ + ": no " + std::string(waiting_for) + " within the deadline");
    poll_items_.clear();
    for (auto& w : workers_)
      if (w.pidfd() >= 0) poll_items_.push_back({nullptr, w.pidfd(), ZMQ_POLLIN, 0});
    // Without pidfds, deaths are checked every 50 ms.
    outputs_->wait(0, static_cast<int>(std::clamp<int64_t>(left / 1000000 + 1, 1, 50)), poll_items_);
  }
}

Result<WorkerFacts> WorkerGroup::start(const LoadModel& base_load) {
  auto log = logger("executor");
  const int32_t n = options_.world_size;
  if (n < 1) return make_error("bad_world_size", "tensor_parallel_size must be >= 1");
  endpoint_ = transport::make_endpoint(options_.transport, options_.host, name_);
  if (options_.transport == "tcp") {
    auto server = transport::new_curve_keypair();
    auto worker = transport::new_curve_keypair();
    if (!server || !worker) return server ? worker.error() : server.error();
    VELA_TRY_ASSIGN(auth_, transport::CurveAuthenticator::start(context_, {worker->public_key}));
    transport::make_curve_server(router_, *server);
    worker_env_ = transport::worker_curve_env(server->public_key, *worker);
  }
  if (auto bound = transport::bind_endpoint(router_, endpoint_); !bound)
    return make_error(bound.error().code, name_ + ": " + bound.error().message);
  endpoint_ = transport::last_endpoint(router_);
  if (options_.step_channel == "shm") {
    VELA_TRY_ASSIGN(channel_, transport::StepChannel::create(n, options_.shm_slots, options_.shm_slot_bytes));
  } else if (options_.step_channel != "socket") {
    return make_error("bad_step_channel", "step_channel must be shm or socket, got '" + options_.step_channel + "'");
  }
  steps_.emplace(channel_.get(), [this](const msg::Frames& frames) -> Status {
    for (int32_t r = 0; r < static_cast<int32_t>(workers_.size()); ++r) VELA_TRY(send_to(r, frames));
    return ok_status();
  });
  outputs_.emplace(router_, channel_.get(), msg::MsgType::kModelRunnerOutput);
  for (int32_t r = 0; r < n; ++r) {
    WorkerSpec spec;
    spec.rank = r;
    spec.world_size = n;
    spec.replica = options_.replica;
    spec.device = r < static_cast<int32_t>(options_.devices.size()) ? options_.devices[r] : "cpu";
    spec.engine_endpoint = endpoint_;
    spec.runner = options_.runner;
    spec.log_level = options_.log_level;
    spec.trace_path = options_.trace_path;
    spec.env = worker_env_;
    if (channel_) {
      spec.step_channel = channel_->worker_spec(r);
      spec.inherit_fds = channel_->worker_fds(r);
      spec.step_spin_ns = options_.step_spin_ns;
    }
    auto proc = spawn_worker(options_.worker_binary, spec);
    if (!proc) {
      kill_all();
      return proc.error();
    }
    log->debug("{}: spawned worker rank {} pid {} on {}", name_, r, proc->pid(), spec.device);
    workers_.push_back(std::move(proc.value()));
    identities_.push_back(identity_of(r));
  }
  all_pidfds_ = std::all_of(workers_.begin(), workers_.end(), [](const WorkerProcess& w) { return w.pidfd() >= 0; });
  auto fail = [&](Error e) -> Result<WorkerFacts> {
    kill_all();
    return e;
  };
  const int64_t deadline = now_ns() + seconds_to_ns(options_.startup_timeout_s);

  // 1. Hello from every rank.
  WorkerFacts info;
  info.hellos.resize(n);
  std::vector<bool> seen(n, false);
  for (int32_t got = 0; got < n;) {
    auto in = receive(deadline, "Hello from every worker");
    if (!in) return fail(in.error());
    auto* hello = std::get_if<Hello>(&in->decoded.message);
    if (!hello || in->rank < 0 || in->rank >= n || hello->rank != in->rank || seen[in->rank]) {
      if (auto* err = std::get_if<ErrorMessage>(&in->decoded.message))
        return fail(make_error("worker_error", name_ + ": rank " + std::to_string(err->rank) + ": " + err->message));
      log->warn("{}: unexpected {} during startup", name_, msg::msg_type_name(in->decoded.envelope.type));
      continue;
    }
    seen[in->rank] = true;
    info.hellos[in->rank] = *hello;
    ++got;
  }
  if (n > 1 && info.hellos[0].dist_init_address.empty())
    return fail(make_error("no_bootstrap", name_ + ": rank 0 sent no collective bootstrap address"));

  // 2. LoadModel to every rank at once (tensor-parallel ranks rendezvous while loading).
  for (int32_t r = 0; r < n; ++r) {
    LoadModel load = base_load;
    load.tensor_parallel_size = n;
    load.tp_rank = r;
    load.dist_init_address = info.hellos[0].dist_init_address;
    auto sent = send_to(r, msg::encode(load, next_control_id_++));
    if (!sent) return fail(sent.error());
  }
  std::vector<ProfileResult>& profiles = info.profiles;
  profiles.resize(n);
  std::fill(seen.begin(), seen.end(), false);
  for (int32_t got = 0; got < n;) {
    auto in = receive(deadline, "ProfileResult from every worker");
    if (!in) return fail(in.error());
    if (auto* err = std::get_if<ErrorMessage>(&in->decoded.message))
      return fail(make_error("load_failed", name_ + ": rank " + std::to_string(err->rank) +
                                                " failed to load: " + err->message));
    auto* prof = std::get_if<ProfileResult>(&in->decoded.message);
    if (!prof || in->rank < 0 || in->rank >= n || seen[in->rank]) continue;
    seen[in->rank] = true;
    profiles[in->rank] = *prof;
    ++got;
  }

  log->info("{}: {} worker(s) loaded", name_, n);
  return info;
}

Status WorkerGroup::init_kv_cache(const InitKVCache& init) {
  auto fail = [&](Error e) -> Status {
    kill_all();
    return e;
  };
  const int32_t n = static_cast<int32_t>(workers_.size());
  const int64_t deadline = now_ns() + seconds_to_ns(options_.startup_timeout_s);
  const uint64_t init_id = next_control_id_++;
  auto frames = msg::encode(init, init_id);
  for (int32_t r = 0; r < n; ++r)
    if (auto sent = send_to(r, frames); !sent) return fail(sent.error());
  std::vector<bool> seen(n, false);
  for (int32_t got = 0; got < n;) {
    auto in = receive(deadline, "InitKVCache acknowledgement from every worker");
    if (!in) return fail(in.error());
    if (auto* err = std::get_if<ErrorMessage>(&in->decoded.message))
      return fail(make_error("init_kv_failed", name_ + ": rank " + std::to_string(err->rank) + ": " + err->message));
    auto* ack = std::get_if<Ack>(&in->decoded.message);
    if (!ack || ack->of_id != init_id || in->rank < 0 || in->rank >= n || seen[in->rank]) continue;
    seen[in->rank] = true;
    ++got;
  }
  // Block 0 is the null block (engine_core/agree_num_blocks): requests get the rest,
  // which is the count admission refusals quote.
  logger("executor")->info("{}: {} worker(s) ready, {} KV blocks ({} usable; block 0 is the null block)",
                            name_, n, init.num_blocks, init.num_blocks - 1);
  return ok_status();
}

Status WorkerGroup::submit_step(const SchedulerOutput& step) {
  if (!steps_) return make_error("not_started", name_ + ": a step before start()");
  if (in_flight_.size() >= kMaxStepsInFlight)
    return make_error("steps_in_flight", name_ + ": " + std::to_string(in_flight_.size()) + " steps still running");
  const int64_t send_wall = wall_time_ns();
  msg::encode_into(step, step.step_id, send_wall, step_frames_);
  const int64_t deadline = now_ns() + seconds_to_ns(options_.step_timeout_s);
  if (auto sent = steps_->send(step_frames_, deadline); !sent) {
    if (auto dead = check_deaths(); !dead.empty()) return make_error("worker_died", dead);
    return make_error(sent.error().code, name_ + ": step " + std::to_string(step.step_id) + ": " + sent.error().message);
  }
  in_flight_.push_back({step.step_id, deadline, now_ns()});
  return ok_status();
}

WorkerEvent WorkerGroup::poll(int timeout_ms, int wake_fd) {
  WorkerEvent ev;
  poll(timeout_ms, ev, wake_fd);
  return ev;
}

bool WorkerGroup::accept(const char* rank, WorkerEvent& ev) {
  if (in_frames_.empty()) return false;
  const int64_t recv_wall = wall_time_ns();
  auto env = msg::decode_into(in_frames_, incoming_);
  if (!env) {
    logger("executor")->error("{}: dropping undecodable frame from worker {}: {}", name_, rank, env.error().message);
    return false;
  }
  if (trace_) trace_(received_record(*env, name_ + ".worker" + rank, name_, in_frames_, recv_wall));
  if (auto* out = std::get_if<ModelRunnerOutput>(&incoming_)) {
    if (in_flight_.empty() || out->step_id != in_flight_.front().step_id) {
      logger("executor")->warn("{}: output for step {} that is not the oldest in flight", name_, out->step_id);
      return false;
    }
    in_flight_.pop_front();
    if (!in_flight_.empty()) {  // the next step runs from now: its deadline and stop check count from here
      const int64_t now = now_ns();
      InFlight& next = in_flight_.front();
      next.deadline_ns = std::max(next.deadline_ns, now + seconds_to_ns(options_.step_timeout_s));
      next.submit_ns = std::max(next.submit_ns, now);
    }
    ev.kind = WorkerEvent::Kind::kStepOutput;
    // Swap, not move: incoming_ keeps the caller's previous buffers for the next decode.
    std::swap(ev.output, *out);
    return true;
  }
  if (auto* err = std::get_if<ErrorMessage>(&incoming_)) {
    ev.kind = WorkerEvent::Kind::kFailure;
    ev.error = name_ + ": worker rank " + std::to_string(err->rank) + " failed: [" + err->code + "] " + err->message;
    // kill -9 of rank 0 reaches rank 1 first as a failed collective read: a peer's
    // death within a moment is the cause, and is reported as such.
    if (auto dead = wait_for_death(kDeathGraceMs); !dead.empty())
      ev.error = dead + (in_flight_.empty() ? "" : " during step " + std::to_string(in_flight_.front().step_id)) +
                 " (then rank " + std::to_string(err->rank) + " reported: " + err->message + ")";
    return true;
  }
  return false;
}

void WorkerGroup::poll(int timeout_ms, WorkerEvent& ev, int wake_fd) {
  ev.kind = WorkerEvent::Kind::kNone;
  ev.error.clear();
  if (!outputs_) return;  // not started: nothing to wait for
  const int64_t deadline = now_ns() + int64_t{timeout_ms} * 1000000;
  // A death shows as a readable pidfd, so deaths are looked for at entry and after a
  // poll that saw one (each look is a waitpid per worker); without pidfds, always.
  bool look_for_deaths = true;
  while (true) {
    if (look_for_deaths || !all_pidfds_) {
      if (auto dead = check_deaths(); !dead.empty()) {
        ev.kind = WorkerEvent::Kind::kFailure;
        ev.error = dead + (in_flight_.empty() ? "" : " during step " + std::to_string(in_flight_.front().step_id));
        return;
      }
    }
    while (true) {  // rank 0's outputs in order, from the ring or the socket; errors from any rank
      auto from = outputs_->receive(in_frames_, &in_identity_);
      if (!from) {
        ev.kind = WorkerEvent::Kind::kFailure;
        ev.error = name_ + ": " + from.error().message;
        return;
      }
      if (*from == transport::StepReceiver::From::kNothing) break;
      const bool ring = *from == transport::StepReceiver::From::kRing;
      if (accept(ring ? "0" : in_identity_.c_str() + std::min<size_t>(1, in_identity_.size()), ev)) return;
    }
    const int64_t now = now_ns();
    if (!in_flight_.empty() && now - in_flight_.front().submit_ns > kStoppedCheckAfterNs &&
        now - last_stop_check_ns_ > kStoppedCheckAfterNs / 2) {
      last_stop_check_ns_ = now;
      if (auto stopped = check_stopped(); !stopped.empty()) {
        ev.kind = WorkerEvent::Kind::kFailure;
        ev.error = stopped + " during step " + std::to_string(in_flight_.front().step_id);
        return;
      }
    }
    if (!in_flight_.empty() && now >= in_flight_.front().deadline_ns) {
      ev.kind = WorkerEvent::Kind::kFailure;
      char timeout[32];
      std::snprintf(timeout, sizeof timeout, "%g", options_.step_timeout_s);
      ev.error = name_ + ": step " + std::to_string(in_flight_.front().step_id) + " produced no output within " +
                 timeout + " s (parallel.step_timeout_s): " + describe_stuck_ranks();
      return;
    }
    if (now >= deadline) return;
    int64_t until = deadline;
    if (!in_flight_.empty()) until = std::min(until, in_flight_.front().deadline_ns);
    // Beside the ROUTER and the channel: the caller's wake fd, one pidfd per worker.
    poll_items_.clear();
    if (wake_fd >= 0) poll_items_.push_back({nullptr, wake_fd, ZMQ_POLLIN, 0});
    const size_t first_pidfd = poll_items_.size();
    for (auto& w : workers_)
      if (w.pidfd() >= 0) poll_items_.push_back({nullptr, w.pidfd(), ZMQ_POLLIN, 0});
    // Blocks on the sockets themselves; the cap only bounds death checks without pidfds.
    const int64_t cap_ms = !all_pidfds_ ? 50 : !in_flight_.empty() ? kStoppedCheckAfterNs / 2000000 : 1000;
    const long wait_ms = std::clamp<int64_t>((until - now) / 1000000 + 1, 0, cap_ms);
    // The answer to a step in flight is usually microseconds away: spin for it first.
    outputs_->wait(in_flight_.empty() ? 0 : options_.step_spin_ns, static_cast<int>(wait_ms), poll_items_);
    if (wake_fd >= 0 && (poll_items_[0].revents & ZMQ_POLLIN)) return;
    look_for_deaths = false;
    for (size_t i = first_pidfd; i < poll_items_.size(); ++i)
      if (poll_items_[i].revents & ZMQ_POLLIN) look_for_deaths = true;
  }
}

void WorkerGroup::shutdown(double grace_s) {
  auto frames = msg::encode(Shutdown{"engine shutting down"}, next_control_id_++);
  for (int32_t r = 0; r < static_cast<int32_t>(workers_.size()); ++r) (void)send_to(r, frames);
  for (auto& w : workers_) w.stop(grace_s);
  in_flight_.clear();
}

void WorkerGroup::kill_all() {
  for (auto& w : workers_) w.signal(SIGKILL);
  for (auto& w : workers_) w.stop(5);
  in_flight_.clear();
}

}  // namespace vela

// EngineCoreActor: the event-driven driver of one replica's EngineCore (the
// Scheduler and KV-cache manager, and the WorkerGroupExecutor that owns the
// replica's workers). Every event (a request, an abort, an output or failure
// announced by the executor's thread) ends in pump(): collect and apply the outputs
// that are in, then schedule and submit while there is room in flight. The path out
// (submit) and the path back (collect) both go through the EngineCore.
#include <algorithm>
#include <chrono>
#include <thread>
#include <deque>
#include <unordered_set>

#include "actors/engine_actors.h"
#include "common/clock.h"
#include "common/logging.h"
#include "executor/worker_group_executor.h"
#include "metrics/serve_metrics.h"

namespace vela::actors {
namespace {

struct EngineCoreState {
  EngineCoreSettings settings;
  frontend_actor frontend;
  std::optional<trace_actor> tracer;
  ServerStatus* status = nullptr;
  std::unique_ptr<WorkerGroupExecutor> executor;
  std::unique_ptr<EngineCore> core;         // null until started, and after a failure; borrows executor
  std::thread starter;                      // runs EngineCore::create (it waits on the workers)
  uint64_t generation = 0;                  // of the executor: events of an older one are stale
  std::unordered_set<std::string> live;     // ids accepted and not yet finished
  EngineCoreOutputs outs;                   // reused for each collected step
  std::string name;
  int64_t last_output_ns = 0;               // a step output (or the first submit after idle); 0 = idle
  // Queue-time metric: requests not scheduled yet, in arrival order (id, arrival in s
  // since the epoch), looked at once per newly planned step.
  std::deque<std::pair<std::string, double>> not_yet_scheduled;
  uint64_t steps_seen = 0;

  // The core borrows the executor; the starter may still be waiting on it.
  void release() {
    core.reset();
    if (starter.joinable()) {
      if (executor) executor->shutdown(0);
      starter.join();
    }
  }
  ~EngineCoreState() {
    release();
    executor.reset();
  }
};

using Self = engine_core_actor::stateful_pointer<EngineCoreState>;

void trace(Self self, const char* type, const char* from, const char* to, uint64_t step, const std::string& rid,
           int64_t sent_ns) {
  auto& st = self->state;
  if (!st.tracer) return;
  self->send(*st.tracer, TraceRecord{type, from, to, 0, step, rid, sent_ns, wall_time_ns()});
}

void send_outputs(Self self, EngineCoreOutputs& outs) {
  if (outs.outputs.empty()) return;
  outs.engine_index = self->state.settings.engine_index;
  for (const auto& o : outs.outputs)
    if (o.finish_reason != FinishReason::kNone) self->state.live.erase(o.request_id);
  self->send(self->state.frontend, OutputsMsg{std::move(outs), wall_time_ns()});
  outs.outputs.clear();
}

void send_outputs(Self self, std::vector<EngineCoreOutput> outputs) {
  EngineCoreOutputs outs;
  outs.outputs = std::move(outputs);
  send_outputs(self, outs);
}

// Spawns a fresh executor (and with it the workers) and runs the startup on the
// starter thread; CoreStartedMsg brings the EngineCore back.
void begin_start(Self self) {
  auto& st = self->state;
  const uint64_t generation = ++st.generation;
  auto options = st.settings.workers;
  options.replica = st.settings.engine_index;
  options.trace_path = st.settings.trace_path;
  TraceFn trace_fn;
  if (st.tracer) trace_fn = [t = *st.tracer](TraceRecord r) { caf::anon_send(t, std::move(r)); };
  st.executor = std::make_unique<WorkerGroupExecutor>(std::move(options), std::move(trace_fn));
  auto handle = caf::actor_cast<engine_core_actor>(self);
  st.executor->set_notify([handle, generation] { caf::anon_send(handle, ExecutorEventMsg{generation}); });
  st.starter = std::thread([handle, generation, core_options = st.settings.core, executor = st.executor.get()] {
    auto result = std::make_shared<Result<std::unique_ptr<EngineCore>>>(EngineCore::create(core_options, *executor));
    caf::anon_send(handle, CoreStartedMsg{generation, std::move(result)});
  });
}

// Every live request ends with an error; the core is dropped with its KV state.
void fail_all(Self self, const std::string& error) {
  auto& st = self->state;
  std::vector<EngineCoreOutput> outs;
  for (const auto& id : st.live) {
    EngineCoreOutput o;
    o.request_id = id;
    o.finish_reason = FinishReason::kError;
    o.error = error;
    outs.push_back(std::move(o));
  }
  st.live.clear();
  send_outputs(self, std::move(outs));
}

void on_failure(Self self, const std::string& error, int exit_code) {
  auto& st = self->state;
  const bool was_running = st.core != nullptr;
  logger("engine_core")->error("{}: {}", st.name, error);
  fail_all(self, error);
  st.release();
  st.executor.reset();  // the workers are gone already; joins the executor's thread
  const bool restart = was_running && st.settings.restart_workers;
  self->send(st.frontend, EngineStateMsg{st.settings.engine_index, false, {}, error, restart});
  if (was_running) st.status->engines_ready.fetch_sub(1);
  if (restart) {
    logger("engine_core")->warn("{}: restarting its workers", st.name);
    begin_start(self);
  } else {
    logger("engine_core")->error("{} is dead (parallel.restart_workers is off)", st.name);
    st.status->replica_dead(exit_code, error.rfind(st.name, 0) == 0 ? error : st.name + ": " + error);
  }
}

// Queue time: a request leaves the queue when a step first schedules it. Under fcfs
// the never-scheduled requests leave in arrival order, so the scan stops at the first
// one still waiting (O(newly scheduled) per step); under priority it walks them all.
void observe_queue_times(EngineCoreState& st) {
  const Scheduler& scheduler = st.core->scheduler();
  const bool in_order = scheduler.limits().policy == "fcfs";
  const double now_s = static_cast<double>(wall_time_ns()) * 1e-9;
  for (auto it = st.not_yet_scheduled.begin(); it != st.not_yet_scheduled.end();) {
    const Request* r = scheduler.find_request(it->first);
    if (r && r->status() == RequestStatus::kWaiting) {
      if (in_order) break;
      ++it;
      continue;
    }
    if (r) st.settings.metrics->queue_time(std::max(0.0, now_s - it->second));
    it = st.not_yet_scheduled.erase(it);  // scheduled (or already gone)
  }
}

// Applies every output that is in, then fills the steps in flight.
void pump(Self self) {
  auto& st = self->state;
  if (!st.core) return;
  while (true) {
    auto got = st.core->collect(st.outs, 0);
    if (!got) return on_failure(self, got.error().message, 3);
    if (!*got) break;
    if (st.settings.metrics && st.last_output_ns > 0) {
      const int64_t now = wall_time_ns();
      st.settings.metrics->step_interval(static_cast<double>(now - st.last_output_ns) * 1e-9);
      st.last_output_ns = now;
    }
    send_outputs(self, st.outs);
  }
  if (auto submitted = st.core->submit_steps(); !submitted) return on_failure(self, submitted.error().message, 3);
  if (st.settings.metrics) {
    // Step intervals are measured while steps follow each other; an idle gap is not a step.
    if (st.core->num_steps_in_flight() == 0) st.last_output_ns = 0;
    else if (st.last_output_ns == 0) st.last_output_ns = wall_time_ns();
    const SchedulerStats stats = st.core->scheduler().stats();
    st.settings.metrics->scheduler_stats(static_cast<size_t>(st.settings.engine_index), stats);
    if (stats.num_steps != st.steps_seen) {
      st.steps_seen = stats.num_steps;
      observe_queue_times(st);
    }
  }
}

engine_core_actor::behavior_type engine_core_fn(Self self, EngineCoreSettings settings, frontend_actor frontend,
                                                std::optional<trace_actor> tracer, ServerStatus* status) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.frontend = std::move(frontend);
  st.tracer = std::move(tracer);
  st.status = status;
  st.name = "engine" + std::to_string(st.settings.engine_index);
  begin_start(self);
  return {
      [=](AddRequestMsg& m) {
        auto& st = self->state;
        if (st.tracer) trace(self, "AddRequest", "frontend", st.name.c_str(), 0, m.request.request_id, m.sent_ns);
        if (!st.core) {
          send_outputs(self, {{m.request.request_id, {}, FinishReason::kError, {}, {}, 0,
                               st.name + " is not running (its workers failed)"}});
          return;
        }
        const std::string id = m.request.request_id;
        const double arrival_s = m.request.arrival_time;
        if (auto rejected = st.core->add_request(std::move(m.request))) {
          send_outputs(self, {std::move(*rejected)});
          return;
        }
        st.live.insert(id);
        if (st.settings.metrics) st.not_yet_scheduled.emplace_back(id, arrival_s);
        pump(self);
      },
      [=](AbortMsg& m) {
        auto& st = self->state;
        if (st.tracer) trace(self, "Abort", "frontend", st.name.c_str(), 0, m.request_ids.empty() ? "" : m.request_ids[0], m.sent_ns);
        if (!st.core) return;
        send_outputs(self, st.core->abort_requests(m.request_ids));
        pump(self);  // the finished ids must reach the workers
      },
      [=](ExecutorEventMsg& m) {
        auto& st = self->state;
        if (m.generation != st.generation) return;
        // A worker that dies while no step is in flight has no output to fail: the
        // executor's failure is taken as it is announced, so health says so at once.
        if (st.core && st.core->num_steps_in_flight() == 0 && st.executor)
          if (auto failed = st.executor->failure()) return on_failure(self, *failed, 3);
        pump(self);
      },
      [=](CoreStartedMsg& m) {
        auto& st = self->state;
        if (m.generation != st.generation) return;
        if (st.starter.joinable()) st.starter.join();
        if (!*m.result) {
          // Refused limits are a configuration error (exit 2); anything else, the workers' (3).
          const Error& e = m.result->error();
          return on_failure(self, e.message, e.code == "bad_limits" ? 2 : 3);
        }
        st.core = std::move(m.result->value());
        self->send(st.frontend, EngineStateMsg{st.settings.engine_index, true, st.core->facts(), {}});
        st.status->engines_ready.fetch_add(1);
        pump(self);
      },
      [=](StopMsg& m) {
        auto& st = self->state;
        // Steps already handed to the workers finish first (for at most 2 s of the
        // grace): no worker is stopped mid-step, and every step ends with its output.
        // With async scheduling the last one is often a step that only tells the
        // workers which requests finished. Its outputs go nowhere: by now the
        // frontend has ended every request.
        if (st.core) {
          const auto deadline = std::chrono::steady_clock::now() +
                                std::chrono::duration<double>(std::min(m.grace_s, 2.0));
          while (st.core->num_steps_in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
            auto got = st.core->collect(st.outs, 50);
            if (!got) break;
          }
        }
        st.release();
        // Blocks this (detached) actor's own thread for at most grace_s.
        if (st.executor) st.executor->shutdown(m.grace_s);
        st.executor.reset();
        self->quit();
      },
  };
}

}  // namespace

engine_core_actor spawn_engine_core(caf::actor_system& system, EngineCoreSettings settings, frontend_actor frontend,
                                    std::optional<trace_actor> tracer, ServerStatus* status) {
  return system.spawn<caf::detached>(engine_core_fn, std::move(settings), std::move(frontend), std::move(tracer),
                                     status);
}

}  // namespace vela::actors

// EngineCoreActor: owns the Scheduler (and through it the KV-cache manager) of one
// replica and runs the step loop: schedule -> ExecutorActor -> update_from_output ->
// outputs to the frontend -> schedule again, one step in flight at a time.
#include <unordered_set>

#include "actors/engine_actors.h"
#include "actors/executor_actor.h"
#include "common/clock.h"
#include "common/logging.h"

namespace vela::actors {
namespace {

struct EngineCoreState {
  EngineCoreSettings settings;
  frontend_actor frontend;
  executor_actor executor;
  std::optional<trace_actor> tracer;
  ServerStatus* status = nullptr;
  std::unique_ptr<Scheduler> scheduler;     // null until the workers are ready
  bool step_in_flight = false;
  SchedulerOutput current;                  // the step in flight
  std::unordered_set<std::string> live;     // ids accepted and not yet finished
  std::string name;
};

using Self = engine_core_actor::stateful_pointer<EngineCoreState>;

void trace(Self self, const char* type, const char* from, const char* to, uint64_t step, const std::string& rid,
           int64_t sent_ns) {
  auto& st = self->state;
  if (!st.tracer) return;
  TraceRecord r;
  r.type = type;
  r.from = from;
  r.to = to;
  r.step_id = step;
  r.request_id = rid;
  r.send_time_ns = sent_ns;
  r.recv_time_ns = wall_time_ns();
  self->send(*st.tracer, std::move(r));
}

void send_outputs(Self self, EngineCoreOutputs outs) {
  if (outs.outputs.empty()) return;
  outs.engine_index = self->state.settings.engine_index;
  for (const auto& o : outs.outputs)
    if (o.finish_reason != FinishReason::kNone) self->state.live.erase(o.request_id);
  self->send(self->state.frontend, OutputsMsg{std::move(outs), wall_time_ns()});
}

void maybe_step(Self self) {
  auto& st = self->state;
  if (st.step_in_flight || !st.scheduler) return;
  if (!st.scheduler->has_unfinished_requests() && !st.scheduler->has_finished_requests_to_report()) return;
  st.scheduler->schedule(st.current);
  if (st.current.total_num_scheduled_tokens == 0 && st.current.finished_req_ids.empty() &&
      st.current.preempted_req_ids.empty())
    return;  // nothing fits now; the next finish or abort frees room
  st.step_in_flight = true;
  self->send(st.executor, StepMsg{st.current, wall_time_ns()});
}

// Every live request ends with an error; the scheduler is dropped with its KV state.
void fail_all(Self self, const std::string& error) {
  auto& st = self->state;
  EngineCoreOutputs outs;
  for (const auto& id : st.live) {
    EngineCoreOutput o;
    o.request_id = id;
    o.finish_reason = FinishReason::kError;
    o.error = error;
    outs.outputs.push_back(std::move(o));
  }
  st.live.clear();
  send_outputs(self, std::move(outs));
  st.scheduler.reset();
  st.step_in_flight = false;
}

engine_core_actor::behavior_type engine_core_fn(Self self, EngineCoreSettings settings, frontend_actor frontend,
                                                std::optional<trace_actor> tracer, ServerStatus* status) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.frontend = std::move(frontend);
  st.tracer = std::move(tracer);
  st.status = status;
  st.name = "engine" + std::to_string(st.settings.engine_index);
  auto options = st.settings.workers;
  options.replica = st.settings.engine_index;
  options.trace_path = st.settings.trace_path;
  st.executor = spawn_executor(self->system(), caf::actor_cast<engine_core_actor>(self), options, st.tracer);
  return {
      [=](AddRequestMsg& m) {
        auto& st = self->state;
        if (st.tracer) trace(self, "AddRequest", "frontend", st.name.c_str(), 0, m.request.request_id, m.sent_ns);
        if (!st.scheduler) {
          EngineCoreOutputs outs;
          outs.outputs.push_back({m.request.request_id, {}, FinishReason::kError, {}, {}, 0,
                                  st.name + " is not running (its workers failed)"});
          send_outputs(self, std::move(outs));
          return;
        }
        const std::string id = m.request.request_id;
        if (auto rejected = st.scheduler->add_request(std::move(m.request))) {
          EngineCoreOutputs outs;
          outs.outputs.push_back(std::move(*rejected));
          send_outputs(self, std::move(outs));
          return;
        }
        st.live.insert(id);
        maybe_step(self);
      },
      [=](AbortMsg& m) {
        auto& st = self->state;
        if (st.tracer) trace(self, "Abort", "frontend", st.name.c_str(), 0, m.request_ids.empty() ? "" : m.request_ids[0], m.sent_ns);
        if (!st.scheduler) return;
        EngineCoreOutputs outs;
        outs.outputs = st.scheduler->abort_requests(m.request_ids);
        send_outputs(self, std::move(outs));
        maybe_step(self);  // the finished ids must reach the workers
      },
      [=](StepResultMsg& m) {
        auto& st = self->state;
        if (st.tracer) trace(self, "ModelRunnerOutput", "executor", st.name.c_str(), m.output.step_id, "", m.sent_ns);
        if (!st.scheduler || !st.step_in_flight || m.output.step_id != st.current.step_id) return;
        st.step_in_flight = false;
        auto outs = st.scheduler->update_from_output(st.current, m.output);
        send_outputs(self, std::move(outs));
        maybe_step(self);
      },
      [=](WorkersReadyMsg& m) {
        auto& st = self->state;
        auto limits = st.settings.limits;
        limits.num_blocks = m.info.num_blocks;
        limits.block_size_tokens = m.info.block_size_tokens;
        try {
          st.scheduler = std::make_unique<Scheduler>(limits);
        } catch (const std::exception& e) {
          st.status->fail(2, st.name + ": " + e.what());
          return;
        }
        st.step_in_flight = false;
        self->send(st.frontend, EngineStateMsg{st.settings.engine_index, true, m.info, {}});
        st.status->engines_ready.fetch_add(1);
      },
      [=](WorkersFailedMsg& m) {
        auto& st = self->state;
        const bool was_running = st.scheduler != nullptr;
        logger("engine_core")->error("{}: {}", st.name, m.error);
        fail_all(self, m.error);
        self->send(st.frontend, EngineStateMsg{st.settings.engine_index, false, {}, m.error});
        if (was_running && st.settings.restart_workers) {
          st.status->engines_ready.fetch_sub(1);
          logger("engine_core")->warn("{}: restarting its workers", st.name);
          self->send(st.executor, RestartMsg{});
        } else {
          st.status->fail(3, st.name + " is unhealthy: " + m.error);
        }
      },
      [=](StopMsg& m) {
        self->send(self->state.executor, m);
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

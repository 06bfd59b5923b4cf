// ExecutorActor: the actor face of one replica's ExecutorThread. Steps arrive as
// messages and go to the thread; the thread's results come back to the engine core
// as messages (anon_send from the executor thread).
#include "actors/executor_actor.h"

#include "common/clock.h"

namespace vela::actors {
namespace {

struct ExecutorState {
  std::unique_ptr<ExecutorThread> thread;
};

executor_actor::behavior_type executor_fn(executor_actor::stateful_pointer<ExecutorState> self,
                                          engine_core_actor engine, WorkerGroupOptions options,
                                          std::optional<trace_actor> tracer) {
  TraceFn trace;
  if (tracer) trace = [t = *tracer](TraceRecord r) { caf::anon_send(t, std::move(r)); };
  ExecutorCallbacks callbacks;
  callbacks.on_ready = [engine](const WorkerGroupInfo& info) { caf::anon_send(engine, WorkersReadyMsg{info}); };
  callbacks.on_output = [engine](ModelRunnerOutput&& out) {
    caf::anon_send(engine, StepResultMsg{std::move(out), wall_time_ns()});
  };
  callbacks.on_failure = [engine](const std::string& error) { caf::anon_send(engine, WorkersFailedMsg{error}); };
  self->state.thread = std::make_unique<ExecutorThread>(std::move(options), std::move(callbacks), std::move(trace));
  return {
      [=](StepMsg& m) { self->state.thread->submit(std::move(m.step)); },
      [=](RestartMsg&) { self->state.thread->restart(); },
      [=](StopMsg& m) {
        // Blocks this (detached) actor's own thread for at most grace_s.
        self->state.thread->stop(m.grace_s);
        self->quit();
      },
  };
}

}  // namespace

executor_actor spawn_executor(caf::actor_system& system, engine_core_actor engine, WorkerGroupOptions options,
                              std::optional<trace_actor> tracer) {
  return system.spawn<caf::detached>(executor_fn, std::move(engine), std::move(options), std::move(tracer));
}

}  // namespace vela::actors

#pragma once
#include <optional>

#include "actors/actor_messages.h"
#include "executor/executor_thread.h"

namespace vela::actors {

// Spawns the executor of one replica on its own thread; it starts the workers at once
// and reports WorkersReadyMsg / WorkersFailedMsg to `engine`.
executor_actor spawn_executor(caf::actor_system& system, engine_core_actor engine, WorkerGroupOptions options,
                              std::optional<trace_actor> tracer);

}  // namespace vela::actors

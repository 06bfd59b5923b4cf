// TraceActor: appends every TraceRecord it is sent to the trace's JSONL file (the
// workers append their own records to the same file).
#include "actors/engine_actors.h"

namespace vela::actors {
namespace {

struct TraceState {
  std::unique_ptr<TraceFile> file;
};

trace_actor::behavior_type trace_fn(trace_actor::stateful_pointer<TraceState> self, std::string path) {
  self->state.file = std::make_unique<TraceFile>(path);
  return {
      [=](TraceRecord& r) { self->state.file->append(r); },
  };
}

}  // namespace

trace_actor spawn_tracer(caf::actor_system& system, const std::string& jsonl_path) {
  return system.spawn<caf::detached>(trace_fn, jsonl_path);
}

}  // namespace vela::actors

#pragma once
// Spawn functions of the engine's actors (each in its own .cpp).
#include <memory>
#include <optional>

#include "actors/actor_messages.h"
#include "engine_core/scheduler.h"

namespace vela {
class Tokenizer;
namespace metrics {
class ServeMetrics;
}
}

namespace vela::actors {

struct EngineCoreSettings {
  int32_t engine_index = 0;
  EngineCoreOptions core;            // limits, LoadModel, pool override
  bool restart_workers = false;
  WorkerGroupOptions workers;
  std::string trace_path;            // empty: tracing off
  metrics::ServeMetrics* metrics = nullptr;  // scheduler gauges and step intervals go here
};

engine_core_actor spawn_engine_core(caf::actor_system& system, EngineCoreSettings settings, frontend_actor frontend,
                                    std::optional<trace_actor> tracer, ServerStatus* status);

struct FrontendSettings {
  int64_t max_message_bytes = 16 << 20;
  int32_t max_pending_requests = 4096;
  size_t num_engines = 1;
  metrics::ServeMetrics* metrics = nullptr;  // requests, tokens, latencies, replica health
  // A serving replica with requests in flight and no output for this long is
  // reported "stalled" (the step deadline, parallel.step_timeout_s, fails it later).
  double stall_after_s = 2;
  // Threads that tokenize prompts (and render chat templates) off the frontend's own
  // thread, so a huge prompt delays only its own request.
  int32_t tokenizer_threads = 2;
  // Threads that detokenize the engine's outputs, match stop strings and send the
  // deltas and finals; a request is pinned to one, so its events stay in order.
  int32_t detokenizer_threads = 2;
};

frontend_actor spawn_frontend(caf::actor_system& system, FrontendSettings settings,
                              std::shared_ptr<const Tokenizer> tokenizer, std::optional<trace_actor> tracer,
                              ServerStatus* status);

// One of the frontend's tokenizers (its own thread; linked to `parent`, the frontend,
// so it ends with it). Answers each TokenizeMsg with a TokenizedMsg to `frontend`.
tokenizer_actor spawn_tokenizer(caf::local_actor* parent, std::shared_ptr<const Tokenizer> tokenizer,
                                frontend_actor frontend, size_t index);

// One of the frontend's detokenizers (its own thread; linked to `parent`, the
// frontend). Owns the text of the requests pinned to it: sends their events to the
// clients and tells `frontend` (DetokenizedMsg) which ended.
struct DetokenizerSettings {
  size_t index = 0;
  std::shared_ptr<const Tokenizer> tokenizer;  // null: token ids only, no text, no stop strings
  metrics::ServeMetrics* metrics = nullptr;    // TTFT, finished requests
  ServerStatus* status = nullptr;              // counts the requests cut off
  std::optional<trace_actor> tracer;
};
detokenizer_actor spawn_detokenizer(caf::local_actor* parent, DetokenizerSettings settings, frontend_actor frontend);

trace_actor spawn_tracer(caf::actor_system& system, const std::string& jsonl_path);

}  // namespace vela::actors

#pragma once
// Messages between the engine's actors and their typed interfaces. Only actors/
// includes CAF. Every message that crosses an actor boundary carries its send time
// so TraceActor can record the hop.
#include <caf/all.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include "client/protocol.h"
#include "engine_core/engine_core.h"
#include "transport/trace_record.h"
#include "executor/worker_group.h"
#include "messages/engine_core_output.h"
#include "messages/engine_core_request.h"
#include "messages/model_runner_output.h"
#include "messages/scheduler_output.h"

namespace vela {
class ClientBridge;
}

namespace vela::actors {

struct AddRequestMsg { EngineCoreRequest request; int64_t sent_ns = 0; };
struct AbortMsg { std::vector<std::string> request_ids; int64_t sent_ns = 0; };
// The replica's executor has an output or a failure to collect (sent from its thread).
struct ExecutorEventMsg { uint64_t generation = 0; };
// EngineCore::create finished on the starter thread (the result travels boxed: CAF
// messages are copyable).
struct CoreStartedMsg {
  uint64_t generation = 0;
  std::shared_ptr<Result<std::unique_ptr<EngineCore>>> result;
};
struct StopMsg { double grace_s = 5; };
struct OutputsMsg { EngineCoreOutputs outputs; int64_t sent_ns = 0; };
// An engine replica became usable (healthy, with what admission needs) or unusable:
// restarting its workers, or dead for good.
struct EngineStateMsg {
  int32_t engine_index = 0;
  bool healthy = false;
  EngineFacts facts;
  std::string error;
  bool restarting = false;  // !healthy: a fresh executor is starting
};
struct ClientFramesMsg { std::string identity; std::vector<std::string> frames; int64_t recv_ns = 0; };
struct ClientGoneMsg { std::string identity; };
struct BridgeMsg { ClientBridge* bridge = nullptr; };
// One HTTP request's choices (http/: request_id = the choice's index) under the
// request's own identity (http::is_http_identity). max_tokens_auto: a chat request
// without max_tokens gets what is left of the context after its prompt.
struct HttpGenerateMsg {
  std::string identity;
  std::vector<client::GenerateRequest> choices;
  bool max_tokens_auto = false;
  int64_t recv_ns = 0;
};
// Where events for HTTP identities go, once the HTTP server listens.
struct HttpFrontMsg { std::function<void(const std::string& identity, client::ServerEvent event)> deliver; };
struct DrainMsg {};
// The drain timed out (or a second stop signal came): every request still live gets
// its final with finish_reason "shutdown" now.
struct CutOffMsg {};

// Frontend -> one of its tokenizer actors: the text of one request to tokenize (a
// prompt, or chat turns to render with the model's template first).
struct TokenizeMsg {
  uint64_t job = 0;                  // the frontend's id of the request
  std::optional<std::string> prompt;
  std::vector<std::pair<std::string, std::string>> chat;  // (role, content), when no prompt
};
// Tokenizer -> frontend: the ids, or why there are none.
struct TokenizedMsg {
  uint64_t job = 0;
  size_t tokenizer = 0;              // which tokenizer did it (the frontend balances their queues)
  std::vector<int32_t> ids;
  std::string error;                 // non-empty: the chat template could not be rendered
};

// Frontend -> the detokenizer a request is pinned to at admission (the one with the
// fewest requests). From then on that detokenizer alone turns the request's engine
// outputs into its deltas and its one final, in order, on its own thread.
struct DetokenizeStartMsg {
  std::string engine_request_id;
  std::string identity;                   // the client's connection
  std::string client_request_id;
  bool stream = true;
  std::vector<int32_t> prompt_token_ids;  // echoed in the final
  std::vector<std::string> stop;          // stop strings (the text ends before the first match)
  bool wants_logprobs = false;            // params.logprobs >= 0
  int64_t arrival_ns = 0;                 // wall clock at the frontend (TTFT, end-to-end latency)
};
// Frontend -> detokenizer: one engine step's outputs for the requests pinned to it, in step order.
struct DetokenizeOutputsMsg { std::vector<EngineCoreOutput> outputs; };
// Frontend -> detokenizer: end these requests without waiting for the engine.
struct DetokenizeEndMsg {
  enum class Why { kCutOff, kClientGone };
  std::vector<std::string> engine_request_ids;
  Why why = Why::kCutOff;  // kCutOff: a final "shutdown" each; kClientGone: no final (nobody to read it)
};
// Detokenizer -> frontend, sent before the finals it names go out: these requests
// are over (their final is sent), so the frontend forgets them. `stopped` ones
// ended on a stop string while the engine still runs them: the frontend aborts them there.
struct DetokenizedMsg {
  size_t detokenizer = 0;
  std::vector<std::string> finished;  // engine request ids
  std::vector<std::string> stopped;   // engine request ids
};

using trace_actor = caf::typed_actor<caf::reacts_to<TraceRecord>>;
using tokenizer_actor = caf::typed_actor<caf::reacts_to<TokenizeMsg>>;
using detokenizer_actor =
    caf::typed_actor<caf::reacts_to<DetokenizeStartMsg>, caf::reacts_to<DetokenizeOutputsMsg>,
                     caf::reacts_to<DetokenizeEndMsg>, caf::reacts_to<BridgeMsg>, caf::reacts_to<HttpFrontMsg>>;
using engine_core_actor =
    caf::typed_actor<caf::reacts_to<AddRequestMsg>, caf::reacts_to<AbortMsg>, caf::reacts_to<ExecutorEventMsg>,
                     caf::reacts_to<CoreStartedMsg>, caf::reacts_to<StopMsg>>;
struct EnginesMsg { std::vector<engine_core_actor> engines; };
using frontend_actor =
    caf::typed_actor<caf::reacts_to<ClientFramesMsg>, caf::reacts_to<ClientGoneMsg>, caf::reacts_to<OutputsMsg>,
                     caf::reacts_to<EngineStateMsg>, caf::reacts_to<EnginesMsg>, caf::reacts_to<BridgeMsg>,
                     caf::reacts_to<HttpGenerateMsg>, caf::reacts_to<HttpFrontMsg>, caf::reacts_to<DrainMsg>, caf::reacts_to<CutOffMsg>,
                     caf::reacts_to<TokenizedMsg>, caf::reacts_to<DetokenizedMsg>>;

// What the actors tell the main thread (which waits on signals, not on actors).
struct ServerStatus {
  int num_engines = 1;                     // set before any actor starts
  std::atomic<int> engines_ready{0};
  std::atomic<int> engines_dead{0};        // failed and not restarting
  std::atomic<int> exit_code{-1};          // >= 0: the server must exit with it
  std::atomic<bool> drained{false};        // draining and no request left
  std::atomic<int> num_cut_off{0};         // requests ended with finish_reason "shutdown"
  std::mutex mu;
  std::string fatal_error;
  std::string dead_errors;                 // "; "-joined, one per dead replica (guarded by mu)
  void fail(int code, const std::string& error) {
    std::lock_guard lock(mu);
    if (fatal_error.empty()) fatal_error = error;
    int expected = -1;
    exit_code.compare_exchange_strong(expected, code);
  }
  // A replica is gone for good. The server goes on while another can serve; when none
  // can, it exits with `code`, naming every replica's failure.
  void replica_dead(int code, const std::string& error) {
    std::string all;
    {
      std::lock_guard lock(mu);
      dead_errors += (dead_errors.empty() ? "" : "; ") + error;
      all = dead_errors;
    }
    if (engines_dead.fetch_add(1) + 1 >= num_engines) fail(code, "no replica can serve: " + all);
  }
};

}  // namespace vela::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::TraceRecord)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::AddRequestMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::AbortMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::ExecutorEventMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::CoreStartedMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::StopMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::OutputsMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::EngineStateMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::ClientFramesMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::ClientGoneMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::BridgeMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::HttpGenerateMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::HttpFrontMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::DrainMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::CutOffMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::EnginesMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::TokenizeMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::TokenizedMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::DetokenizeStartMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::DetokenizeOutputsMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::DetokenizeEndMsg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(vela::actors::DetokenizedMsg)

#pragma once
// The client protocol: what a client (ZeroMQ DEALER) and the frontend (ROUTER)
// exchange. Every message is ONE frame holding a msgpack map with named fields, so
// a server can reject an unknown field by name and a client in any language can
// speak it. docs/PROTOCOL.md is the specification; this is its C++ codec.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "messages/engine_core_output.h"
#include "messages/sampling_params.h"

namespace vela::client {

inline constexpr int32_t kClientProtocolVersion = 1;
// A request_id longer than this is refused (it is echoed in every reply).
inline constexpr size_t kMaxRequestIdBytes = 256;

// One turn of a conversation: {"role": ..., "content": ...}.
struct ChatTurn {
  std::string role;     // "system" | "user" | "assistant" | "tool"
  std::string content;
};

// client -> server: {"type": "generate", ...}
struct GenerateRequest {
  std::string request_id;                  // chosen by the client, unique on its connection
  // Exactly one of these three is set.
  std::optional<std::string> prompt;       // text (needs the server's tokenizer)
  std::optional<std::vector<int32_t>> prompt_token_ids;  // token ids
  std::optional<std::vector<ChatTurn>> messages;  // a conversation: the server renders its
                                                  // chat template (with the assistant turn opened)
  SamplingParams params;                   // "params" map; absent keys keep defaults
  bool stream = true;                      // false: one final message with everything
  int32_t priority = 0;                    // lower runs first under the priority policy
};
// {"type": "abort", "request_id": ...}
struct AbortRequest {
  std::string request_id;
};
// {"type": "ping"} -> {"type": "pong", "status": ..., "replicas": [...]}
struct Ping {};

using ClientMessage = std::variant<GenerateRequest, AbortRequest, Ping>;

// Decodes one client frame; checks structure, types, unknown fields, that every
// string is valid UTF-8 and the request_id's length (value ranges are the frontend's
// validation, which knows the model's limits). An error's code is "malformed" |
// "unknown_field" | "missing_field" | "bad_type" | "invalid_value" | "too_large", its field
// the one at fault ("params.temperature", "prompt_token_ids[3]", "messages[1].role",
// "type", "frame"). error_request_id (may be null) receives the request_id that an
// error reply echoes: the frame's, once its type is read and is not a ping; it is left
// untouched when the error comes before that.
Result<ClientMessage> decode_client_message(std::string_view frame, size_t max_frame_bytes,
                                            std::string* error_request_id = nullptr);

std::string encode_client_message(const ClientMessage& message);

// pong: one engine replica's health.
struct ReplicaHealth {
  int32_t index = 0;          // data-parallel replica
  std::string state;          // "starting" | "serving" | "stalled" | "restarting" | "dead"
  int32_t num_requests = 0;   // requests in flight on it
  std::string message;        // restarting / dead: what failed; stalled: for how long
  // The replica's KV cache as its scheduler last reported it (0 before its first step):
  // every block is back when num_free_blocks == num_usable_blocks with no request in flight.
  int32_t num_free_blocks = 0;
  int32_t num_usable_blocks = 0;  // the pool less the null block
  int64_t num_preemptions = 0;    // since start
  bool operator==(const ReplicaHealth&) const = default;
};

// server -> client.
struct ServerEvent {
  enum class Kind { kDelta, kFinal, kError, kPong };
  Kind kind = Kind::kDelta;
  std::string request_id;
  std::vector<int32_t> token_ids;   // delta: new tokens; final: all output tokens when !stream,
                                    // else the last ones not yet streamed
  std::string text;                 // detokenized text of token_ids (empty without a tokenizer)
  std::string finish_reason;        // final: "stop" | "length" | "abort" | "error"
  std::string stop_reason;          // final: the stop string or token id that matched, if any
  std::vector<int32_t> prompt_token_ids;  // final: the prompt as the engine ran it (tokenized text)
  int32_t num_prompt_tokens = 0;    // final
  int32_t num_output_tokens = 0;    // final
  int32_t num_cached_tokens = 0;    // final: prompt tokens served from the prefix cache
  std::string code;                 // error
  std::string field;                // error: the offending field, when one is at fault
  std::string message;              // error / final with finish_reason "error"
  // delta / final of a request that asked for params.logprobs >= 0: one entry per
  // token in token_ids (its logprob under the raw logits, and the top N ids with
  // theirs, most likely first); nullopt when the request did not ask.
  std::optional<std::vector<TokenLogprobs>> logprobs;
  // pong: "serving" (some replica takes requests), "draining" or "unavailable"; and
  // each replica's state.
  std::string status;
  std::vector<ReplicaHealth> replicas;
};

std::string encode_server_event(const ServerEvent& event);
Result<ServerEvent> decode_server_event(std::string_view frame);

const char* event_kind_name(ServerEvent::Kind kind);

}  // namespace vela::client

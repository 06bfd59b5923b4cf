#pragma once
// The OpenAI HTTP API as Vela speaks it: JSON bodies of /v1/completions and
// /v1/chat/completions become client-protocol GenerateRequests (one per prompt per
// choice, so n > 1 and prompt lists ride the same FrontendActor path as ZeroMQ
// clients), and the FrontendActor's ServerEvents become OpenAI responses or
// server-sent-event chunks. Pure functions and one builder; no sockets (docs/HTTP.md).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "client/protocol.h"

namespace vela {
class Tokenizer;
}

namespace vela::http {

// An OpenAI error object ({"error": {message, type, param, code}}) and its status.
struct ApiError {
  int status = 400;
  std::string type = "invalid_request_error";
  std::string message;
  std::string param;  // the parameter at fault ("temperature", "messages[1].role"), or empty
  std::string code;   // vela's code: unknown_field, bad_type, invalid_value, too_large, busy, ...
};
std::string error_body(const ApiError& error);
// A FrontendActor refusal (client protocol code + field) as the HTTP API reports it:
// busy 429, draining / unavailable 503, too_large 413, the rest 400; the field named
// as the API's parameter (params.temperature -> temperature, prompt_token_ids[3] -> prompt).
ApiError from_protocol_error(const std::string& code, const std::string& field, const std::string& message);

enum class Endpoint { kCompletions, kChat };

struct ParsedRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;             // as the client named it (checked against the served name)
  bool stream = false;
  bool include_usage = false;    // stream_options.include_usage
  int32_t n = 1;                 // choices per prompt
  int32_t num_prompts = 1;
  int32_t top_logprobs = -1;     // -1: no logprobs; else the top-N alternatives per token
  // Chat without max_tokens: the FrontendActor sets max_tokens to what is left of
  // max_model_len (and the KV pool) after the prompt.
  bool max_tokens_auto = false;
  // One per choice, index = prompt * n + choice; request_id = the index as text.
  std::vector<client::GenerateRequest> choices;
};

// Parses and checks the body: JSON syntax, types, unknown or unsupported parameters
// (refused by name), the model name. Value ranges that depend on the model are the
// FrontendActor's (its refusals come back through from_protocol_error).
std::variant<ParsedRequest, ApiError> parse_request(Endpoint endpoint, std::string_view body,
                                                    const std::string& served_model_name);

// Builds the response of one request from its choices' events.
class ResponseBuilder {
 public:
  // id: "cmpl-..." / "chatcmpl-..."; tokenizer may be null (logprob tokens as "token_id:N").
  ResponseBuilder(const ParsedRequest& request, const Tokenizer* tokenizer, std::string id, int64_t created_s,
                  std::string model_name);

  // Streaming: the SSE bytes this event adds (maybe none); after the last final, the
  // usage chunk (when asked) and "data: [DONE]". Not streaming: collects, returns "".
  std::string on_event(size_t choice, const client::ServerEvent& event);
  bool done() const { return num_finished_ == choices_.size(); }
  // Not streaming, once done(): the response body (or an error when every choice failed).
  std::variant<std::string, ApiError> full_response() const;
  // Streaming, after the stream started: an error chunk and [DONE].
  static std::string stream_error(const ApiError& error);

 private:
  struct Choice {
    std::string text;
    std::vector<TokenLogprobs> logprobs;
    std::vector<int32_t> token_ids;
    bool sent_role = false;
    bool finished = false;
    std::string finish_reason;
    std::string stop_reason;
    std::string error;
    int32_t num_prompt_tokens = 0;
    int32_t num_output_tokens = 0;
    int32_t num_cached_tokens = 0;
    size_t text_offset = 0;  // completions logprobs: bytes of text streamed so far
  };
  std::string chunk(size_t choice, const std::string& text, const std::vector<int32_t>& token_ids,
                    const std::optional<std::vector<TokenLogprobs>>& logprobs, const std::string& finish_reason,
                    const std::string& stop_reason);
  std::string usage_json() const;

  Endpoint endpoint_;
  bool stream_;
  bool include_usage_;
  int32_t n_;
  int32_t top_logprobs_;
  const Tokenizer* tokenizer_;
  std::string id_;
  int64_t created_s_;
  std::string model_name_;
  std::vector<Choice> choices_;
  size_t num_finished_ = 0;
};

// POST /tokenize ({"prompt": str} or {"messages": [...]}, optional "model",
// "add_special_tokens") and POST /detokenize ({"tokens": [int]}): the body or an error.
std::variant<std::string, ApiError> tokenize(std::string_view body, const Tokenizer* tokenizer,
                                             const std::string& served_model_name, int32_t max_model_len);
std::variant<std::string, ApiError> detokenize(std::string_view body, const Tokenizer* tokenizer,
                                               const std::string& served_model_name);
// GET /v1/models.
std::string models_body(const std::string& served_model_name, int32_t max_model_len, int64_t created_s);

// Constant-time comparison of a presented key with the configured one (the time
// depends on the presented key's length only).
bool keys_equal(std::string_view presented, std::string_view expected);

}  // namespace vela::http

#pragma once
// HttpServer: the OpenAI-compatible HTTP front of `vela serve` (Boost.Beast on one
// Asio thread: every connection is a state machine, none has a thread). A
// generation request becomes client-protocol GenerateRequests handed to the
// FrontendActor through a callback, exactly like a ZeroMQ client's frames; the
// FrontendActor's events come back through deliver() and leave as JSON or as
// server-sent events. A connection that closes mid-request has its request aborted.
// No Beast and no CAF in this header (docs/HTTP.md).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/protocol.h"
#include "common/result.h"

namespace vela {
class Tokenizer;
namespace metrics {
class ServeMetrics;
}
}  // namespace vela

namespace vela::http {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int32_t port = 0;                    // 0: any free port (tests)
  std::string api_key;                 // empty: no key needed
  std::string served_model_name;
  int32_t max_model_len = 0;           // /v1/models, /tokenize
  int64_t max_body_bytes = 4 << 20;
  int32_t max_header_bytes = 16 << 10;
  int32_t max_connections = 2048;
  double max_requests_per_s = 50;      // per connection
  double idle_timeout_s = 60;
};

struct HttpServerCallbacks {
  // One HTTP request's choices (request_id = choice index) under its own identity.
  // max_tokens_auto: chat without max_tokens (the frontend fills in what fits).
  std::function<void(std::string identity, std::vector<client::GenerateRequest> choices, bool max_tokens_auto,
                     int64_t recv_time_ns)>
      on_generate;
  // The request's connection closed (or it was refused half-way): abort its choices.
  std::function<void(const std::string& identity)> on_gone;
};

// Identities of HTTP requests are "\0\0http:N" (9+ bytes). ZeroMQ's own routing ids are
// exactly 5 bytes starting with NUL (then a 32-bit counter, whose first byte may be
// NUL too), and a client may not set one starting with NUL, so the two fronts'
// identities never collide in the FrontendActor's tables.
inline constexpr std::string_view kHttpIdentityPrefix{"\0\0http:", 7};
inline bool is_http_identity(std::string_view identity) {
  return identity.size() > kHttpIdentityPrefix.size() && identity.substr(0, kHttpIdentityPrefix.size()) == kHttpIdentityPrefix;
}

class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> start(HttpServerOptions options, HttpServerCallbacks callbacks,
                                                   std::shared_ptr<const Tokenizer> tokenizer,
                                                   metrics::ServeMetrics* metrics);
  ~HttpServer();  // flushes responses in progress (at most 2 s), stops, joins
  // Thread-safe: an event of choice event.request_id of the request `identity`.
  void deliver(const std::string& identity, client::ServerEvent event);
  int32_t port() const;
  const std::string& host() const;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The chat page served at GET / (http/chat_page.html, embedded at build time).
std::string_view chat_page_html();

}  // namespace vela::http

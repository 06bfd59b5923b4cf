#pragma once
// Where a request's events go: the ClientBridge (ZeroMQ clients) or the HTTP front
// (http::is_http_identity), with a trace record of each when tracing is on. The
// frontend and each of its detokenizers hold a copy; the frontend hands on what it
// learns (BridgeMsg, HttpFrontMsg) before any request that needs it.
#include <functional>
#include <optional>
#include <string>

#include "actors/actor_messages.h"

namespace vela::actors {

struct EventRoute {
  ClientBridge* bridge = nullptr;  // set once the client socket is bound
  std::function<void(const std::string&, client::ServerEvent)> http_deliver;  // set once the HTTP front listens
  std::optional<trace_actor> tracer;
};

// One trace record of a message hop (no-op when tracing is off).
void send_trace(const EventRoute& route, const char* type, const char* from, const char* to, uint64_t bytes,
                const std::string& request_id, int64_t sent_ns);

// Sends `ev` to the client behind `identity`. Callable from any actor's thread: the
// bridge's send and the HTTP front's deliver only queue.
void send_event(const EventRoute& route, const std::string& identity, client::ServerEvent ev);

}  // namespace vela::actors

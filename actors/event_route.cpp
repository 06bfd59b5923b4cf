#include "actors/event_route.h"

#include "actors/client_bridge.h"
#include "common/clock.h"
#include "http/http_server.h"

namespace vela::actors {

void send_trace(const EventRoute& route, const char* type, const char* from, const char* to, uint64_t bytes,
                const std::string& request_id, int64_t sent_ns) {
  if (!route.tracer) return;
  caf::anon_send(*route.tracer, TraceRecord{type, from, to, bytes, 0, request_id, sent_ns, wall_time_ns()});
}

void send_event(const EventRoute& route, const std::string& identity, client::ServerEvent ev) {
  if (http::is_http_identity(identity)) {
    send_trace(route, client::event_kind_name(ev.kind), "frontend", "http", 0, ev.request_id, wall_time_ns());
    if (route.http_deliver) route.http_deliver(identity, std::move(ev));
    return;
  }
  if (!route.bridge) return;
  std::string frame = client::encode_server_event(ev);
  send_trace(route, client::event_kind_name(ev.kind), "frontend", "client", frame.size(), ev.request_id, wall_time_ns());
  route.bridge->send(identity, std::move(frame));
}

}  // namespace vela::actors

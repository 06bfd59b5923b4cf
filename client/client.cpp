#include "client/client.h"

#include <zmq.hpp>

#include <cerrno>

#include "transport/curve_auth.h"
#include "transport/zmq_io.h"

namespace vela::client {

Client::Client() = default;
Client::~Client() {
  socket_.reset();  // before the context
}

Result<ClientCurveKeys> ClientCurveKeys::from_files(const std::string& server_public_key_file,
                                                    const std::string& client_secret_key_file) {
  VELA_TRY_ASSIGN(auto server, transport::load_curve_public_keys(server_public_key_file));
  if (server.size() != 1)
    return make_error("key_file", "'" + server_public_key_file + "' must hold exactly one (the server's) public key");
  VELA_TRY_ASSIGN(auto mine, transport::load_curve_secret_key(client_secret_key_file));
  return ClientCurveKeys{server[0], mine.public_key, mine.secret_key};
}

Result<std::unique_ptr<Client>> Client::connect(const std::string& endpoint, const std::optional<ClientCurveKeys>& curve) {
  std::unique_ptr<Client> c(new Client());
  c->context_ = std::make_unique<zmq::context_t>();
  c->socket_ = std::make_unique<zmq::socket_t>(*c->context_, zmq::socket_type::dealer);
  transport::configure_socket(*c->socket_);
  if (curve) {
    try {
      transport::make_curve_client(*c->socket_, curve->server_public_key,
                                   transport::CurveKeyPair{curve->public_key, curve->secret_key});
    } catch (const zmq::error_t& e) {
      return make_error("bad_key", std::string("CURVE keys refused by libzmq: ") + e.what());
    }
  }
  try {
    c->socket_->connect(endpoint);
  } catch (const zmq::error_t& e) {
    return make_error("connect_failed", "cannot connect to " + endpoint + ": " + e.what());
  }
  return c;
}

Status Client::send_raw(const std::string& frame) {
  if (!transport::send_frames(*socket_, {frame}))
    return make_error("send_failed", "send queue full or not connected");
  return ok_status();
}

Status Client::submit(const GenerateRequest& request) {
  VELA_TRY(send_raw(encode_client_message(ClientMessage{request})));
  if (in_flight_.empty()) last_heard_ = std::chrono::steady_clock::now();  // silence counts from here
  in_flight_.insert(request.request_id);
  return ok_status();
}

std::optional<ServerEvent> Client::check_liveness() {
  if (in_flight_.empty()) {
    ping_sent_.reset();
    return std::nullopt;
  }
  const auto now = std::chrono::steady_clock::now();
  if (!ping_sent_) {
    if (now - last_heard_ >= idle_before_ping_) {
      (void)send_raw(encode_client_message(ClientMessage{Ping{}}));
      ping_sent_ = now;
    }
    return std::nullopt;
  }
  if (now - *ping_sent_ < pong_timeout_) return std::nullopt;
  // The server is gone (or stuck past answering a ping): each request in flight ends
  // now, one final each, so no caller waits forever.
  server_lost_ = true;
  ServerEvent lost;
  lost.kind = ServerEvent::Kind::kFinal;
  lost.request_id = *in_flight_.begin();
  lost.finish_reason = "error";
  lost.message = "lost the server: nothing heard for " +
                 std::to_string((idle_before_ping_ + pong_timeout_).count()) +
                 " ms and no answer to a ping (it died or is stuck)";
  in_flight_.erase(in_flight_.begin());
  return lost;
}

Status Client::abort(const std::string& request_id) {
  return send_raw(encode_client_message(ClientMessage{AbortRequest{request_id}}));
}

std::optional<ServerEvent> Client::next_event(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (auto frames = transport::recv_frames(*socket_)) {
      last_heard_ = std::chrono::steady_clock::now();
      ping_sent_.reset();
      if (server_lost_) continue;  // its requests were ended here already
      if (frames->size() != 1) continue;
      auto ev = decode_server_event(frames->front());
      if (!ev) continue;  // a frame we cannot read is skipped, never fatal
      if (ev->kind == ServerEvent::Kind::kFinal || ev->kind == ServerEvent::Kind::kError)
        in_flight_.erase(ev->request_id);
      return std::move(ev.value());
    }
    if (auto lost = check_liveness()) return lost;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    zmq::pollitem_t item{static_cast<void*>(*socket_), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::min(left, std::chrono::milliseconds(100)));
    } catch (const zmq::error_t& e) {
      // A signal (Ctrl-C) interrupted the wait: let the caller look at it now.
      if (e.num() == EINTR) return std::nullopt;
      throw;
    }
  }
}

bool Client::ping(std::chrono::milliseconds timeout) {
  if (!send_raw(encode_client_message(ClientMessage{Ping{}}))) return false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = next_event(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
    if (ev && ev->kind == ServerEvent::Kind::kPong) return true;
  }
  return false;
}

}  // namespace vela::client

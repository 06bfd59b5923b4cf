#pragma once
// Client: one DEALER connection to a vela frontend carrying any number of
// concurrent requests; events come back tagged with their request id. Not
// thread-safe: the thread that calls it owns the socket.
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "client/protocol.h"
#include "common/result.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace vela::client {

// CURVE keys of a client (Z85 text): the server's public key and this client's pair.
// A server with security.curve_* set talks to nobody else.
struct ClientCurveKeys {
  std::string server_public_key;
  std::string public_key;
  std::string secret_key;
  // From key files as `vela keygen` writes them: the server's PREFIX.pub and this
  // client's PREFIX.key (its public key is derived).
  static Result<ClientCurveKeys> from_files(const std::string& server_public_key_file,
                                            const std::string& client_secret_key_file);
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> connect(const std::string& endpoint,
                                                 const std::optional<ClientCurveKeys>& curve = std::nullopt);
  ~Client();

  // Queues a request (never blocks; fails when the send queue is full).
  Status submit(const GenerateRequest& request);
  // Asks the engine to stop a request; a final with finish_reason "abort" follows.
  Status abort(const std::string& request_id);
  // Sends raw bytes as one frame (tests use it for malformed input).
  Status send_raw(const std::string& frame);
  // Waits up to timeout for the next event; nullopt on timeout or when a signal
  // interrupted the wait. The liveness rule (docs/PROTOCOL.md) runs inside: while
  // requests are in flight, silence for `idle_before_ping` sends a ping, and no
  // answer within `pong_timeout` after it means the server is gone: every request
  // in flight then ends here with a final (finish_reason "error", message saying
  // the server was lost), and server_lost() is true.
  std::optional<ServerEvent> next_event(std::chrono::milliseconds timeout);
  void set_liveness(std::chrono::milliseconds idle_before_ping, std::chrono::milliseconds pong_timeout) {
    idle_before_ping_ = idle_before_ping;
    pong_timeout_ = pong_timeout;
  }
  bool server_lost() const { return server_lost_; }
  size_t num_in_flight() const { return in_flight_.size(); }
  // Round trip to the server; false when no pong came within timeout.
  bool ping(std::chrono::milliseconds timeout);

 private:
  Client();
  // One step of the liveness rule; a lost-server final when it fires.
  std::optional<ServerEvent> check_liveness();
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::set<std::string> in_flight_;   // submitted, no final or error yet
  std::chrono::milliseconds idle_before_ping_{2000};
  std::chrono::milliseconds pong_timeout_{3000};
  std::chrono::steady_clock::time_point last_heard_{};  // any frame from the server
  std::optional<std::chrono::steady_clock::time_point> ping_sent_;  // liveness ping without its pong
  bool server_lost_ = false;
};

}  // namespace vela::client

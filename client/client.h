#pragma once
// Client: one DEALER connection to a vela frontend carrying any number of
// concurrent requests; events come back tagged with their request id. Not
// thread-safe: the thread that calls it owns the socket.
#include <chrono>
#include <memory>
#include <optional>
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
  Result<bool> submit(const GenerateRequest& request);
  // Asks the engine to stop a request; a final with finish_reason "abort" follows.
  Result<bool> abort(const std::string& request_id);
  // Sends raw bytes as one frame (tests use it for malformed input).
  Result<bool> send_raw(const std::string& frame);
  // Waits up to timeout for the next event; nullopt on timeout or when a signal
  // interrupted the wait.
  std::optional<ServerEvent> next_event(std::chrono::milliseconds timeout);
  // Round trip to the server; false when no pong came within timeout.
  bool ping(std::chrono::milliseconds timeout);

 private:
  Client();
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> socket_;
};

}  // namespace vela::client

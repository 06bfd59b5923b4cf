#pragma once
// ClientBridge: the thread that owns the frontend's ROUTER socket. Incoming frames
// go out through a callback (the actor layer sends them to FrontendActor); outgoing
// frames are queued by any thread and the bridge is woken through an eventfd, so the
// socket itself is only ever touched by this thread. ROUTER_MANDATORY makes a send
// to a client that has disconnected fail, which is reported as "client gone".
// No CAF here.
#include <zmq.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/result.h"
#include "transport/curve_auth.h"

namespace vela {

struct ClientBridgeCallbacks {
  // identity, frames after the identity (a well-behaved client sends exactly one)
  std::function<void(std::string identity, std::vector<std::string> frames, int64_t recv_time_ns)> on_frames;
  std::function<void(const std::string& identity)> on_client_gone;
};

// CURVE on the client endpoint: the server's keys and the client public keys let in.
struct ClientCurve {
  transport::CurveKeyPair server;
  std::vector<std::string> authorized_public_keys;
};

class ClientBridge {
 public:
  // Every frame is passed on, whatever its size: the frontend refuses oversized ones.
  // With `curve`, only clients holding an authorized key get through the handshake.
  static Result<std::unique_ptr<ClientBridge>> start(const std::string& endpoint, ClientBridgeCallbacks callbacks,
                                                     const std::optional<ClientCurve>& curve = std::nullopt);
  ~ClientBridge();  // stops and joins
  void send(std::string identity, std::string frame);  // thread-safe, never blocks
  const std::string& endpoint() const { return endpoint_; }

 private:
  ClientBridge() = default;
  void run();
  zmq::context_t context_;
  std::unique_ptr<transport::CurveAuthenticator> auth_;  // before router_ binds; gone before context_
  std::unique_ptr<zmq::socket_t> router_;
  std::string endpoint_;
  ClientBridgeCallbacks callbacks_;
  int wake_fd_ = -1;
  std::mutex mu_;
  std::deque<std::pair<std::string, std::string>> outgoing_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace vela

#pragma once
// ClientBridge: the thread that owns the frontend's ROUTER socket. Incoming frames
// go out through a callback (the actor layer sends them to FrontendActor); outgoing
// frames are queued by any thread and the bridge is woken through an eventfd, so the
// socket itself is only ever touched by this thread. Sends never block: a frame the
// ROUTER refuses (the client's queue is at its high-water mark, or ROUTER_MANDATORY's
// "unroutable", which libzmq also answers, for a moment, to a live client whose queue
// has just drained) waits in that client's backlog, and the client's later frames
// behind it; a client none of whose frames goes out for kClientGoneAfter (it
// disconnected, or stopped reading) is reported as "client gone". One slow client
// never holds up the others.
// No CAF here.
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

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
  static constexpr std::chrono::milliseconds kClientGoneAfter{2000};
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
  // The bridge thread's (then the destructor's): frames a client's queue refused, in order.
  struct Backlog {
    std::deque<std::string> frames;
    int64_t stuck_since_ns = 0;  // the last time one of them went out (or the first was refused)
  };
  std::unordered_map<std::string, Backlog> backlog_;
  // Sends a client's waiting frames until its queue refuses one; true if any went out.
  bool send_backlog(const std::string& identity, std::deque<std::string>& frames);
  void flush_backlogs(int64_t now_ns);
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace vela

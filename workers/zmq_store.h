#pragma once
// The rendezvous store tensor-parallel ranks use to find each other (Gloo's
// Store interface). Rank 0 serves it beside the engine's socket: in the engine's
// private ipc directory when the workers talk to the engine over ipc (no port any
// local user could reach), else on a loopback TCP port it picks itself. The address
// travels to the other ranks through the engine (Hello -> LoadModel).
#include <gloo/rendezvous/store.h>
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "common/result.h"

namespace vela {

// Serves set/get on its own thread until destroyed.
class ZmqStoreServer {
 public:
  // Binds ipc beside `engine_endpoint` when that is ipc://, else tcp://host:* (an
  // ephemeral port).
  static Result<std::unique_ptr<ZmqStoreServer>> start(zmq::context_t& context, const std::string& host,
                                                       const std::string& engine_endpoint = "");
  ~ZmqStoreServer();
  const std::string& address() const { return address_; }

 private:
  ZmqStoreServer(zmq::context_t& context) : context_(context) {}
  void serve();
  zmq::context_t& context_;
  std::unique_ptr<zmq::socket_t> socket_;  // used only by thread_ after start()
  std::string address_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Client side; every call has a deadline and throws gloo::IoException past it
// (Gloo's own stores signal failure the same way).
class ZmqStore final : public gloo::rendezvous::Store {
 public:
  ZmqStore(zmq::context_t& context, const std::string& address, std::chrono::milliseconds timeout);
  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

 private:
  // One request/reply; returns the reply frames.
  std::vector<std::string> call(const std::vector<std::string>& request);
  zmq::context_t& context_;
  std::string address_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<zmq::socket_t> socket_;
};

}  // namespace vela

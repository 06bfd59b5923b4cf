#include "actors/client_bridge.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/logging.h"
#include "transport/zmq_io.h"

namespace vela {

Result<std::unique_ptr<ClientBridge>> ClientBridge::start(const std::string& endpoint, ClientBridgeCallbacks callbacks,
                                                         const std::optional<ClientCurve>& curve) {
  std::unique_ptr<ClientBridge> b(new ClientBridge());
  b->callbacks_ = std::move(callbacks);
  if (curve) {
    VELA_TRY_ASSIGN(b->auth_, transport::CurveAuthenticator::start(b->context_, curve->authorized_public_keys));
  }
  b->router_ = std::make_unique<zmq::socket_t>(b->context_, zmq::socket_type::router);
  transport::configure_socket(*b->router_);
  b->router_->set(zmq::sockopt::router_mandatory, 1);
  if (curve) transport::make_curve_server(*b->router_, curve->server);
  // No ZMQ_MAXMSGSIZE: ZeroMQ answers a frame over it by dropping the whole connection
  // (and with it the routing id every in-flight request of that client is keyed by),
  // silently. Instead every frame reaches the frontend, which refuses one over
  // frontend.max_message_bytes with `too_large` before parsing it; the client's other
  // requests are untouched. The price: an oversized frame is held in memory whole
  // until it is refused (ZeroMQ allocates a frame as its bytes arrive).
  if (auto bound = transport::bind_endpoint(*b->router_, endpoint); !bound)
    return make_error(bound.error().code, "frontend: " + bound.error().message);
  b->endpoint_ = transport::last_endpoint(*b->router_);
  b->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  b->thread_ = std::thread([p = b.get()] { p->run(); });
  return b;
}

ClientBridge::~ClientBridge() {
  stop_ = true;
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  // The thread is gone: this one owns the socket now. Replies queued last (the finals
  // of a drain or a shutdown) still go out; the linger bounds how long closing waits
  // for them to reach the clients.
  std::deque<std::pair<std::string, std::string>> rest;
  {
    std::lock_guard lock(mu_);
    rest.swap(outgoing_);
  }
  if (router_) {  // null when start() failed before making it
    for (auto& [identity, frame] : rest) (void)transport::send_frames(*router_, {frame}, identity);
    router_->set(zmq::sockopt::linger, 2000);
    router_.reset();
  }
  auth_.reset();
  transport::remove_ipc_file(endpoint_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void ClientBridge::send(std::string identity, std::string frame) {
  {
    std::lock_guard lock(mu_);
    outgoing_.emplace_back(std::move(identity), std::move(frame));
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
}

void ClientBridge::run() {
  std::deque<std::pair<std::string, std::string>> batch;
  while (!stop_) {
    zmq::pollitem_t items[2] = {{static_cast<void*>(*router_), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, std::chrono::milliseconds(100));
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t counter;
      (void)!::read(wake_fd_, &counter, sizeof(counter));
    }
    {
      std::lock_guard lock(mu_);
      batch.swap(outgoing_);
    }
    for (auto& [identity, frame] : batch) {
      if (!transport::send_frames(*router_, {frame}, identity)) {
        // EHOSTUNREACH: the client's connection is gone (or its queue is full, which a
        // bounded queue treats the same way: that client stopped reading).
        callbacks_.on_client_gone(identity);
      }
    }
    batch.clear();
    for (int i = 0; i < 256; ++i) {  // bounded per round so outgoing frames keep flowing
      auto frames = transport::recv_frames(*router_);
      if (!frames) break;
      if (frames->size() < 2) continue;
      std::string identity = std::move(frames->front());
      frames->erase(frames->begin());
      callbacks_.on_frames(std::move(identity), std::move(*frames), wall_time_ns());
    }
  }
}

}  // namespace vela

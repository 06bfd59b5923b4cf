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
  // of a drain or a shutdown) still go out, behind each client's backlog, for as long
  // as a client is given to read (kClientGoneAfter); the linger bounds how long
  // closing waits for them to reach the clients.
  if (router_) {  // null when start() failed before making it
    {
      std::lock_guard lock(mu_);
      for (auto& [identity, frame] : outgoing_) backlog_[identity].frames.push_back(std::move(frame));
      outgoing_.clear();
    }
    const auto deadline = std::chrono::steady_clock::now() + kClientGoneAfter;
    while (!backlog_.empty() && std::chrono::steady_clock::now() < deadline) {
      for (auto it = backlog_.begin(); it != backlog_.end();) {
        send_backlog(it->first, it->second.frames);
        it = it->second.frames.empty() ? backlog_.erase(it) : std::next(it);
      }
      if (!backlog_.empty()) {
        zmq::pollitem_t item{static_cast<void*>(*router_), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::chrono::milliseconds(1));
      }
    }
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

bool ClientBridge::send_backlog(const std::string& identity, std::deque<std::string>& frames) {
  bool sent = false;
  while (!frames.empty() && transport::send_frames(*router_, {frames.front()}, identity, true)) {
    frames.pop_front();
    sent = true;
  }
  return sent;
}

void ClientBridge::flush_backlogs(int64_t now_ns) {
  for (auto it = backlog_.begin(); it != backlog_.end();) {
    auto& [identity, backlog] = *it;
    if (send_backlog(identity, backlog.frames)) backlog.stuck_since_ns = now_ns;
    if (backlog.frames.empty()) {
      it = backlog_.erase(it);
    } else if (now_ns - backlog.stuck_since_ns >= std::chrono::nanoseconds(kClientGoneAfter).count()) {
      callbacks_.on_client_gone(identity);
      it = backlog_.erase(it);
    } else {
      ++it;
    }
  }
}

void ClientBridge::run() {
  std::deque<std::pair<std::string, std::string>> batch;
  while (!stop_) {
    zmq::pollitem_t items[2] = {{static_cast<void*>(*router_), 0, ZMQ_POLLIN, 0}, {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
    // A backlog is retried every millisecond (the poll also lets libzmq take in the
    // clients' read acknowledgements that reopen their queues).
    zmq::poll(items, 2, std::chrono::milliseconds(backlog_.empty() ? 100 : 1));
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t counter;
      (void)!::read(wake_fd_, &counter, sizeof(counter));
    }
    {
      std::lock_guard lock(mu_);
      batch.swap(outgoing_);
    }
    const int64_t now = SteadyClock().now_ns();
    flush_backlogs(now);
    for (auto& [identity, frame] : batch) {
      if (auto b = backlog_.find(identity); b != backlog_.end()) {
        b->second.frames.push_back(std::move(frame));  // behind the ones already waiting
      } else if (!transport::send_frames(*router_, {frame}, identity, true)) {
        auto& backlog = backlog_[identity];
        backlog.frames.push_back(std::move(frame));
        backlog.stuck_since_ns = now;
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

#include "transport/zmq_io.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace vela::transport {

bool send_frames(zmq::socket_t& socket, const Frames& frames, const std::string& routing_id,
                 bool dontwait) {
  const auto base = dontwait ? zmq::send_flags::dontwait : zmq::send_flags::none;
  const size_t total = frames.size() + (routing_id.empty() ? 0 : 1);
  size_t index = 0;
  auto send_one = [&](const std::string& frame) -> bool {
    ++index;
    auto flags = index < total ? (base | zmq::send_flags::sndmore) : base;
    try {
      auto sent = socket.send(zmq::const_buffer(frame.data(), frame.size()), flags);
      return sent.has_value();
    } catch (const zmq::error_t&) {
      return false;  // EHOSTUNREACH with ROUTER_MANDATORY, ETERM on shutdown
    }
  };
  // Only the first frame can fail on a full queue: ZeroMQ queues a multipart message
  // atomically once its first part is accepted.
  if (!routing_id.empty() && !send_one(routing_id)) return false;
  for (const auto& f : frames)
    if (!send_one(f)) return false;
  return true;
}

std::optional<Frames> recv_frames(zmq::socket_t& socket, int* source_fd) {
  Frames frames;
  zmq::message_t part;
  try {
    auto got = socket.recv(part, zmq::recv_flags::dontwait);
    if (!got) return std::nullopt;
    if (source_fd) *source_fd = zmq_msg_get(part.handle(), ZMQ_SRCFD);  // -1 when unknown
    frames.emplace_back(static_cast<const char*>(part.data()), part.size());
    while (part.more()) {
      (void)socket.recv(part, zmq::recv_flags::none);  // the rest is already here
      frames.emplace_back(static_cast<const char*>(part.data()), part.size());
    }
  } catch (const zmq::error_t&) {
    return std::nullopt;
  }
  return frames;
}

bool recv_frames_into(zmq::socket_t& socket, Frames& frames, std::string* routing_id) {
  zmq::message_t part;
  size_t n = 0;
  try {
    if (!socket.recv(part, zmq::recv_flags::dontwait)) return false;
    bool first = true;
    while (true) {
      const char* data = static_cast<const char*>(part.data());
      if (first && routing_id) {
        routing_id->assign(data, part.size());
      } else {
        if (n == frames.size()) frames.emplace_back();
        frames[n++].assign(data, part.size());
      }
      first = false;
      if (!part.more()) break;
      (void)socket.recv(part, zmq::recv_flags::none);  // the rest is already here
    }
  } catch (const zmq::error_t&) {  // ETERM on shutdown: nothing usable arrived
    frames.resize(n);
    return false;
  }
  frames.resize(n);
  return true;
}

void configure_socket(zmq::socket_t& socket, int send_hwm, int recv_hwm, int linger_ms) {
  socket.set(zmq::sockopt::linger, linger_ms);
  socket.set(zmq::sockopt::sndhwm, send_hwm);
  socket.set(zmq::sockopt::rcvhwm, recv_hwm);
}

std::string last_endpoint(zmq::socket_t& socket) { return socket.get(zmq::sockopt::last_endpoint); }

std::string make_endpoint(const std::string& transport, const std::string& host,
                          const std::string& name) {
  static std::atomic<int> counter{0};
  if (transport == "tcp") return "tcp://" + host + ":*";
  const char* dir = std::getenv("XDG_RUNTIME_DIR");
  std::string base = (dir && *dir) ? dir : "/tmp";
  return "ipc://" + base + "/vela-" + std::to_string(getpid()) + "-" + name + "-" +
         std::to_string(counter.fetch_add(1)) + ".sock";
}

void remove_ipc_file(const std::string& endpoint) {
  const std::string prefix = "ipc://";
  if (endpoint.rfind(prefix, 0) == 0) ::unlink(endpoint.substr(prefix.size()).c_str());
}

}  // namespace vela::transport

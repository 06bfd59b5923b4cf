#include "transport/zmq_io.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

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

namespace {

const std::string kIpcPrefix = "ipc://";

// Owns the private directory; removes it (and any socket a killed peer left in it)
// at exit. Only the process that made it removes it (a forked child inherits the
// object, not the ownership).
struct PrivateDir {
  std::string path;
  pid_t owner = 0;
  ~PrivateDir() {
    if (path.empty() || owner != ::getpid()) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

const std::string& private_ipc_dir() {
  static PrivateDir dir;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    std::string tmpl = std::string((runtime && *runtime) ? runtime : "/tmp") + "/vela-XXXXXX";
    if (::mkdtemp(tmpl.data())) {  // mode 0700
      dir.path = tmpl;
      dir.owner = ::getpid();
    } else {
      std::fprintf(stderr, "vela: cannot create a private socket directory %s: %s\n", tmpl.c_str(),
                   std::strerror(errno));
    }
  });
  return dir.path;
}

std::string make_endpoint(const std::string& transport, const std::string& host,
                          const std::string& name) {
  static std::atomic<int> counter{0};
  if (transport == "tcp") return "tcp://" + host + ":*";
  return kIpcPrefix + private_ipc_dir() + "/" + name + "-" + std::to_string(counter.fetch_add(1)) + ".sock";
}

std::string endpoint_beside(const std::string& ipc_endpoint, const std::string& name) {
  const std::string path = ipc_endpoint.substr(kIpcPrefix.size());
  const auto slash = path.rfind('/');
  return kIpcPrefix + (slash == std::string::npos ? std::string(".") : path.substr(0, slash)) + "/" + name + "-" +
         std::to_string(::getpid()) + ".sock";
}

Status check_ipc_free(const std::string& endpoint) {
  if (endpoint.rfind(kIpcPrefix, 0) != 0) return ok_status();
  const std::string path = endpoint.substr(kIpcPrefix.size());
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) return ok_status();  // the bind reports it
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ok_status();
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  ::close(fd);
  if (rc == 0)
    return make_error("endpoint_in_use", endpoint + " is held by another live server (it accepted a connection); "
                                                    "stop it or choose another frontend.endpoint");
  // ENOENT: free; ECONNREFUSED: a stale file nobody listens on (the bind replaces it).
  if (err == ENOENT || err == ECONNREFUSED) return ok_status();
  return make_error("endpoint_unusable", endpoint + ": " + std::strerror(err));
}

Status bind_endpoint(zmq::socket_t& socket, const std::string& endpoint) {
  const bool ipc = endpoint.rfind(kIpcPrefix, 0) == 0;
  VELA_TRY(check_ipc_free(endpoint));
  // The socket file takes its mode from the umask: bind under 077, then say 0600
  // outright. (umask is per process; a file another thread creates meanwhile only
  // comes out more private.)
  const mode_t old_mask = ipc ? ::umask(077) : 0;
  try {
    socket.bind(endpoint);
  } catch (const zmq::error_t& e) {
    if (ipc) ::umask(old_mask);
    return make_error("bind_failed", "cannot bind " + endpoint + ": " + e.what());
  }
  if (ipc) {
    ::umask(old_mask);
    ::chmod(endpoint.substr(kIpcPrefix.size()).c_str(), 0600);
  }
  return ok_status();
}

void remove_ipc_file(const std::string& endpoint) {
  if (endpoint.rfind(kIpcPrefix, 0) == 0) ::unlink(endpoint.substr(kIpcPrefix.size()).c_str());
}

}  // namespace vela::transport

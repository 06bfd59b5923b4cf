// Who can reach a socket: CURVE with an authorized-keys list, ipc sockets private
// whatever the umask, and an ipc endpoint a live server holds left alone.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <filesystem>
#include <fstream>

#include "transport/curve_auth.h"
#include "transport/zmq_io.h"

using namespace vela;
using namespace std::chrono_literals;

namespace {

// A ROUTER echo server on a CURVE endpoint, driven by the test thread.
struct EchoServer {
  zmq::context_t ctx;
  std::unique_ptr<transport::CurveAuthenticator> auth;
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::string endpoint;
  EchoServer(const transport::CurveKeyPair& keys, const std::vector<std::string>& allowed) {
    auth = std::move(transport::CurveAuthenticator::start(ctx, allowed).value());
    router.set(zmq::sockopt::linger, 0);
    transport::make_curve_server(router, keys);
    router.bind("tcp://127.0.0.1:*");
    endpoint = transport::last_endpoint(router);
  }
  ~EchoServer() {
    router.close();
    auth.reset();
  }
  // Echoes whatever arrives for `for_ms`; the number of messages echoed.
  int echo(std::chrono::milliseconds for_ms) {
    int n = 0;
    const auto deadline = std::chrono::steady_clock::now() + for_ms;
    while (std::chrono::steady_clock::now() < deadline) {
      zmq::pollitem_t item{static_cast<void*>(router), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 20ms);
      while (auto f = transport::recv_frames(router)) {
        transport::send_frames(router, {f->back()}, f->front());
        ++n;
      }
    }
    return n;
  }
};

// Sends "hi" and waits for the echo.
bool round_trip(zmq::socket_t& dealer, EchoServer& server) {
  (void)transport::send_frames(dealer, {"hi"});
  server.echo(300ms);
  zmq::pollitem_t item{static_cast<void*>(dealer), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, 200ms);
  auto got = transport::recv_frames(dealer);
  return got && got->size() == 1 && got->front() == "hi";
}

}  // namespace

TEST_CASE("CURVE: only a client whose public key is authorized gets through") {
  auto server_keys = transport::new_curve_keypair();
  auto good = transport::new_curve_keypair();
  auto stranger = transport::new_curve_keypair();
  REQUIRE(server_keys.ok());
  EchoServer server(*server_keys, {good->public_key});
  zmq::context_t ctx;

  zmq::socket_t authorized(ctx, zmq::socket_type::dealer);
  authorized.set(zmq::sockopt::linger, 0);
  transport::make_curve_client(authorized, server_keys->public_key, *good);
  authorized.connect(server.endpoint);
  CHECK(round_trip(authorized, server));

  zmq::socket_t unauthorized(ctx, zmq::socket_type::dealer);
  unauthorized.set(zmq::sockopt::linger, 0);
  transport::make_curve_client(unauthorized, server_keys->public_key, *stranger);
  unauthorized.connect(server.endpoint);
  CHECK_FALSE(round_trip(unauthorized, server));
  CHECK(server.auth->num_refused() >= 1);

  zmq::socket_t plain(ctx, zmq::socket_type::dealer);  // no CURVE at all
  plain.set(zmq::sockopt::linger, 0);
  plain.connect(server.endpoint);
  CHECK_FALSE(round_trip(plain, server));
}

TEST_CASE("CURVE key files: keygen writes a private secret, the loaders refuse what is not a key") {
  char tmpl[] = "/tmp/vela-test-keygen-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const mode_t old_mask = ::umask(0);
  auto pair = transport::write_curve_keypair(dir + "/server");
  ::umask(old_mask);
  REQUIRE(pair.ok());
  struct stat st {};
  REQUIRE(::stat((dir + "/server.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto loaded = transport::load_curve_secret_key(dir + "/server.key");
  REQUIRE(loaded.ok());
  CHECK(loaded->public_key == pair->public_key);
  auto pub = transport::load_curve_public_keys(dir + "/server.pub");
  REQUIRE(pub.ok());
  CHECK(*pub == std::vector<std::string>{pair->public_key});
  CHECK_FALSE(transport::write_curve_keypair(dir + "/server").ok());  // never overwrites
  std::ofstream(dir + "/bad") << "# a comment\nnot-a-key\n";
  auto bad = transport::load_curve_public_keys(dir + "/bad");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("bad:2") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("ipc: the socket file is mode 0600 whatever the umask, in a 0700 directory of its own") {
  zmq::context_t ctx;
  zmq::socket_t a(ctx, zmq::socket_type::router);
  a.set(zmq::sockopt::linger, 0);
  const std::string ep = transport::make_endpoint("ipc", "", "test");
  const mode_t old_mask = ::umask(0);
  auto bound = transport::bind_endpoint(a, ep);
  ::umask(old_mask);
  REQUIRE(bound.ok());
  struct stat st {};
  REQUIRE(::stat(ep.substr(6).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat(transport::private_ipc_dir().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  CHECK(transport::private_ipc_dir().find("/vela-") != std::string::npos);
}

TEST_CASE("ipc: an endpoint a live server holds is refused; a stale socket file is taken over") {
  zmq::context_t ctx;
  const std::string ep = transport::make_endpoint("ipc", "", "held");
  zmq::socket_t first(ctx, zmq::socket_type::router);
  first.set(zmq::sockopt::linger, 0);
  REQUIRE(transport::bind_endpoint(first, ep).ok());

  zmq::socket_t second(ctx, zmq::socket_type::router);
  second.set(zmq::sockopt::linger, 0);
  auto refused = transport::bind_endpoint(second, ep);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message.find("another live server") != std::string::npos);
  // The first server still has its socket file, and clients still reach it.
  CHECK(std::filesystem::exists(ep.substr(6)));
  zmq::socket_t client(ctx, zmq::socket_type::dealer);
  client.set(zmq::sockopt::linger, 0);
  client.connect(ep);
  (void)transport::send_frames(client, {"x"});
  zmq::pollitem_t item{static_cast<void*>(first), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, 1000ms);
  CHECK(transport::recv_frames(first).has_value());

  // A file nobody listens on (a server that was killed) is no obstacle.
  // A socket file left the way a SIGKILL leaves one: bound, nobody listening.
  const std::string stale = transport::make_endpoint("ipc", "", "stale");
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, stale.substr(6).c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    ::close(fd);  // connect() now gets ECONNREFUSED
  }
  REQUIRE(std::filesystem::exists(stale.substr(6)));
  zmq::socket_t next(ctx, zmq::socket_type::router);
  next.set(zmq::sockopt::linger, 0);
  CHECK(transport::bind_endpoint(next, stale).ok());
}

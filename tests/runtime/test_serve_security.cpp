// `vela serve` as a real process: who may reach it. CURVE on a tcp endpoint, an ipc
// endpoint that another live server holds, sockets private to their owner.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <filesystem>

#include "tests/runtime/serve_fixture.h"
#include "transport/curve_auth.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;
using client::ServerEvent;

namespace {

// A loopback port nobody listens on right now.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Generates one request and waits for its final; its finish_reason, or "" on timeout.
std::string generate_once(client::Client& c, const std::string& id) {
  client::GenerateRequest r;
  r.request_id = id;
  r.prompt_token_ids = std::vector<int32_t>{1, 2, 3};
  r.params.max_tokens = 4;
  if (!c.submit(r)) return "";
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = c.next_event(100ms);
    if (ev && ev->request_id == id && ev->kind == ServerEvent::Kind::kFinal) return ev->finish_reason;
  }
  return "";
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

}  // namespace

TEST_CASE("serve: a second server on a live ipc endpoint exits 2 at once; the first keeps its socket") {
  ServeProcess first("cache:\n  num_gpu_blocks: 64\n");
  auto c = first.connect();
  REQUIRE(c);
  ServeProcess second("cache:\n  num_gpu_blocks: 64\n", "", "synthetic", first.endpoint());
  CHECK(second.wait_exit(15s) == 2);
  // Nothing of the first was taken: its socket file is there and new clients reach it.
  CHECK(std::filesystem::exists(first.endpoint().substr(6)));
  CHECK(c->ping(2s));
  auto fresh = first.connect(5s);
  REQUIRE(fresh);
  CHECK(generate_once(*fresh, "after") == "length");
}

TEST_CASE("serve: the frontend socket is 0600 and the private socket directory 0700") {
  ServeProcess server("cache:\n  num_gpu_blocks: 64\n");
  auto c = server.connect();
  REQUIRE(c);
  CHECK(mode_of(server.endpoint().substr(6)) == 0600);
  int private_dirs = 0;
  for (const auto& e : std::filesystem::directory_iterator(server.dir())) {
    if (!e.is_directory() || e.path().filename().string().rfind("vela-", 0) != 0) continue;
    ++private_dirs;
    CHECK(mode_of(e.path().string()) == 0700);
    for (const auto& s : std::filesystem::directory_iterator(e.path())) {
      INFO(s.path());
      CHECK(mode_of(s.path().string()) == 0600);
    }
  }
  CHECK(private_dirs == 1);  // the engine's; its worker's sockets live in it too
}

TEST_CASE("serve: with security.curve_* a tcp endpoint serves authorized clients only") {
  char tmpl[] = "/tmp/vela-test-curve-XXXXXX";
  const std::string keys = ::mkdtemp(tmpl);
  auto server_keys = transport::write_curve_keypair(keys + "/server");
  auto client_keys = transport::write_curve_keypair(keys + "/client");
  auto stranger_keys = transport::write_curve_keypair(keys + "/stranger");
  REQUIRE(server_keys.ok());
  REQUIRE(client_keys.ok());
  std::filesystem::copy_file(keys + "/client.pub", keys + "/authorized");
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(free_port());
  {
    ServeProcess server("cache:\n  num_gpu_blocks: 64\nsecurity:\n  curve_secret_key_file: " + keys +
                            "/server.key\n  curve_authorized_keys_file: " + keys + "/authorized\n",
                        "", "synthetic", endpoint);
    auto authorized = client::ClientCurveKeys::from_files(keys + "/server.pub", keys + "/client.key");
    REQUIRE(authorized.ok());
    auto c = server.connect(30s, *authorized);
    REQUIRE(c);
    CHECK(generate_once(*c, "ok") == "length");

    auto plain = client::Client::connect(endpoint);
    REQUIRE(plain.ok());
    CHECK_FALSE((*plain)->ping(1500ms));
    auto stranger = client::ClientCurveKeys::from_files(keys + "/server.pub", keys + "/stranger.key");
    REQUIRE(stranger.ok());
    auto s = client::Client::connect(endpoint, *stranger);
    REQUIRE(s.ok());
    CHECK_FALSE((*s)->ping(1500ms));
    CHECK(c->ping(2s));  // the authorized client is unaffected
  }
  std::filesystem::remove_all(keys);
}

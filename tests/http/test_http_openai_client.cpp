// Runs tests/http/openai_client.cjs (the official `openai` npm client) against
// `vela serve` on the demo model with http.port and an API key, handing it the
// ZeroMQ client's greedy text to compare with. Exits 77 (ctest: skipped) when Node.js
// or the package (scripts/fetch_node_deps.sh) is missing.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "tests/http/http_client.h"
#include "tests/runtime/serve_fixture.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;

int main() {
  const std::string module = std::string(VELA_SOURCE_DIR) + "/third_party/node/node_modules/openai";
  std::string ignored;
  if (shell("node -e \"require('" + module + "')\"", &ignored) != 0) {
    std::cerr << "test_http_openai_client: skipped: node or " << module << " missing (scripts/fetch_node_deps.sh)\n";
    return 77;
  }
  const int port = free_port();
  ServeProcess server("http:\n  port: " + std::to_string(port) +
                          "\n  api_key: sk-node\n  max_body_bytes: 100000\ncache:\n  cpu_kv_cache_gib: 0.05\n",
                      "", "model");
  auto zmq = server.connect(60s);
  if (!zmq) return std::cerr << "FAILED: vela serve did not start\n", 1;
  if (!eventually([&] { auto r = http_call(port, "GET", "/health", "", {}, 1s); return r && r->status == 200; }, 30s))
    return std::cerr << "FAILED: /health never answered 200\n", 1;

  // The ZeroMQ client's greedy text for the prompt the script sends.
  const std::string prompt = "def parse(text):\n";
  const int max_tokens = 20;
  client::GenerateRequest r;
  r.request_id = "ref";
  r.prompt = prompt;
  r.params.max_tokens = max_tokens;
  r.params.temperature = 0;
  r.params.ignore_eos = true;
  if (!zmq->submit(r)) return 1;
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  bool done = false;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    auto ev = zmq->next_event(100ms);
    if (!ev || ev->request_id != "ref") continue;
    text += ev->text;
    done = ev->kind != client::ServerEvent::Kind::kDelta;
  }
  if (!done) return std::cerr << "FAILED: no ZeroMQ reply\n", 1;

  const std::string expected = nlohmann::json{{"prompt", prompt}, {"max_tokens", max_tokens}, {"text", text}}.dump();
  ::setenv("VELA_HTTP_BASE", ("http://127.0.0.1:" + std::to_string(port) + "/v1").c_str(), 1);
  ::setenv("VELA_API_KEY", "sk-node", 1);
  ::setenv("VELA_OPENAI_MODULE", module.c_str(), 1);
  ::setenv("VELA_EXPECTED", expected.c_str(), 1);
  std::string out;
  const int rc = shell("timeout 120 node " + std::string(VELA_SOURCE_DIR) + "/tests/http/openai_client.cjs", &out);
  std::cout << out;
  ::kill(server.pid(), SIGTERM);
  const int exit_code = server.wait_exit(30s);
  if (rc != 0) return std::cerr << "test_http_openai_client: FAILED (node exited " << rc << ")\n", 1;
  if (exit_code != 0) return std::cerr << "test_http_openai_client: FAILED: vela serve exited " << exit_code << "\n", 1;
  std::cout << "test_http_openai_client: passed\n";
  return 0;
}

// Runs clients/python/test_client.py (the vela_client package, sync and asyncio)
// against `vela serve` on the demo model, handing it the C++ client's greedy result.
// Exits 77 (ctest: skipped) without python3-zmq and python3-msgpack.
#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "tests/runtime/serve_fixture.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;

int main() {
  std::string python, ignored;
  for (const char* candidate : {"/usr/bin/python3", "python3"})
    if (shell(std::string(candidate) + " -c 'import zmq, msgpack'", &ignored) == 0) {
      python = candidate;
      break;
    }
  if (python.empty()) return std::cerr << "test_python_client: skipped: no python3 with zmq and msgpack\n", 77;
  ServeProcess server("cache:\n  cpu_kv_cache_gib: 0.05\n", "", "model");
  auto c = server.connect(60s);
  if (!c) return std::cerr << "FAILED: vela serve did not start\n", 1;
  client::GenerateRequest r;
  r.request_id = "ref";
  r.prompt = "for i in range(";
  r.params.max_tokens = 16;
  r.params.temperature = 0;
  r.params.ignore_eos = true;
  r.stream = false;
  if (!c->submit(r)) return 1;
  std::optional<client::ServerEvent> final;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!final && std::chrono::steady_clock::now() < deadline) {
    auto ev = c->next_event(100ms);
    if (ev && ev->request_id == "ref" && ev->kind == client::ServerEvent::Kind::kFinal) final = *ev;
  }
  if (!final) return std::cerr << "FAILED: no reference reply\n", 1;
  const std::string ref_path = "/tmp/vela-pyclient-" + std::to_string(::getpid()) + ".json";
  std::ofstream(ref_path) << nlohmann::json{{"prompt", *r.prompt}, {"max_tokens", 16}, {"text", final->text},
                                            {"token_ids", final->token_ids}}.dump();
  std::string out;
  const int rc = shell("timeout 120 " + python + " " + std::string(VELA_SOURCE_DIR) + "/clients/python/test_client.py " +
                           server.endpoint() + " " + ref_path, &out);
  std::cout << out;
  ::unlink(ref_path.c_str());
  ::kill(server.pid(), SIGTERM);
  const int code = server.wait_exit(30s);
  if (rc != 0 || code != 0) return std::cerr << "test_python_client: FAILED (python " << rc << ", serve " << code << ")\n", 1;
  std::cout << "test_python_client: passed\n";
  return 0;
}

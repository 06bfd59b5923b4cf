// Runs the Python example of docs/PROTOCOL.md (the ```python block, unchanged but for
// VELA_ENDPOINT) against `vela serve` on qwen3-tiny and checks that it prints exactly
// what the C++ client receives for the same request. Exits 77 (ctest: skipped) when
// no python3 with the zmq and msgpack modules is found.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "tests/runtime/serve_fixture.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;

namespace {

constexpr int kSkipped = 77;


// The Debian interpreter first: a python3 earlier on PATH (pyenv, venv) may lack
// the Debian packages python3-zmq and python3-msgpack.
std::string find_python() {
  for (const char* candidate : {"/usr/bin/python3", "python3"})
    if (shell(std::string(candidate) + " -c 'import zmq, msgpack'") == 0) return candidate;
  return "";
}

std::string python_example() {
  std::ifstream in(std::string(VELA_SOURCE_DIR) + "/docs/PROTOCOL.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const size_t begin = doc.find("```python\n");
  if (begin == std::string::npos) return "";
  const size_t end = doc.find("```", begin + 10);
  return end == std::string::npos ? "" : doc.substr(begin + 10, end - begin - 10);
}

// The example's request through the C++ client: what the example must print.
std::optional<std::string> expected_output(client::Client& c) {
  client::GenerateRequest r;
  r.request_id = "reference";
  r.prompt = "The capital of France is";
  r.params.max_tokens = 32;
  r.params.temperature = 0;
  r.params.stop = {"\n"};
  std::string streamed;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  if (!c.submit(r)) return std::nullopt;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = c.next_event(100ms);
    if (!ev || ev->request_id != r.request_id) continue;
    if (ev->kind == client::ServerEvent::Kind::kDelta) streamed += ev->text;
    if (ev->kind == client::ServerEvent::Kind::kFinal)
      return streamed + ev->text + "\n[" + ev->finish_reason + ", " + std::to_string(ev->num_output_tokens) + " tokens]\n";
    if (ev->kind == client::ServerEvent::Kind::kError) return std::nullopt;
  }
  return std::nullopt;
}

int fail(const std::string& why) {
  std::cerr << "test_protocol_example: FAILED: " << why << "\n";
  return 1;
}

}  // namespace

int main() {
  const std::string python = find_python();
  if (python.empty()) {
    std::cout << "test_protocol_example: SKIPPED: no python3 with the zmq and msgpack modules "
                 "(Debian: apt-get install python3-zmq python3-msgpack; scripts/setup.sh installs them)\n";
    return kSkipped;
  }
  const std::string example = python_example();
  if (example.find("import") == std::string::npos) return fail("no ```python block in docs/PROTOCOL.md");
  const std::string script = "/tmp/vela-protocol-example-" + std::to_string(::getpid()) + ".py";
  std::ofstream(script) << example;

  ServeProcess server("model:\n  path: " + std::string(VELA_REFERENCE_DIR) +
                          "/models/qwen3-tiny\ncache:\n  cpu_kv_cache_gib: 0.05\n",
                      "", "model");
  auto c = server.connect();
  if (!c) return fail("vela serve did not come up");
  auto expected = expected_output(*c);
  if (!expected) return fail("the C++ client got no final for the example's request");

  std::string printed;
  const int rc = shell("VELA_ENDPOINT=" + server.endpoint() + " timeout 60 " + python + " " + script, &printed);
  if (rc != 0) return fail("the example exited with " + std::to_string(rc) + ":\n" + printed);
  if (printed != *expected)
    return fail("the example printed\n---\n" + printed + "---\nbut the C++ client received\n---\n" + *expected + "---");
  std::cout << "test_protocol_example: the example printed what the C++ client received:\n" << printed;

  // The liveness rule: against a server that no longer answers (stopped: to a client
  // the same as killed) the example gives up within seconds, saying why.
  ::kill(server.pid(), SIGSTOP);
  std::string gone;
  const auto t0 = std::chrono::steady_clock::now();
  const int gone_rc = shell("VELA_ENDPOINT=" + server.endpoint() + " timeout 30 " + python + " " + script, &gone);
  const double waited_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::kill(server.pid(), SIGKILL);
  std::remove(script.c_str());
  if (gone_rc == 0 || gone_rc == 124 || gone.find("vela serve is gone") == std::string::npos)
    return fail("against a stopped server the example exited " + std::to_string(gone_rc) + ":\n" + gone);
  if (waited_s > 10) return fail("the example took " + std::to_string(waited_s) + " s to give up on a stopped server");
  std::cout << "test_protocol_example: against a stopped server it gave up after " << waited_s << " s\n";
  return 0;
}

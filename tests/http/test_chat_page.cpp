// The chat page (GET /) in headless Chromium against `vela serve` on the demo model:
// the page loads, a message is sent (the page's #q= link), streamed text appears in
// the assistant's bubble; a screenshot is saved (build/tests/http/chat_page.png).
// Exits 77 (ctest: skipped) without Debian's chromium.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "tests/http/http_client.h"
#include "tests/runtime/serve_fixture.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;

namespace {

int fail(const std::string& why) {
  std::cerr << "test_chat_page: FAILED: " << why << "\n";
  return 1;
}

}  // namespace

int main() {
  std::string ignored;
  if (shell("command -v chromium", &ignored, false) != 0) {
    std::cerr << "test_chat_page: skipped: no chromium\n";
    return 77;
  }
  const int port = free_port();
  ServeProcess server("http:\n  port: " + std::to_string(port) + "\ncache:\n  cpu_kv_cache_gib: 0.05\n", "", "model");
  if (!eventually([&] { auto r = http_call(port, "GET", "/health", "", {}, 1s); return (r && r->status == 200) || !process_alive(server.pid()); }, 60s) ||
      !process_alive(server.pid()))
    return fail("vela serve did not become healthy");
  auto page = http_call(port, "GET", "/");
  if (!page || page->status != 200 || page->body.find("<title>Vela chat</title>") == std::string::npos)
    return fail("GET / did not serve the page");

  const std::string url = "'http://127.0.0.1:" + std::to_string(port) + "/#q=def%20main():&max_tokens=24'";
  const std::string flags =
      "timeout 90 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
      "--user-data-dir=/tmp/vela-chromium-" + std::to_string(::getpid()) + " --virtual-time-budget=15000 --window-size=1100,700 ";
  std::string dom;
  shell(flags + "--dump-dom " + url, &dom, false);
  const auto user = dom.find("class=\"msg user\">def main():</div>");
  const auto assistant = dom.find("class=\"msg assistant\">");
  if (user == std::string::npos) return fail("the sent message is not on the page:\n" + dom.substr(0, 2000));
  if (assistant == std::string::npos) return fail("no assistant reply (an error bubble?):\n" + dom.substr(0, 4000));
  const size_t text_begin = assistant + 22;
  const std::string reply = dom.substr(text_begin, dom.find("</div>", text_begin) - text_begin);
  if (reply.empty()) return fail("the assistant's bubble stayed empty");
  std::cout << "streamed reply on the page: " << reply << "\n";

  const std::string png = std::string(VELA_BINARY_DIR) + "/tests/http/chat_page.png";
  std::filesystem::remove(png);
  std::string out;
  shell(flags + "--screenshot=" + png + " " + url, &out, false);
  if (!std::filesystem::exists(png) || std::filesystem::file_size(png) < 1000) return fail("no screenshot at " + png);
  std::cout << "screenshot: " << png << "\n";
  std::filesystem::remove_all("/tmp/vela-chromium-" + std::to_string(::getpid()));
  ::kill(server.pid(), SIGTERM);
  if (int code = server.wait_exit(30s); code != 0) return fail("vela serve exited " + std::to_string(code));
  std::cout << "test_chat_page: passed\n";
  return 0;
}

// `vela chat --server` as a user runs it, against `vela serve` on qwen3-tiny: lines
// typed on stdin become turns of one conversation whose replies are the server's
// replies to the same `messages`; Ctrl-C aborts a reply and the REPL goes on; EOF
// exits 0.
#include <catch2/catch.hpp>

#include <set>

#include "tests/model/golden.h"
#include "tests/runtime/piped_process.h"
#include "tests/runtime/serve_fixture.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;
using client::ServerEvent;

namespace {

std::string vela_bin() { return std::string(VELA_BINARY_DIR) + "/bin/vela"; }

std::string model_yaml() {
  return "model:\n  path: " + model_dir("qwen3-tiny") + "\ncache:\n  cpu_kv_cache_gib: 0.05\n";
}

// The server's whole reply to `turns` (greedy, max_tokens), as `vela chat` asks for it.
std::pair<std::string, std::string> reply_to(client::Client& c, const std::vector<client::ChatTurn>& turns,
                                             int max_tokens) {
  static int counter = 0;
  client::GenerateRequest r;
  r.request_id = "ref-" + std::to_string(counter++);
  r.messages = turns;
  r.params.temperature = 0;
  r.params.max_tokens = max_tokens;
  REQUIRE(c.submit(r).ok());
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = c.next_event(100ms);
    if (!ev || ev->request_id != r.request_id) continue;
    REQUIRE(ev->kind != ServerEvent::Kind::kError);
    text += ev->text;
    if (ev->kind == ServerEvent::Kind::kFinal) return {text, ev->finish_reason};
  }
  FAIL("no final for " << r.request_id << " within 20 s");
  return {};
}

}  // namespace

TEST_CASE("vela chat: piped lines are turns of one conversation; EOF exits 0") {
  ServeProcess server(model_yaml(), "", "model");
  auto c = server.connect();
  REQUIRE(c);
  PipedProcess chat({vela_bin(), "chat", "--server", server.endpoint(), "--system", "You are terse.", "--max-tokens",
                     "8", "--temperature", "0"});
  REQUIRE(chat.pid() > 0);
  REQUIRE(chat.write("Hello there\n\nWhat is your name?\n"));  // the empty line is skipped
  chat.close_stdin();
  const int rc = chat.wait_exit(30s);
  const std::string out = chat.output();
  INFO("vela chat printed:\n" << out);
  CHECK(rc == 0);
  CHECK(out.find("vela:") == std::string::npos);  // no error

  // The same conversation, asked directly: each reply is in the output, in order.
  std::vector<client::ChatTurn> turns = {{"system", "You are terse."}, {"user", "Hello there"}};
  auto [first, first_finish] = reply_to(*c, turns, 8);
  turns.push_back({"assistant", first});
  turns.push_back({"user", "What is your name?"});
  auto [second, second_finish] = reply_to(*c, turns, 8);
  INFO("replies: '" << first << "' (" << first_finish << "), '" << second << "' (" << second_finish << ")");
  REQUIRE_FALSE((first + second).empty());
  const size_t at_first = out.find(first);
  REQUIRE(at_first != std::string::npos);
  CHECK(out.find(second, at_first + first.size()) != std::string::npos);
}

TEST_CASE("vela chat: Ctrl-C aborts the reply on the engine and returns to the prompt") {
  ServeProcess server(model_yaml(), "", "model");
  REQUIRE(server.connect());
  PipedProcess chat({vela_bin(), "chat", "--server", server.endpoint(), "--max-tokens", "3000", "--temperature", "0"});
  REQUIRE(chat.pid() > 0);
  for (int turn = 0; turn < 2; ++turn) {
    const size_t before = chat.output().size();
    REQUIRE(chat.write(turn == 0 ? "Tell me a long story.\n" : "Another one, please.\n"));
    // The reply is streaming: interrupt it.
    REQUIRE(chat.read_until([&](const std::string& o) { return o.size() > before + 8; }, 20s));
    ::kill(chat.pid(), SIGINT);
    INFO("vela chat printed:\n" << chat.output());
    REQUIRE(chat.read_until([&](const std::string& o) { return o.find("[aborted]", before) != std::string::npos; }, 10s));
  }
  chat.close_stdin();
  CHECK(chat.wait_exit(10s) == 0);
}

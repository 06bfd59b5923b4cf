// The frontend's detokenizers (frontend.detokenizer_threads) through a real `vela
// serve` (synthetic runner, the demo model's tokenizer): a request whose text is slow
// to make delays only itself; through the pool every request's events stay in order
// and end with exactly one final; stop strings truncate exactly as TextOutput does
// in-process; aborts and hang-ups in the middle of a slow request's detokenization
// end cleanly.
#include <map>

#include "llm/text_output.h"
#include "tests/faults/fault_helpers.h"
#include "tokenizer/tokenizer.h"

using namespace vela;
using namespace vela::testing;
using client::ServerEvent;

namespace {

const Tokenizer& demo_tokenizer() {  // the server's: model.path defaults to models/demo
  static auto tok = Tokenizer::from_file(std::string(VELA_SOURCE_DIR) + "/models/demo/tokenizer.json");
  REQUIRE(tok.ok());
  return **tok;
}

// What the server must send for a request: TextOutput fed the synthetic runner's
// tokens one step (one token) at a time, as the engine delivers them.
struct Expected {
  std::vector<int32_t> tokens;
  std::string text;
  std::string finish_reason = "length";
  std::string stop_reason;
};

Expected reference(const std::vector<int32_t>& prompt, int max_tokens, const std::vector<std::string>& stop) {
  TextOutput out(&demo_tokenizer(), stop);
  Expected e;
  for (int32_t t : expected_synthetic(prompt, max_tokens)) {
    if (auto s = out.append({t})) {
      e.finish_reason = "stop";
      e.stop_reason = *s;
      break;
    }
  }
  e.tokens = out.token_ids();
  e.text = out.take_rest();
  return e;
}

// Everything one request received, in arrival order.
struct Received {
  std::vector<int32_t> tokens;
  std::string text;
  int finals = 0;
  int after_final = 0;  // events that came after its final (must be none)
  std::string finish_reason, stop_reason, message;
};

void receive(std::map<std::string, Received>& got, const ServerEvent& ev) {
  auto& r = got[ev.request_id];
  if (r.finals > 0) r.after_final++;
  r.tokens.insert(r.tokens.end(), ev.token_ids.begin(), ev.token_ids.end());
  r.text += ev.text;
  if (ev.kind == ServerEvent::Kind::kFinal) {
    r.finals++;
    r.finish_reason = ev.finish_reason;
    r.stop_reason = ev.stop_reason;
    r.message = ev.message;
  } else if (ev.kind == ServerEvent::Kind::kError) {
    r.finals++;
    r.finish_reason = "refused:" + ev.code;
    r.message = ev.message;
  }
}

// Reads until each id has a final (or the deadline), then 200 ms more (a second final would show).
void receive_all(client::Client& c, const std::set<std::string>& ids, std::map<std::string, Received>& got,
                 std::chrono::milliseconds timeout) {
  auto done = [&] {
    for (const auto& id : ids)
      if (!got.count(id) || got[id].finals == 0) return false;
    return true;
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline)
    if (auto ev = c.next_event(50ms)) receive(got, *ev);
  const auto extra = std::chrono::steady_clock::now() + 200ms;
  while (std::chrono::steady_clock::now() < extra)
    if (auto ev = c.next_event(50ms)) receive(got, *ev);
}

// A request whose every step costs the detokenizer milliseconds: `n` stop strings
// that begin like the text does (a space) and never match, each searched for at
// every append over the last 4 kB of text (the longest stop string's reach).
client::GenerateRequest slow_request(const std::string& id, int max_tokens, int n = 40000) {
  auto r = synthetic_request(id, {7, 7, 7}, max_tokens);
  r.params.stop.reserve(static_cast<size_t>(n) + 1);
  for (int i = 0; i < n; ++i) r.params.stop.push_back(" " + std::to_string(i) + "\x01");
  r.params.stop.push_back(std::string(4096, '\x01'));
  return r;
}

}  // namespace

TEST_CASE("detokenizers: a request slow to detokenize delays only its own stream") {
  ServeProcess server("cache:\n  num_gpu_blocks: 256\nfrontend:\n  detokenizer_threads: 2\n");
  auto c = server.connect();
  REQUIRE(c);
  const int n = 400;
  auto slow = slow_request("slow", n);
  // Its cost in-process: what one thread must spend on its text, whoever runs it.
  const auto t_ref = std::chrono::steady_clock::now();
  const Expected slow_expected = reference(slow.prompt_token_ids.value(), n, slow.params.stop);
  const double slow_cost_s = seconds_since(t_ref);
  auto fast = synthetic_request("fast", {3, 1, 4}, n);  // as long: serial detokenization would end it with the slow one

  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(c->submit(slow).ok());
  REQUIRE(c->submit(fast).ok());
  std::map<std::string, Received> got;
  std::map<std::string, double> done_s;
  const auto deadline = t0 + 60s;
  while (done_s.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    auto ev = c->next_event(50ms);
    if (!ev) continue;
    receive(got, *ev);
    if (is_end(*ev)) done_s[ev->request_id] = seconds_since(t0);
  }
  REQUIRE(done_s.size() == 2);
  std::printf("[detok] %d tokens each: the slow request's text costs %.2f s in-process; served: slow done in %.2f s, "
              "fast done in %.2f s\n", n, slow_cost_s, done_s["slow"], done_s["fast"]);
  std::fflush(stdout);
  CHECK(got["slow"].finish_reason == "length");
  CHECK(got["slow"].tokens == slow_expected.tokens);
  CHECK(got["fast"].finish_reason == "length");
  CHECK(got["fast"].tokens == expected_synthetic({3, 1, 4}, n));
  // The test means something only if the slow request really was slow to serve.
  REQUIRE(done_s["slow"] > 0.5);
  // On one thread the fast request's last token would wait behind the slow one's
  // 400 appends: it would end with it. On its own detokenizer it ends long before.
  CHECK(done_s["fast"] < 0.5 * done_s["slow"]);
}

TEST_CASE("detokenizers: through the pool each request's events are in order, end in one final, and stop strings "
          "truncate as in-process") {
  ServeProcess server("cache:\n  num_gpu_blocks: 512\nfrontend:\n  detokenizer_threads: 3\n");
  auto c = server.connect();
  REQUIRE(c);
  std::map<std::string, Expected> expected;
  std::map<std::string, bool> streamed;
  std::set<std::string> ids;
  int num_stopped = 0;
  for (int i = 0; i < 48; ++i) {
    std::vector<int32_t> prompt;
    for (int j = 0; j < 4 + i % 11; ++j) prompt.push_back((i * 131 + j * 7) % 32000);
    const int max_tokens = 24 + i % 25;
    auto r = synthetic_request("r" + std::to_string(i), prompt, max_tokens);
    r.stream = i % 4 != 3;
    if (i % 3 != 2) {
      // A stop string from the second half of the full text: two ASCII characters.
      const std::string text = reference(prompt, max_tokens, {}).text;
      for (size_t p = text.size() / 2; p + 1 < text.size(); ++p) {
        const auto a = static_cast<unsigned char>(text[p]), b = static_cast<unsigned char>(text[p + 1]);
        if (a >= 0x20 && a < 0x7f && b >= 0x20 && b < 0x7f) {
          r.params.stop.push_back(text.substr(p, 2));
          break;
        }
      }
      if (i % 3 == 1) r.params.stop.push_back("never in this text\x01");
    }
    expected[r.request_id] = reference(prompt, max_tokens, r.params.stop);
    num_stopped += expected[r.request_id].finish_reason == "stop";
    streamed[r.request_id] = r.stream;
    ids.insert(r.request_id);
    REQUIRE(c->submit(r).ok());
  }
  REQUIRE(num_stopped >= 16);  // the stop strings are really exercised
  std::map<std::string, Received> got;
  receive_all(*c, ids, got, 60s);
  for (const auto& id : ids) {
    const Expected& e = expected[id];
    const Received& r = got[id];
    INFO(id << " stream=" << streamed[id] << " " << r.finish_reason << " " << r.message);
    CHECK(r.finals == 1);
    CHECK(r.after_final == 0);
    CHECK(r.finish_reason == e.finish_reason);
    CHECK(r.stop_reason == e.stop_reason);
    CHECK(r.tokens == e.tokens);  // deltas then final, in order
    CHECK(r.text == e.text);      // the text ends right before the stop string
  }

  // A request id is free again the moment its final arrives (the frontend forgets a
  // request before its detokenizer sends the final).
  for (int round = 0; round < 20; ++round) {
    auto r = synthetic_request("again", {5, 6, 7}, 2 + round % 3);
    REQUIRE(c->submit(r).ok());
    std::map<std::string, Received> once;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while ((!once.count("again") || once["again"].finals == 0) && std::chrono::steady_clock::now() < deadline)
      if (auto ev = c->next_event(50ms)) receive(once, *ev);
    INFO("round " << round << ": " << once["again"].finish_reason << " " << once["again"].message);
    REQUIRE(once["again"].finish_reason == "length");
  }
}

TEST_CASE("detokenizers: an abort and a hang-up in the middle of a slow request's detokenization end cleanly") {
  ServeProcess server("cache:\n  num_gpu_blocks: 256\nfrontend:\n  detokenizer_threads: 2\n");
  auto c = server.connect();
  REQUIRE(c);
  {  // A second connection: a slow request and others, gone while the slow one's text is being made.
    auto gone = server.connect();
    REQUIRE(gone);
    REQUIRE(gone->submit(slow_request("slow-gone", 400)).ok());
    submit_n(*gone, "gone", 8, 200);
    REQUIRE(gone->next_event(5s));  // streaming has begun
  }
  auto slow = slow_request("slow", 400);
  REQUIRE(c->submit(slow).ok());
  std::set<std::string> ids = submit_n(*c, "n", 8, 64);
  ids.insert("slow");
  std::map<std::string, Received> got;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((!got.count("slow") || got["slow"].tokens.empty()) && std::chrono::steady_clock::now() < deadline)
    if (auto ev = c->next_event(50ms)) receive(got, *ev);
  REQUIRE(c->abort("slow").ok());
  receive_all(*c, ids, got, 60s);
  for (const auto& id : ids) {
    INFO(id << " " << got[id].finish_reason << " " << got[id].message);
    CHECK(got[id].finals == 1);
    CHECK(got[id].after_final == 0);
  }
  // The engine may have produced all of it before the abort came: then its final says so.
  CHECK((got["slow"].finish_reason == "abort" || got["slow"].finish_reason == "length"));
  for (const auto& id : ids)
    if (id != "slow") CHECK(got[id].finish_reason == "length");
  bool all_free = false;
  const std::string blocks = wait_all_blocks_free(*c, 30s, &all_free);
  std::printf("[detok] abort mid-detokenization and a client gone with a slow request open: blocks %s\n",
              blocks.c_str());
  std::fflush(stdout);
  CHECK(all_free);
  auto after = health(*c);
  REQUIRE(after);
  CHECK(after->status == "serving");
}

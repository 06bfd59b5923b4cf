// `vela serve` with http.port set, as a real process on the demo model: SSE framing
// byte for byte, OpenAI errors and statuses, the API key, limits, /metrics against
// the requests sent, a client that leaves mid-stream, and greedy text equal to the
// ZeroMQ client's for the same prompts.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <dirent.h>
#include <fcntl.h>

#include <regex>
#include <thread>

#include "tests/http/http_client.h"
#include "tests/runtime/serve_fixture.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const std::vector<std::string> kAuth = {"Authorization: Bearer sk-vela-test"};

bool wait_healthy(int port, ServeProcess& server) {
  return eventually(
      [&] {
        if (!process_alive(server.pid())) return true;
        auto r = http_call(port, "GET", "/health", "", {}, 1s);
        return r && r->status == 200;
      },
      60s) && process_alive(server.pid());
}

// The ZeroMQ client's greedy text for a prompt.
std::string zmq_text(client::Client& c, const std::string& id, const std::string& prompt, int max_tokens) {
  client::GenerateRequest r;
  r.request_id = id;
  r.prompt = prompt;
  r.params.max_tokens = max_tokens;
  r.params.temperature = 0;
  r.params.ignore_eos = true;
  REQUIRE(c.submit(r).ok());
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = c.next_event(100ms);
    if (!ev || ev->request_id != id) continue;
    text += ev->text;
    if (ev->kind != client::ServerEvent::Kind::kDelta) break;
  }
  return text;
}

// The sum of one metric's samples whose line contains `labels`.
double metric(const std::string& text, const std::string& name, const std::string& labels = "") {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0) continue;
    if (!labels.empty() && line.find(labels) == std::string::npos) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

std::string completion_body(const std::string& prompt, int max_tokens, bool stream) {
  json b = {{"model", "demo"}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", true}};
  if (stream) {
    b["stream"] = true;
    b["stream_options"] = {{"include_usage", true}};
  }
  return b.dump();
}

}  // namespace

TEST_CASE("http: SSE framing, errors, key, metrics and the ZeroMQ client's greedy text") {
  const int port = free_port();
  ServeProcess server("http:\n  port: " + std::to_string(port) +
                          "\n  api_key: sk-vela-test\n  max_body_bytes: 65536\n  max_header_bytes: 4096\n"
                          "cache:\n  cpu_kv_cache_gib: 0.05\n",
                      "", "model");
  auto zmq = server.connect(60s);
  REQUIRE(zmq);
  REQUIRE(wait_healthy(port, server));

  SECTION("models, health, tokenize / detokenize") {
    auto models = http_call(port, "GET", "/v1/models", "", kAuth);
    REQUIRE(models);
    CHECK(models->status == 200);
    CHECK(json::parse(models->body)["data"][0]["id"] == "demo");
    auto tok = http_call(port, "POST", "/tokenize", R"({"prompt":"def main():"})", kAuth);
    REQUIRE(tok);
    REQUIRE(tok->status == 200);
    auto ids = json::parse(tok->body)["tokens"];
    CHECK(ids.size() >= 2);
    auto detok = http_call(port, "POST", "/detokenize", json{{"tokens", ids}}.dump(), kAuth);
    REQUIRE(detok);
    CHECK(json::parse(detok->body)["prompt"] == "def main():");
  }

  SECTION("a streamed completion: chunked, one SSE event per chunk, usage, [DONE]; same text unstreamed and over ZeroMQ") {
    const std::string prompt = "import os\n\ndef ";
    auto r = http_call(port, "POST", "/v1/completions", completion_body(prompt, 24, true), kAuth);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    CHECK(r->headers["content-type"] == "text/event-stream");
    CHECK(r->headers["transfer-encoding"] == "chunked");
    CHECK(r->framing_ok);
    const std::regex event(R"(^data: \{[^\n]*\}\n\n$|^data: \[DONE\]\n\n$)");  // one event per chunk
    std::string text;
    int usage_chunks = 0;
    for (size_t i = 0; i < r->chunks.size(); ++i) {
      INFO(r->chunks[i]);
      CHECK(std::regex_match(r->chunks[i], event));
    }
    REQUIRE(r->body.size() > 14);
    CHECK(r->body.substr(r->body.size() - 14) == "data: [DONE]\n\n");
    size_t pos = 0;
    std::string finish;
    while ((pos = r->body.find("data: {", pos)) != std::string::npos) {
      const size_t end = r->body.find("\n\n", pos);
      auto j = json::parse(r->body.substr(pos + 6, end - pos - 6));
      CHECK(j["object"] == "text_completion");
      if (j["choices"].empty()) {
        ++usage_chunks;
        CHECK(j["usage"]["completion_tokens"] == 24);
        CHECK(j["usage"]["prompt_tokens"].get<int>() > 0);
      } else {
        text += j["choices"][0]["text"].get<std::string>();
        if (!j["choices"][0]["finish_reason"].is_null()) finish = j["choices"][0]["finish_reason"];
        CHECK(j["usage"].is_null());
      }
      pos = end;
    }
    CHECK(usage_chunks == 1);
    CHECK(finish == "length");
    auto plain = http_call(port, "POST", "/v1/completions", completion_body(prompt, 24, false), kAuth);
    REQUIRE(plain);
    REQUIRE(plain->status == 200);
    auto pj = json::parse(plain->body);
    CHECK(pj["choices"][0]["text"] == text);
    CHECK(pj["usage"]["completion_tokens"] == 24);
    CHECK(zmq_text(*zmq, "ref", prompt, 24) == text);
  }

  SECTION("8 concurrent HTTP streams give the ZeroMQ client's greedy text") {
    std::vector<std::string> prompts, got(8), want(8);
    for (int i = 0; i < 8; ++i) prompts.push_back("class C" + std::to_string(i) + ":\n    def ");
    for (int i = 0; i < 8; ++i) want[i] = zmq_text(*zmq, "z" + std::to_string(i), prompts[i], 16 + i);
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i)
      threads.emplace_back([&, i] {
        auto r = http_call(port, "POST", "/v1/completions", completion_body(prompts[i], 16 + i, true), kAuth);
        if (!r || r->status != 200) return;
        size_t pos = 0;
        while ((pos = r->body.find("data: {", pos)) != std::string::npos) {
          const size_t end = r->body.find("\n\n", pos);
          auto j = json::parse(r->body.substr(pos + 6, end - pos - 6));
          if (!j["choices"].empty()) got[i] += j["choices"][0]["text"].get<std::string>();
          pos = end;
        }
      });
    for (auto& t : threads) t.join();
    for (int i = 0; i < 8; ++i) {
      INFO(i);
      CHECK(got[i] == want[i]);
    }
  }

  SECTION("errors: OpenAI error objects with the right status, the parameter named") {
    struct Case { std::string method, path, body; std::vector<std::string> headers; int status; std::string param; };
    const std::string big(70000, 'x');
    std::vector<Case> cases = {
        {"POST", "/v1/completions", R"({"prompt":"a","echo":true})", kAuth, 400, "echo"},
        {"POST", "/v1/completions", R"({"prompt":"a","temperature":-1})", kAuth, 400, "temperature"},
        {"POST", "/v1/completions", R"({"prompt":"a","max_tokens":100000})", kAuth, 400, "max_tokens"},
        {"POST", "/v1/completions", R"({"prompt":[1,99999]})", kAuth, 400, "prompt"},
        {"POST", "/v1/chat/completions", R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})", kAuth, 404, "model"},
        {"POST", "/v1/chat/completions", R"({"messages":[{"role":"robot","content":"hi"}]})", kAuth, 400, "messages[0].role"},
        {"POST", "/v1/completions", "{oops", kAuth, 400, ""},
        {"POST", "/v1/completions", R"({"prompt":"a"})", {}, 401, ""},
        {"POST", "/v1/completions", R"({"prompt":"a"})", {"Authorization: Bearer wrong"}, 401, ""},
        {"POST", "/v1/completions", R"({"prompt":")" + big + R"("})", kAuth, 413, ""},
        {"GET", "/v1/completions", "", kAuth, 405, ""},
        {"GET", "/v2/nothing", "", kAuth, 404, ""},
        {"GET", "/v1/models", "", {"X-Big: " + std::string(5000, 'h')}, 431, ""},
    };
    for (const auto& k : cases) {
      INFO(k.method << " " << k.path << " " << k.body.substr(0, 80));
      auto r = http_call(port, k.method, k.path, k.body, k.headers, 20s);
      REQUIRE(r);
      CHECK(r->status == k.status);
      auto j = json::parse(r->body, nullptr, false);
      REQUIRE(j.is_object());
      REQUIRE(j.contains("error"));
      CHECK(j["error"]["message"].get<std::string>().size() > 0);
      if (!k.param.empty()) CHECK(j["error"]["param"] == k.param);
    }
    // A client that asks "Expect: 100-continue" (curl, for bodies over 1 KiB) is told to go on.
    int fd = connect_to(port);
    REQUIRE(fd >= 0);
    const std::string body = completion_body("x = " + std::string(2000, ' ') + "y", 2, false);
    send_all(fd, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-vela-test\r\nExpect: 100-continue\r\n"
                 "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
    pollfd p{fd, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 5000) == 1);
    char buf[64];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    CHECK(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))) == "HTTP/1.1 100 Continue\r\n\r\n");
    send_all(fd, body);
    auto continued = parse_response(read_all(fd, 20s));
    ::close(fd);
    REQUIRE(continued);
    CHECK(continued->status == 200);
    // Still serving.
    auto ok = http_call(port, "POST", "/v1/completions", completion_body("x = ", 4, false), kAuth);
    REQUIRE(ok);
    CHECK(ok->status == 200);
  }

  SECTION("a client that leaves mid-stream has its request aborted; /metrics counts what was sent") {
    int fd = connect_to(port);
    REQUIRE(fd >= 0);
    const std::string body = completion_body("def f(x):\n", 1500, true);
    send_all(fd, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-vela-test\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body);
    // The first event arrives, then the client is gone.
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (got.find("data: {") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      char buf[4096];
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) > 0) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
      }
    }
    REQUIRE(got.find("data: {") != std::string::npos);
    ::close(fd);
    CHECK(eventually(
        [&] {
          auto m = http_call(port, "GET", "/metrics", "", {}, 5s);
          return m && metric(m->body, "vela:request_success_total", "finished_reason=\"abort\"") == 1 &&
                 metric(m->body, "vela:num_requests_running") == 0 && metric(m->body, "vela:kv_cache_usage_perc") == 0;
        },
        20s));
    // Counters match: 3 more requests of 5 tokens each, one of them refused.
    auto before = http_call(port, "GET", "/metrics", "", {}, 5s);
    REQUIRE(before);
    for (int i = 0; i < 2; ++i)
      REQUIRE(http_call(port, "POST", "/v1/completions", completion_body("y = ", 5, i == 0), kAuth)->status == 200);
    REQUIRE(http_call(port, "POST", "/v1/completions", R"({"prompt":"a","top_p":7})", kAuth)->status == 400);
    auto after = http_call(port, "GET", "/metrics", "", {}, 5s);
    REQUIRE(after);
    CHECK(after->headers["content-type"].rfind("text/plain; version=0.0.4", 0) == 0);
    CHECK(metric(after->body, "vela:request_success_total", "finished_reason=\"length\"") -
              metric(before->body, "vela:request_success_total", "finished_reason=\"length\"") == 2);
    CHECK(metric(after->body, "vela:generation_tokens_total") - metric(before->body, "vela:generation_tokens_total") == 10);
    CHECK(metric(after->body, "vela:request_refused_total") - metric(before->body, "vela:request_refused_total") == 1);
    CHECK(metric(after->body, "vela:time_to_first_token_seconds_count") -
              metric(before->body, "vela:time_to_first_token_seconds_count") == 2);
    CHECK(metric(after->body, "vela:request_queue_time_seconds_count") -
              metric(before->body, "vela:request_queue_time_seconds_count") == 2);
    CHECK(metric(after->body, "vela:replica_healthy") == 1);
    CHECK(metric(after->body, "vela:http_responses_total", "route=\"/v1/completions\",code=\"200\"") >= 2);
  }
  ::kill(server.pid(), SIGTERM);
  CHECK(server.wait_exit(30s) == 0);
}

TEST_CASE("http: connection limit, per-connection rate limit, and a missing key variable refuses to start") {
  const int port = free_port();
  ServeProcess server("http:\n  port: " + std::to_string(port) + "\n  max_connections: 3\n  max_requests_per_s: 2\n");
  REQUIRE(wait_healthy(port, server));
  // Rate: three requests pipelined on one connection; the bucket holds two.
  int fd = connect_to(port);
  REQUIRE(fd >= 0);
  std::string three;
  for (int i = 0; i < 3; ++i) three += "GET /v1/models HTTP/1.1\r\nHost: x\r\n" + std::string(i == 2 ? "Connection: close\r\n" : "") + "\r\n";
  send_all(fd, three);
  const std::string replies = read_all(fd, 10s);
  ::close(fd);
  std::vector<int> statuses;
  for (size_t p = 0; (p = replies.find("HTTP/1.1 ", p)) != std::string::npos; p += 9) statuses.push_back(std::atoi(replies.c_str() + p + 9));
  CHECK(statuses == std::vector<int>{200, 200, 429});
  // Connections: three held open, the fourth gets 503 and is closed.
  std::vector<int> held;
  for (int i = 0; i < 3; ++i) held.push_back(connect_to(port));
  std::this_thread::sleep_for(200ms);
  auto over = http_call(port, "GET", "/health", "", {}, 5s);
  REQUIRE(over);
  CHECK(over->status == 503);
  CHECK(json::parse(over->body)["error"]["code"] == "too_many_connections");
  for (int h : held) ::close(h);
  CHECK(eventually([&] { auto r = http_call(port, "GET", "/health", "", {}, 2s); return r && r->status == 200; }, 10s));

  const int port2 = free_port();
  ServeProcess keyless("http:\n  port: " + std::to_string(port2) + "\n  api_key_env: VELA_TEST_UNSET_KEY_VARIABLE\n");
  CHECK(keyless.wait_exit(30s) == 2);
}

TEST_CASE("http: 500 concurrent streams on one HTTP thread (synthetic runner), all complete") {
  const int port = free_port();
  ServeProcess server("http:\n  port: " + std::to_string(port) +
                          "\nscheduler:\n  max_num_seqs: 512\n  max_num_batched_tokens: 4096\ncache:\n  num_gpu_blocks: 2048\n",
                      "", "synthetic@5000");
  REQUIRE(wait_healthy(port, server));
  auto num_threads = [&] {
    int n = 0;
    if (DIR* d = ::opendir(("/proc/" + std::to_string(server.pid()) + "/task").c_str())) {
      while (auto* e = ::readdir(d)) n += e->d_name[0] != '.';
      ::closedir(d);
    }
    return n;
  };
  const int threads_before = num_threads();
  constexpr int kStreams = 500;
  const std::string body = R"({"prompt":[5,6,7],"max_tokens":12,"temperature":0,"ignore_eos":true,"stream":true})";
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  std::vector<pollfd> fds;
  std::vector<std::string> got(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    int fd = connect_to(port);
    REQUIRE(fd >= 0);
    REQUIRE(send_all(fd, request));
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    fds.push_back({fd, POLLIN, 0});
  }
  int open = kStreams, max_threads = threads_before;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (open > 0 && std::chrono::steady_clock::now() < deadline) {
    if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
    max_threads = std::max(max_threads, num_threads());
    for (int i = 0; i < kStreams; ++i) {
      if (fds[i].fd < 0 || !fds[i].revents) continue;
      char buf[16384];
      ssize_t n;
      while ((n = ::recv(fds[i].fd, buf, sizeof buf, 0)) > 0) got[i].append(buf, static_cast<size_t>(n));
      if (n == 0 || (n < 0 && errno != EAGAIN)) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  CHECK(open == 0);
  int complete = 0;
  for (const auto& g : got) {
    auto r = parse_response(g);
    if (r && r->status == 200 && r->framing_ok && r->chunks.size() == 13 && r->chunks.back() == "data: [DONE]\n\n") ++complete;
  }
  CHECK(complete == kStreams);
  CHECK(max_threads == threads_before);  // no thread per connection
}

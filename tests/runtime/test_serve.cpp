// `vela serve` as a real process (synthetic runner) driven through the C++ client:
// streaming correctness with 1 worker, TP=2 and DP=2, failures, aborts, drain,
// malformed input, traces. The fault suite (tests/faults/) has the drain timeout,
// oversized frames in live traffic, the server's death and KV exhaustion.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "transport/trace_summary.h"
#include "tests/runtime/serve_fixture.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;
using client::ServerEvent;

namespace {

struct Outcome {
  std::vector<int32_t> tokens;
  std::string finish_reason;
  std::string message;
  int deltas = 0;
  bool done = false;
};

// Reads events until every id in `ids` has its final (or error) or the deadline passes.
std::map<std::string, Outcome> collect(client::Client& c, const std::set<std::string>& ids,
                                       std::chrono::milliseconds timeout) {
  std::map<std::string, Outcome> out;
  size_t done = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (done < ids.size() && std::chrono::steady_clock::now() < deadline) {
    auto ev = c.next_event(100ms);
    if (!ev || !ids.count(ev->request_id)) continue;
    auto& o = out[ev->request_id];
    if (o.done) continue;
    o.tokens.insert(o.tokens.end(), ev->token_ids.begin(), ev->token_ids.end());
    if (ev->kind == ServerEvent::Kind::kDelta) o.deltas++;
    if (ev->kind == ServerEvent::Kind::kFinal || ev->kind == ServerEvent::Kind::kError) {
      o.finish_reason = ev->kind == ServerEvent::Kind::kError ? "error:" + ev->field : ev->finish_reason;
      o.message = ev->message;
      o.done = true;
      ++done;
    }
  }
  return out;
}

client::GenerateRequest request(const std::string& id, std::vector<int32_t> prompt, int max_tokens) {
  client::GenerateRequest r;
  r.request_id = id;
  r.prompt_token_ids = std::move(prompt);
  r.params.max_tokens = max_tokens;
  r.params.temperature = 0;
  return r;
}

void check_64_streams(ServeProcess& server) {
  auto c = server.connect();
  REQUIRE(c);
  std::set<std::string> ids;
  std::map<std::string, std::vector<int32_t>> expected;
  for (int i = 0; i < 64; ++i) {
    std::vector<int32_t> prompt;
    for (int j = 0; j < 5 + i % 23; ++j) prompt.push_back((i * 131 + j * 7) % 32000);
    const int max_tokens = 8 + i % 17;
    auto r = request("s" + std::to_string(i), prompt, max_tokens);
    REQUIRE((*c).submit(r).ok());
    ids.insert(r.request_id);
    expected[r.request_id] = expected_synthetic(prompt, max_tokens);
  }
  auto got = collect(*c, ids, 60s);
  REQUIRE(got.size() == 64);
  for (auto& [id, o] : got) {
    INFO(id << " " << o.finish_reason << " " << o.message);
    REQUIRE(o.done);
    CHECK(o.finish_reason == "length");
    CHECK(o.tokens == expected[id]);
    CHECK(o.deltas >= 1);  // streamed, not only a final
  }
}

}  // namespace

TEST_CASE("serve: 64 concurrent streams with one worker give the in-process tokens") {
  ServeProcess server("cache:\n  num_gpu_blocks: 1024\n");
  check_64_streams(server);
  ::kill(server.pid(), SIGTERM);
  CHECK(server.wait_exit(20s) == 0);
}

TEST_CASE("serve: tensor parallel (2 workers, Gloo) serves the same tokens") {
  ServeProcess server("parallel:\n  tensor_parallel_size: 2\n  devices: [cpu, cpu]\ncache:\n  num_gpu_blocks: 1024\n");
  check_64_streams(server);
  CHECK(server.worker_pids().size() == 2);
}

TEST_CASE("serve: data parallel (2 replicas) serves the same tokens") {
  ServeProcess server("parallel:\n  data_parallel_size: 2\ncache:\n  num_gpu_blocks: 1024\n");
  check_64_streams(server);
  CHECK(server.worker_pids().size() == 2);
}

TEST_CASE("serve: invalid requests get an error naming the field and the engine keeps serving") {
  ServeProcess server("cache:\n  num_gpu_blocks: 64\nmodel:\n  max_model_len: 2048\nfrontend:\n  max_message_bytes: 4096\n");
  auto c = server.connect();
  REQUIRE(c);
  struct Case { std::string name; client::GenerateRequest r; std::string field; };
  std::vector<Case> cases;
  auto base = request("x", {1, 2, 3}, 4);
  auto add = [&](std::string name, std::string field, auto mutate) {
    auto r = base;
    r.request_id = name;
    mutate(r);
    cases.push_back({name, r, field});
  };
  add("empty", "prompt_token_ids", [](auto& r) { r.prompt_token_ids = std::vector<int32_t>{}; });
  add("too_long", "params.max_tokens", [](auto& r) { r.params.max_tokens = 2047; });
  add("never_fits", "params.max_tokens", [](auto& r) { r.params.max_tokens = 1500; });
  add("neg_id", "prompt_token_ids[1]", [](auto& r) { r.prompt_token_ids = std::vector<int32_t>{1, -5}; });
  add("big_id", "prompt_token_ids[0]", [](auto& r) { r.prompt_token_ids = std::vector<int32_t>{32000}; });
  add("stop_id", "params.stop_token_ids[0]", [](auto& r) { r.params.stop_token_ids = {40000}; });
  add("nan_temp", "params.temperature", [](auto& r) { r.params.temperature = std::nanf(""); });
  add("neg_temp", "params.temperature", [](auto& r) { r.params.temperature = -0.5f; });
  add("top_p0", "params.top_p", [](auto& r) { r.params.top_p = 0.0f; });
  add("top_p2", "params.top_p", [](auto& r) { r.params.top_p = 1.5f; });
  add("max0", "params.max_tokens", [](auto& r) { r.params.max_tokens = 0; });
  add("n0", "params.n", [](auto& r) { r.params.n = 0; });
  add("bad_role", "messages[1].role", [](auto& r) {
    r.prompt_token_ids.reset();
    r.messages = std::vector<client::ChatTurn>{{"user", "hi"}, {"robot", "beep"}};
  });
  add("utf8_prompt", "prompt", [](auto& r) {
    r.prompt_token_ids.reset();
    r.prompt = "caf\xc3(";  // a broken two-byte sequence
  });
  add("utf8_content", "messages[0].content", [](auto& r) {
    r.prompt_token_ids.reset();
    r.messages = std::vector<client::ChatTurn>{{"user", "\xed\xa0\x80"}};  // a UTF-16 surrogate
  });
  add("utf8_stop", "params.stop[1]", [](auto& r) { r.params.stop = {"ok", "\xff"}; });
  std::set<std::string> ids;
  for (auto& k : cases) {
    REQUIRE(c->submit(k.r).ok());
    ids.insert(k.name);
  }
  // Raw frames: an unknown field, garbage bytes, a frame over the size limit, a
  // request_id that is not UTF-8, one over 256 bytes.
  REQUIRE(c->send_raw(std::string("\x83\xa4type\xa8generate\xaarequest_id\xa3unk\xa5" "bogus\x01", 37)).ok());
  REQUIRE(c->send_raw("\xc1 not msgpack").ok());
  REQUIRE(c->send_raw(std::string(5000, 'a')).ok());
  auto bad_id = base;
  bad_id.request_id = "id\xc0\xafx";  // an overlong encoding of '/'
  REQUIRE(c->send_raw(client::encode_client_message(client::ClientMessage{bad_id})).ok());
  bad_id.request_id = std::string(257, 'r');
  REQUIRE(c->send_raw(client::encode_client_message(client::ClientMessage{bad_id})).ok());
  auto got = collect(*c, ids, 10s);
  for (auto& k : cases) {
    INFO(k.name << ": " << got[k.name].message);
    CHECK(got[k.name].finish_reason == "error:" + k.field);
  }
  // The raw frames' errors: unknown field named, malformed and too-large on "frame".
  std::vector<std::string> raw_fields;
  for (int i = 0; i < 5; ++i) {
    auto ev = c->next_event(5s);
    REQUIRE(ev);
    REQUIRE(ev->kind == ServerEvent::Kind::kError);
    if (ev->field == "request_id") CHECK(ev->request_id.empty());  // never echoed
    raw_fields.push_back(ev->field + "/" + ev->code);
  }
  CHECK(raw_fields == std::vector<std::string>{"bogus/unknown_field", "frame/malformed", "frame/too_large",
                                               "request_id/invalid_value", "request_id/invalid_value"});
  // Still serving.
  REQUIRE(c->submit(request("ok", {7, 8, 9}, 5)).ok());
  auto ok = collect(*c, {"ok"}, 10s);
  CHECK(ok["ok"].tokens == expected_synthetic({7, 8, 9}, 5));
}

TEST_CASE("serve: a worker killed with SIGKILL mid-stream: errors within 5 s, then a non-zero exit") {
  ServeProcess server("cache:\n  num_gpu_blocks: 1024\n");
  auto c = server.connect();
  REQUIRE(c);
  std::set<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    REQUIRE(c->submit(request("k" + std::to_string(i), {1, 2, 3, 4}, 1000)).ok());
    ids.insert("k" + std::to_string(i));
  }
  // Wait until streaming is under way, then kill the worker.
  auto first = c->next_event(10s);
  REQUIRE(first);
  auto workers = server.worker_pids();
  REQUIRE(workers.size() == 1);
  ::kill(workers[0], SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  auto got = collect(*c, ids, 5s);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  for (auto& id : ids) {
    INFO(id);
    CHECK(got[id].finish_reason == "error");
    CHECK(got[id].message.find("signal 9") != std::string::npos);
  }
  CHECK(server.wait_exit(10s) == 3);
}

TEST_CASE("serve: a stopped worker (SIGSTOP) fails its requests within seconds, naming the rank") {
  ServeProcess server("cache:\n  num_gpu_blocks: 1024\nparallel:\n  step_timeout_s: 30\n");
  auto c = server.connect();
  REQUIRE(c);
  REQUIRE(c->submit(request("slow", {1, 2, 3}, 100000 / 100)).ok());
  REQUIRE(c->next_event(10s));
  auto workers = server.worker_pids();
  REQUIRE(workers.size() == 1);
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(workers[0], SIGSTOP);
  auto got = collect(*c, {"slow"}, 5s);
  CHECK(got["slow"].finish_reason == "error");
  CHECK(got["slow"].message.find("worker rank(s) 0 (pid") != std::string::npos);
  CHECK(got["slow"].message.find("stopped (SIGSTOP") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < 4s);
  CHECK(server.wait_exit(10s) == 3);
  CHECK(eventually([&] { return !process_alive(workers[0]); }, 5s));
}

TEST_CASE("serve: restart_workers brings an engine back after a worker dies") {
  ServeProcess server("cache:\n  num_gpu_blocks: 1024\nparallel:\n  restart_workers: true\n");
  auto c = server.connect();
  REQUIRE(c);
  REQUIRE(c->submit(request("a", {1, 2, 3}, 1000)).ok());
  REQUIRE(c->next_event(10s));
  auto workers = server.worker_pids();
  REQUIRE(workers.size() == 1);
  ::kill(workers[0], SIGKILL);
  auto got = collect(*c, {"a"}, 5s);
  CHECK(got["a"].finish_reason == "error");
  // A new worker comes up and serves.
  REQUIRE(eventually([&] { auto w = server.worker_pids(); return w.size() == 1 && w[0] != workers[0]; }, 10s));
  std::map<std::string, Outcome> again;
  REQUIRE(eventually([&] {
    (void)c->submit(request("b", {4, 5}, 3));
    again = collect(*c, {"b"}, 2s);
    return again["b"].finish_reason == "length";
  }, 15s));
  CHECK(again["b"].tokens == expected_synthetic({4, 5}, 3));
}

TEST_CASE("serve: a client that disconnects mid-stream has its requests aborted and blocks freed") {
  // 64 blocks of 16 tokens: the first client's 3 requests hold ~60 of them.
  ServeProcess server("cache:\n  num_gpu_blocks: 64\n");
  {
    auto gone = server.connect();
    REQUIRE(gone);
    for (int i = 0; i < 3; ++i) REQUIRE(gone->submit(request("g" + std::to_string(i), {1, 2, 3}, 300)).ok());
    REQUIRE(gone->next_event(10s));
  }  // socket closed mid-stream
  auto c = server.connect();
  REQUIRE(c);
  // Needs 60 of the 63 usable blocks: only runs once the disconnected client's are back.
  REQUIRE(c->submit(request("big", {9, 9, 9, 9}, 950)).ok());
  auto got = collect(*c, {"big"}, 60s);
  CHECK(got["big"].finish_reason == "length");
  CHECK(got["big"].tokens.size() == 950);
}

TEST_CASE("serve: abort races: every request ends exactly once, the engine keeps serving") {
  ServeProcess server("cache:\n  num_gpu_blocks: 512\n");
  auto c = server.connect();
  REQUIRE(c);
  std::set<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    const std::string id = "r" + std::to_string(i);
    REQUIRE(c->submit(request(id, {3, 1, 4, 1, 5}, 5 + i % 7)).ok());
    if (i % 2 == 0) REQUIRE(c->abort(id).ok());  // before, during or after it runs
    ids.insert(id);
  }
  REQUIRE(c->abort("never-sent").ok());
  auto got = collect(*c, ids, 20s);
  REQUIRE(got.size() == ids.size());
  for (auto& [id, o] : got) {
    INFO(id);
    CHECK((o.finish_reason == "abort" || o.finish_reason == "length"));
    if (o.finish_reason == "length") CHECK(o.tokens == expected_synthetic({3, 1, 4, 1, 5}, 5 + std::stoi(id.substr(1)) % 7));
  }
  // Nothing more arrives for them.
  auto extra = c->next_event(300ms);
  CHECK_FALSE(extra);
}

TEST_CASE("serve: SIGTERM drains in-flight requests and exits 0") {
  ServeProcess server("cache:\n  num_gpu_blocks: 512\n");
  auto c = server.connect();
  REQUIRE(c);
  std::set<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    REQUIRE(c->submit(request("d" + std::to_string(i), {2, 7}, 200)).ok());
    ids.insert("d" + std::to_string(i));
  }
  REQUIRE(c->next_event(10s));
  ::kill(server.pid(), SIGTERM);
  auto got = collect(*c, ids, 20s);
  for (auto& id : ids) CHECK(got[id].finish_reason == "length");
  CHECK(server.wait_exit(20s) == 0);
}

TEST_CASE("serve: a trace of a short run counts one SchedulerOutput and one ModelRunnerOutput per step") {
  const std::string trace_path = "/tmp/vela-test-trace-" + std::to_string(::getpid());
  ServeProcess server("cache:\n  num_gpu_blocks: 256\ntrace:\n  enabled: true\n  path: " + trace_path + "\n");
  auto c = server.connect();
  REQUIRE(c);
  std::set<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    REQUIRE(c->submit(request("t" + std::to_string(i), {1, 2}, 10)).ok());
    ids.insert("t" + std::to_string(i));
  }
  auto got = collect(*c, ids, 20s);
  REQUIRE(got.size() == 4);
  ::kill(server.pid(), SIGTERM);
  REQUIRE(server.wait_exit(20s) == 0);
  auto records = read_trace(trace_path + ".jsonl");
  REQUIRE(records.ok());
  auto summary = summarize_trace(*records);
  const auto steps = summary.by_type["SchedulerOutput"].count;
  CHECK(steps >= 10);  // 10 tokens each, batched together: at least 10 steps
  CHECK(summary.by_type["ModelRunnerOutput"].count == steps * 2);  // executor receive + engine actor receive
  CHECK(summary.by_type["generate"].count == 4);
  CHECK(summary.by_type["final"].count == 4);
  CHECK(summary.steps.size() == steps);
  std::ifstream chrome(trace_path + ".chrome.json");
  CHECK(chrome.good());
  std::remove((trace_path + ".jsonl").c_str());
  std::remove((trace_path + ".chrome.json").c_str());
}

// Faults made for real against `vela serve` (synthetic runner): a stopped worker, a
// killed rank, a dead replica. Every accepted request must end with exactly one final
// (none lost), the pong must say what is wrong, and the exit code must say it too.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "tests/runtime/serve_fixture.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;
using client::ServerEvent;

namespace {

struct Tally {
  std::map<std::string, std::string> finish;  // request id -> finish_reason
  std::map<std::string, std::string> message;
  std::map<std::string, int> finals;          // must be 1 each
};

// Reads events until every id has its final or the deadline passes.
void collect(client::Client& c, const std::set<std::string>& ids, Tally& t, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto done = [&] {
    for (const auto& id : ids)
      if (!t.finals.count(id)) return false;
    return true;
  };
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    auto ev = c.next_event(50ms);
    if (!ev || !ids.count(ev->request_id)) continue;
    if (ev->kind == ServerEvent::Kind::kFinal || ev->kind == ServerEvent::Kind::kError) {
      t.finals[ev->request_id]++;
      t.finish[ev->request_id] = ev->kind == ServerEvent::Kind::kError ? "refused:" + ev->code : ev->finish_reason;
      t.message[ev->request_id] = ev->message;
    }
  }
  // A moment more: a second final for any id would show here.
  const auto extra = std::chrono::steady_clock::now() + 200ms;
  while (std::chrono::steady_clock::now() < extra)
    if (auto ev = c.next_event(50ms); ev && ids.count(ev->request_id) && ev->kind == ServerEvent::Kind::kFinal)
      t.finals[ev->request_id]++;
}

std::set<std::string> submit_n(client::Client& c, const std::string& prefix, int n, int max_tokens) {
  std::set<std::string> ids;
  for (int i = 0; i < n; ++i) {
    client::GenerateRequest r;
    r.request_id = prefix + std::to_string(i);
    r.prompt_token_ids = std::vector<int32_t>{3, 1, 4, 1, 5, static_cast<int32_t>(i)};
    r.params.max_tokens = max_tokens;
    REQUIRE(c.submit(r).ok());
    ids.insert(r.request_id);
  }
  return ids;
}

// Prints the measured line and checks none was lost or ended twice.
void report(const char* fault, double detect_s, const std::set<std::string>& ids, const Tally& t) {
  int failed = 0, lost = 0, doubled = 0;
  for (const auto& id : ids) {
    auto f = t.finals.find(id);
    if (f == t.finals.end()) ++lost;
    else if (f->second > 1) ++doubled;
    else if (t.finish.at(id) != "length" && t.finish.at(id) != "stop") ++failed;
  }
  std::printf("[fault] %-34s detected in %.2f s; %zu requests: %d failed, %d lost, %d with two finals\n", fault,
              detect_s, ids.size(), failed, lost, doubled);
  CHECK(lost == 0);
  CHECK(doubled == 0);
}

// The workers of this server, by (replica, rank), from their command lines.
std::map<std::pair<int, int>, pid_t> workers_by_rank(ServeProcess& server) {
  std::map<std::pair<int, int>, pid_t> out;
  for (pid_t p : server.worker_pids()) {
    std::ifstream in("/proc/" + std::to_string(p) + "/cmdline");
    std::string arg, prev;
    int rank = -1, replica = 0;
    while (std::getline(in, arg, '\0')) {
      if (prev == "--rank") rank = std::stoi(arg);
      if (prev == "--replica") replica = std::stoi(arg);
      prev = arg;
    }
    out[{replica, rank}] = p;
  }
  return out;
}

std::optional<ServerEvent> health(client::Client& c) {
  if (!c.send_raw(client::encode_client_message(client::ClientMessage{client::Ping{}}))) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < deadline)
    if (auto ev = c.next_event(50ms); ev && ev->kind == ServerEvent::Kind::kPong) return ev;
  return std::nullopt;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("faults: SIGSTOP of the worker: each request's error names the stopped rank within seconds") {
  // The step deadline is long: a stopped worker is found from /proc once a step is a
  // second late, not when the deadline passes.
  ServeProcess server("cache:\n  num_gpu_blocks: 256\nparallel:\n  step_timeout_s: 30\n", "", "synthetic@2000");
  auto c = server.connect();
  REQUIRE(c);
  auto h = health(*c);
  REQUIRE(h);
  CHECK(h->status == "serving");
  REQUIRE(h->replicas.size() == 1);
  CHECK(h->replicas[0].state == "serving");

  auto ids = submit_n(*c, "s", 8, 1000);
  std::this_thread::sleep_for(300ms);
  const pid_t worker = workers_by_rank(server).at({0, 0});
  ::kill(worker, SIGSTOP);
  const auto t0 = std::chrono::steady_clock::now();
  Tally t;
  collect(*c, ids, t, 10s);
  const double detect_s = seconds_since(t0);
  report("SIGSTOP of the only worker", detect_s, ids, t);
  CHECK(detect_s < 4.0);
  for (const auto& id : ids) {
    INFO(t.message[id]);
    CHECK(t.finish[id] == "error");
    CHECK(t.message[id].find("rank(s) 0 (pid " + std::to_string(worker) + ") stopped") != std::string::npos);
  }
  CHECK(server.wait_exit(10s) == 3);
}

TEST_CASE("faults: a step slower than stall_after_s shows the replica stalled in the pong, then serving again") {
  // 1.5 s per step against a 3 s deadline: the pong during the step says stalled
  // (stall_after_s = step_timeout_s / 4 = 0.75 s), and the requests still finish.
  ServeProcess server("cache:\n  num_gpu_blocks: 256\nparallel:\n  step_timeout_s: 3\n", "", "synthetic@1500000");
  auto c = server.connect();
  REQUIRE(c);
  auto ids = submit_n(*c, "slow", 2, 2);
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(1200ms);
  auto h = health(*c);
  REQUIRE(h);
  REQUIRE(h->replicas.size() == 1);
  INFO(h->replicas[0].message);
  CHECK(h->replicas[0].state == "stalled");
  CHECK(h->replicas[0].num_requests == 2);
  Tally t;
  collect(*c, ids, t, 15s);
  report("a 1.5 s step (stalled, not dead)", seconds_since(t0), ids, t);
  for (const auto& id : ids) CHECK(t.finish[id] == "length");
  h = health(*c);
  REQUIRE(h);
  CHECK(h->replicas[0].state == "serving");
}

TEST_CASE("faults: kill -9 of rank 0 of two is reported as rank 0's death, not as its peer's failed read") {
  ServeProcess server("cache:\n  num_gpu_blocks: 256\nparallel:\n  tensor_parallel_size: 2\n", "", "synthetic@2000");
  auto c = server.connect();
  REQUIRE(c);
  auto ids = submit_n(*c, "k", 8, 200);
  std::this_thread::sleep_for(300ms);  // decode steps: their placeholders travel through Gloo
  const pid_t rank0 = workers_by_rank(server).at({0, 0});
  ::kill(rank0, SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  Tally t;
  collect(*c, ids, t, 10s);
  report("kill -9 of rank 0 (TP=2)", seconds_since(t0), ids, t);
  for (const auto& id : ids) {
    INFO(t.message[id]);
    CHECK(t.finish[id] == "error");
    CHECK(t.message[id].find("worker rank 0 (pid " + std::to_string(rank0) + ") killed by signal 9") !=
          std::string::npos);
  }
  CHECK(server.wait_exit(10s) == 3);
}

TEST_CASE("faults: a dead replica is reported dead while the other serves; with none left the server exits, saying why") {
  ServeProcess server("cache:\n  num_gpu_blocks: 256\nparallel:\n  data_parallel_size: 2\n", "", "synthetic@1000");
  auto c = server.connect();
  REQUIRE(c);
  auto workers = workers_by_rank(server);
  REQUIRE(workers.size() == 2);
  auto ids = submit_n(*c, "d", 8, 300);
  std::this_thread::sleep_for(200ms);
  ::kill(workers.at({1, 0}), SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  Tally t;
  collect(*c, ids, t, 20s);
  report("kill -9 of replica 1 of 2", seconds_since(t0), ids, t);
  int errors = 0;
  for (const auto& id : ids) errors += t.finish[id] == "error";
  CHECK(errors >= 1);      // replica 1's requests
  CHECK(errors <= 4 + 1);  // not replica 0's (least-loaded placement splits them 4 / 4)

  auto h = health(*c);
  REQUIRE(h);
  CHECK(h->status == "serving");
  REQUIRE(h->replicas.size() == 2);
  CHECK(h->replicas[0].state == "serving");
  CHECK(h->replicas[1].state == "dead");
  CHECK(h->replicas[1].message.find("signal 9") != std::string::npos);
  // New requests go to the replica that still serves.
  auto more = submit_n(*c, "after", 4, 5);
  Tally t2;
  collect(*c, more, t2, 10s);
  for (const auto& id : more) CHECK(t2.finish[id] == "length");

  ::kill(workers.at({0, 0}), SIGKILL);
  CHECK(server.wait_exit(10s) == 3);
}

TEST_CASE("faults: kill -9 of the server: a client with requests in flight learns within seconds (liveness rule)") {
  ServeProcess server("cache:\n  num_gpu_blocks: 256\n", "", "synthetic@2000");
  auto c = server.connect();
  REQUIRE(c);
  auto ids = submit_n(*c, "g", 8, 100000 / 100);
  std::this_thread::sleep_for(300ms);
  ::kill(server.pid(), SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  Tally t;
  collect(*c, ids, t, 15s);
  const double detect_s = seconds_since(t0);
  report("kill -9 of the server", detect_s, ids, t);
  CHECK(c->server_lost());
  CHECK(detect_s < 7);  // 2 s of silence, a ping, 3 s without an answer
  for (const auto& id : ids) {
    CHECK(t.finish[id] == "error");
    CHECK(t.message[id].find("lost the server") != std::string::npos);
  }
  CHECK(server.wait_exit(5s) == -1);  // it was killed, not exited
}

TEST_CASE("faults: a huge prompt delays only its own request (tokenizers off the frontend's thread)") {
  ServeProcess server("cache:\n  num_gpu_blocks: 256\nfrontend:\n  tokenizer_threads: 2\n");
  auto c = server.connect();
  REQUIRE(c);
  // ~12 MB of varied text (no two words alike, so no cache helps): a second or so of
  // tokenizing, then refused as too long.
  client::GenerateRequest huge;
  huge.request_id = "huge";
  std::string text;
  for (uint64_t i = 1; text.size() < (12u << 20); ++i) text += "w" + std::to_string(i * 2654435761u % 1000003) + "q ";
  huge.prompt = std::move(text);
  REQUIRE(c->submit(huge).ok());
  const auto t0 = std::chrono::steady_clock::now();
  auto small = submit_n(*c, "small", 4, 2);
  client::GenerateRequest small_text;
  small_text.request_id = "small-text";
  small_text.prompt = "Hello";
  small_text.params.max_tokens = 2;
  REQUIRE(c->submit(small_text).ok());
  small.insert("small-text");
  std::vector<std::string> order;
  double small_done_s = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (order.size() < small.size() + 1 && std::chrono::steady_clock::now() < deadline) {
    auto ev = c->next_event(100ms);
    if (!ev || (ev->kind != ServerEvent::Kind::kFinal && ev->kind != ServerEvent::Kind::kError)) continue;
    order.push_back(ev->request_id);
    if (ev->request_id == "huge") std::printf("[fault] the huge prompt: %s %s\n", ev->code.c_str(), ev->message.c_str());
    if (small.count(ev->request_id)) small_done_s = seconds_since(t0);
  }
  const double huge_done_s = seconds_since(t0);
  std::printf("[fault] 12 MB prompt: the 5 small requests done in %.2f s, the huge one refused after %.2f s\n",
              small_done_s, huge_done_s);
  REQUIRE(order.size() == small.size() + 1);
  CHECK(order.back() == "huge");  // every small request finished before it
}

TEST_CASE("faults: with restart_workers the pong says restarting, then serving again") {
  ServeProcess server("cache:\n  num_gpu_blocks: 256\nparallel:\n  restart_workers: true\n");
  auto c = server.connect();
  REQUIRE(c);
  ::kill(workers_by_rank(server).at({0, 0}), SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  std::set<std::string> seen;
  std::string message;
  while (std::chrono::steady_clock::now() - t0 < 20s) {
    auto h = health(*c);
    if (!h || h->replicas.size() != 1) continue;
    seen.insert(h->replicas[0].state);
    if (h->replicas[0].state == "restarting") message = h->replicas[0].message;
    if (seen.count("restarting") && h->replicas[0].state == "serving") break;
    std::this_thread::sleep_for(5ms);
  }
  std::printf("[fault] kill -9 with restart_workers: serving again after %.2f s\n", seconds_since(t0));
  CHECK(seen.count("restarting") == 1);
  CHECK(message.find("signal 9") != std::string::npos);
  CHECK(seen.count("dead") == 0);
  auto ids = submit_n(*c, "r", 2, 3);
  Tally t;
  collect(*c, ids, t, 10s);
  for (const auto& id : ids) CHECK(t.finish[id] == "length");
}

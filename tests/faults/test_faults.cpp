// Faults made for real against `vela serve` (synthetic runner): a stopped worker, a
// killed rank, a dead replica. Every accepted request must end with exactly one final
// (none lost), the pong must say what is wrong, and the exit code must say it too.
#include <catch2/catch.hpp>

#include "tests/faults/fault_helpers.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;
using client::ServerEvent;

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

TEST_CASE("faults: kill -9 of either rank of a TP=2 group is reported as that rank's death, not its peer's read") {
  // The peer's Gloo read fails first whichever rank dies; the error must name the dead one.
  const int victim = GENERATE(0, 1);
  ServeProcess server("cache:\n  num_gpu_blocks: 256\nparallel:\n  tensor_parallel_size: 2\n", "", "synthetic@2000");
  auto c = server.connect();
  REQUIRE(c);
  auto ids = submit_n(*c, "k", 8, 200);
  std::this_thread::sleep_for(300ms);  // decode steps: their placeholders travel through Gloo
  const pid_t pid = workers_by_rank(server).at({0, victim});
  ::kill(pid, SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  Tally t;
  collect(*c, ids, t, 10s);
  const std::string fault = "kill -9 of rank " + std::to_string(victim) + " (TP=2)";
  const double detect_s = seconds_since(t0);
  report(fault.c_str(), detect_s, ids, t);
  CHECK(detect_s < 5.0);
  for (const auto& id : ids) {
    INFO(t.message[id]);
    CHECK(t.finish[id] == "error");
    CHECK(t.message[id].find("worker rank " + std::to_string(victim) + " (pid " + std::to_string(pid) +
                             ") killed by signal 9") != std::string::npos);
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

TEST_CASE("faults: kill -9 of the server (= the engine): clients learn within seconds, no worker is left behind") {
  // `vela serve` runs the frontend and the engine cores (actors) in one process, with
  // only the workers apart: killing the engine is killing this process.
  ServeProcess server("cache:\n  num_gpu_blocks: 256\nparallel:\n  tensor_parallel_size: 2\n", "", "synthetic@2000");
  auto c = server.connect();
  REQUIRE(c);
  auto workers = server.worker_pids();
  REQUIRE(workers.size() == 2);
  auto ids = submit_n(*c, "g", 8, 1000);
  std::this_thread::sleep_for(300ms);
  ::kill(server.pid(), SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  Tally t;
  collect(*c, ids, t, 15s);
  const double detect_s = seconds_since(t0);
  report("kill -9 of the server / engine", detect_s, ids, t);
  CHECK(c->server_lost());
  CHECK(detect_s < 7);  // 2 s of silence, a ping, 3 s without an answer
  for (const auto& id : ids) {
    CHECK(t.finish[id] == "error");
    CHECK(t.message[id].find("lost the server") != std::string::npos);
  }
  CHECK(server.wait_exit(5s) == -1);  // it was killed, not exited
  const auto t1 = std::chrono::steady_clock::now();
  CHECK(eventually([&] { return !process_alive(workers[0]) && !process_alive(workers[1]); }, 5s));
  std::printf("[fault] its 2 workers gone %.2f s after the server was reaped\n", seconds_since(t1));
  std::fflush(stdout);
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

TEST_CASE("faults: SIGTERM with requests that outlive the drain: each gets one final (shutdown), exit 3") {
  // 5 ms a step, 600 tokens: 3 s of work against a 0.5 s drain (frontend.drain_timeout_s).
  ServeProcess server("cache:\n  num_gpu_blocks: 512\nfrontend:\n  drain_timeout_s: 0.5\n", "", "synthetic@5000");
  auto c = server.connect();
  REQUIRE(c);
  std::set<std::string> ids;
  for (int i = 0; i < 8; ++i) {
    auto r = synthetic_request("cut" + std::to_string(i), {2, 7, i}, 600);
    r.stream = i % 2 == 0;
    REQUIRE(c->submit(r).ok());
    ids.insert(r.request_id);
  }
  Tally t;
  auto ev = c->next_event(10s);  // streaming has begun
  REQUIRE(ev);
  REQUIRE(ev->kind == ServerEvent::Kind::kDelta);
  take(t, *ev);
  ::kill(server.pid(), SIGTERM);
  const auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, int32_t> num_output;
  const auto deadline = t0 + 20s;
  double last_final_s = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    ev = c->next_event(100ms);
    if (!ev) {
      if (t.finals.size() == ids.size() && !process_alive(server.pid())) break;
      continue;
    }
    take(t, *ev);
    if (is_end(*ev)) {
      num_output[ev->request_id] = ev->num_output_tokens;
      last_final_s = seconds_since(t0);
    }
  }
  const int exit_code = server.wait_exit(20s);
  report("SIGTERM, requests outlive a 0.5 s drain", last_final_s, ids, t);
  std::printf("[fault] exit code %d\n", exit_code);
  std::fflush(stdout);
  CHECK(last_final_s < 3.0);  // the drain's end, not the requests' end
  for (const auto& id : ids) {
    INFO(id);
    CHECK(t.finish[id] == "shutdown");
    // Cut short, and what arrived is the prefix the synthetic runner produces.
    CHECK(t.tokens[id].size() < 600u);
    CHECK(static_cast<int32_t>(t.tokens[id].size()) == num_output[id]);
    CHECK(t.tokens[id] == expected_synthetic({2, 7, std::stoi(id.substr(3))}, static_cast<int>(t.tokens[id].size())));
  }
  CHECK(exit_code == 3);
}

TEST_CASE("faults: oversized and malformed frames mixed into valid traffic on one connection: every valid request finishes") {
  // Default frontend.max_message_bytes (16 MiB); frames over 32 MiB once made ZeroMQ
  // drop the connection, and with it the client's requests in flight. 2 ms a step:
  // the valid requests are streaming while the bad frames arrive.
  ServeProcess server("cache:\n  num_gpu_blocks: 512\n", "", "synthetic@2000");
  auto c = server.connect();
  REQUIRE(c);
  auto valid_frame = [](const std::string& id) {
    return client::encode_client_message(client::ClientMessage{synthetic_request(id, {1, 2, 3}, 4)});
  };
  const std::string truncated = valid_frame("trunc").substr(0, 20);
  std::string wrong_type = valid_frame("wrongtype");
  // "generate" -> "generatf": an unknown message type with a readable request_id.
  wrong_type.replace(wrong_type.find("generate"), 8, "generatf");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"40 MiB", std::string(40u << 20, 'a')},
      {"garbage", "\xc1 not msgpack"},
      {"empty", ""},
      {"int", "\x2a"},
      {"truncated", truncated},
      {"unknown type", wrong_type},
      {"20 MiB", std::string(20u << 20, 'b')},
      {"array", "\x92\x01\x02"},
  };
  std::set<std::string> ids;
  std::map<std::string, int> max_tokens;
  Tally t;
  std::vector<ServerEvent> refusals;  // errors for frames no valid request sent
  auto drain_events = [&] {
    while (auto ev = c->next_event(0ms)) {
      if (ids.count(ev->request_id)) take(t, *ev);
      else if (ev->kind == ServerEvent::Kind::kError) refusals.push_back(*ev);
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < 24; ++i) {
    const std::string id = "v" + std::to_string(i);
    max_tokens[id] = 50 + static_cast<int>(i) * 20;
    REQUIRE(c->submit(synthetic_request(id, numbered_prompt(static_cast<int>(i)), max_tokens[id])).ok());
    ids.insert(id);
    if (i % 3 == 1) REQUIRE(c->send_raw(bad[i / 3].second).ok());
    drain_events();
  }
  std::vector<ServerEvent> others;
  collect(*c, ids, t, 60s, &others);
  for (auto& ev : others)
    if (ev.kind == ServerEvent::Kind::kError) refusals.push_back(std::move(ev));
  // The refusals of the last frames may still be on their way.
  eventually([&] { drain_events(); return refusals.size() >= bad.size(); }, 10s);
  report("bad frames mixed with 24 requests", seconds_since(t0), ids, t);
  for (const auto& id : ids) {
    INFO(id << " " << t.finish[id] << " " << t.message[id]);
    CHECK(t.finish[id] == "length");
    CHECK(t.tokens[id] == expected_synthetic(numbered_prompt(std::stoi(id.substr(1))), max_tokens[id]));
  }
  int too_large = 0;
  for (const auto& e : refusals) {
    INFO(e.code << " " << e.field << " " << e.message);
    CHECK(!e.code.empty());
    if (e.code != "too_large") continue;
    ++too_large;
    CHECK(e.field == "frame");
    CHECK(e.message.find("16777216") != std::string::npos);
    CHECK(e.message.find("frontend.max_message_bytes") != std::string::npos);
  }
  std::printf("[fault] %zu bad frames: %zu refused (%d too_large), the connection kept\n", bad.size(), refusals.size(),
              too_large);
  CHECK(refusals.size() == bad.size());
  CHECK(too_large == 2);
  bool all_free = false;
  const std::string blocks = wait_all_blocks_free(*c, 5s, &all_free);
  std::printf("[fault] blocks after: %s\n", blocks.c_str());
  CHECK(all_free);
}

TEST_CASE("faults: a client that disconnects with 500 requests open: every KV block comes back") {
  ServeProcess server("cache:\n  num_gpu_blocks: 1024\n", "", "synthetic@1000");
  auto watcher = server.connect();
  REQUIRE(watcher);
  std::string before;
  {
    auto gone = server.connect();
    REQUIRE(gone);
    submit_n(*gone, "open", 500, 1000);
    REQUIRE(gone->next_event(10s));
    std::this_thread::sleep_for(300ms);  // streaming under way, blocks held
    auto h = health(*watcher);
    REQUIRE(h);
    REQUIRE(h->replicas.size() == 1);
    before = std::to_string(h->replicas[0].num_free_blocks) + "/" + std::to_string(h->replicas[0].num_usable_blocks);
    CHECK(h->replicas[0].num_requests == 500);
    CHECK(h->replicas[0].num_free_blocks < h->replicas[0].num_usable_blocks);
  }  // the socket closes with 500 requests open
  const auto t0 = std::chrono::steady_clock::now();
  bool all_free = false;
  const std::string after = wait_all_blocks_free(*watcher, 10s, &all_free);
  const double detect_s = seconds_since(t0);
  std::printf("[fault] %-38s detected in %.2f s; 500 requests aborted; blocks %s free before, %s after\n",
              "a client gone with 500 requests open", detect_s, before.c_str(), after.c_str());
  CHECK(all_free);
  // Still serving.
  auto ids = submit_n(*watcher, "after", 4, 5);
  Tally t;
  collect(*watcher, ids, t, 10s);
  for (const auto& id : ids) CHECK(t.finish[id] == "length");
}

TEST_CASE("faults: a client that falls behind the stream loses nothing and is not taken for gone") {
  // 1,024 streams of 400 tokens (409,600 delta frames) while the client reads nothing
  // for a second: the frontend's queue to it fills (100k frames, and as many in the
  // client's). libzmq then refuses frames to that client, for a moment even as
  // "unroutable" while its queue drains; the frontend took that for a hang-up and
  // aborted all its requests (2,048 such streams: 1,912 failed). Now refused frames
  // wait in the client's backlog; it is given up only after 2 s without progress.
  ServeProcess server(
      "cache:\n  num_gpu_blocks: 32768\nscheduler:\n  max_num_seqs: 1024\n  max_num_batched_tokens: 8192\n");
  auto c = server.connect();
  REQUIRE(c);
  const int n = 1024, max_tokens = 400;
  auto ids = submit_n(*c, "behind", n, max_tokens);
  std::this_thread::sleep_for(1s);  // not reading: the queues fill
  Tally t;
  collect(*c, ids, t, 120s);
  auto counts = report("a client that falls behind the stream", 0.0, ids, t);
  CHECK(counts.failed == 0);
  int complete = 0;
  for (int i = 0; i < n; ++i) {
    const std::string id = "behind" + std::to_string(i);
    complete += t.finish[id] == "length" && t.tokens[id] == expected_synthetic(numbered_prompt(i), max_tokens);
  }
  CHECK(complete == n);
}

TEST_CASE("faults: KV exhausted: more requests than the pool holds queue or are preempted, and all finish") {
  // 63 usable blocks of 16 tokens; 48 requests of 6 + 200 tokens need 13 blocks each (624 in all).
  ServeProcess server("cache:\n  num_gpu_blocks: 64\n");
  auto c = server.connect();
  REQUIRE(c);
  const auto t0 = std::chrono::steady_clock::now();
  auto ids = submit_n(*c, "kv", 48, 200);
  Tally t;
  collect(*c, ids, t, 60s);
  bool all_free = false;
  const std::string blocks = wait_all_blocks_free(*c, 5s, &all_free);
  auto h = health(*c);
  REQUIRE(h);
  REQUIRE(h->replicas.size() == 1);
  const auto counts = report("KV exhausted (48 x 13 blocks in 63)", seconds_since(t0), ids, t, blocks);
  std::printf("[fault] %lld preemptions\n", static_cast<long long>(h->replicas[0].num_preemptions));
  CHECK(counts.failed == 0);
  for (const auto& id : ids) CHECK(t.tokens[id] == expected_synthetic(numbered_prompt(std::stoi(id.substr(2))), 200));
  CHECK(all_free);
}

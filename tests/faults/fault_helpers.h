#pragma once
// What the fault suite and the soak share: submitting requests, reading until every
// one has its final, counting what was failed or lost, asking the server's health.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "tests/runtime/serve_fixture.h"

namespace vela::testing {

using namespace std::chrono_literals;

struct Tally {
  std::map<std::string, std::string> finish;  // request id -> finish_reason ("refused:<code>" for an error)
  std::map<std::string, std::string> message;
  std::map<std::string, int> finals;          // must be 1 each
  std::map<std::string, std::vector<int32_t>> tokens;  // deltas and final, in order
};

inline bool is_end(const client::ServerEvent& ev) {
  return ev.kind == client::ServerEvent::Kind::kFinal || ev.kind == client::ServerEvent::Kind::kError;
}

// Adds one event of a tracked request to the tally.
inline void take(Tally& t, const client::ServerEvent& ev) {
  auto& tokens = t.tokens[ev.request_id];
  tokens.insert(tokens.end(), ev.token_ids.begin(), ev.token_ids.end());
  if (!is_end(ev)) return;
  t.finals[ev.request_id]++;
  t.finish[ev.request_id] = ev.kind == client::ServerEvent::Kind::kError ? "refused:" + ev.code : ev.finish_reason;
  t.message[ev.request_id] = ev.message;
}

// Reads events until every id has its final or the deadline passes, then a moment
// more: a second final for any id would show there. Events of other ids go to
// `others` when given (else they are dropped).
inline void collect(client::Client& c, const std::set<std::string>& ids, Tally& t, std::chrono::milliseconds timeout,
                    std::vector<client::ServerEvent>* others = nullptr) {
  auto handle = [&](client::ServerEvent ev) {
    if (ids.count(ev.request_id)) take(t, ev);
    else if (others) others->push_back(std::move(ev));
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto done = [&] {
    for (const auto& id : ids)
      if (!t.finals.count(id)) return false;
    return true;
  };
  while (!done() && std::chrono::steady_clock::now() < deadline)
    if (auto ev = c.next_event(50ms)) handle(std::move(*ev));
  const auto extra = std::chrono::steady_clock::now() + 200ms;
  while (std::chrono::steady_clock::now() < extra)
    if (auto ev = c.next_event(50ms)) handle(std::move(*ev));
}

inline client::GenerateRequest synthetic_request(const std::string& id, std::vector<int32_t> prompt, int max_tokens) {
  client::GenerateRequest r;
  r.request_id = id;
  r.prompt_token_ids = std::move(prompt);
  r.params.max_tokens = max_tokens;
  r.params.temperature = 0;
  return r;
}

inline std::vector<int32_t> numbered_prompt(int i) { return {3, 1, 4, 1, 5, static_cast<int32_t>(i % 32000)}; }

inline std::set<std::string> submit_n(client::Client& c, const std::string& prefix, int n, int max_tokens) {
  std::set<std::string> ids;
  for (int i = 0; i < n; ++i) {
    auto r = synthetic_request(prefix + std::to_string(i), numbered_prompt(i), max_tokens);
    REQUIRE(c.submit(r).ok());
    ids.insert(r.request_id);
  }
  return ids;
}

struct Counts {
  int failed = 0, lost = 0, doubled = 0;
};

// Prints the measured line and checks none was lost or ended twice. blocks: the
// "blocks returned" figure, or empty when the fault leaves no server to ask.
inline Counts report(const char* fault, double detect_s, const std::set<std::string>& ids, const Tally& t,
                     const std::string& blocks = "") {
  Counts n;
  for (const auto& id : ids) {
    auto f = t.finals.find(id);
    if (f == t.finals.end()) ++n.lost;
    else if (f->second > 1) ++n.doubled;
    else if (t.finish.at(id) != "length" && t.finish.at(id) != "stop") ++n.failed;
  }
  std::printf("[fault] %-38s detected in %.2f s; %zu requests: %d failed, %d lost, %d with two finals%s%s\n", fault,
              detect_s, ids.size(), n.failed, n.lost, n.doubled, blocks.empty() ? "" : "; blocks ", blocks.c_str());
  std::fflush(stdout);
  CHECK(n.lost == 0);
  CHECK(n.doubled == 0);
  return n;
}

// The workers of this server, by (replica, rank), from their command lines.
inline std::map<std::pair<int, int>, pid_t> workers_by_rank(ServeProcess& server) {
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

// The pong (events of requests read meanwhile go to `t` when given).
inline std::optional<client::ServerEvent> health(client::Client& c, Tally* t = nullptr) {
  if (!c.send_raw(client::encode_client_message(client::ClientMessage{client::Ping{}}))) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = c.next_event(50ms);
    if (!ev) continue;
    if (ev->kind == client::ServerEvent::Kind::kPong) return ev;
    if (t && !ev->request_id.empty()) take(*t, *ev);
  }
  return std::nullopt;
}

// Waits until replica 0 has every usable block free and no request in flight; the
// "free/usable" figure it saw last.
inline std::string wait_all_blocks_free(client::Client& c, std::chrono::milliseconds timeout, bool* all_free) {
  std::string seen = "(no pong)";
  *all_free = eventually([&] {
    auto h = health(c);
    if (!h || h->replicas.empty()) return false;
    const auto& r = h->replicas[0];
    seen = std::to_string(r.num_free_blocks) + "/" + std::to_string(r.num_usable_blocks) + " free";
    return r.num_usable_blocks > 0 && r.num_free_blocks == r.num_usable_blocks && r.num_requests == 0;
  }, timeout);
  return seen;
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace vela::testing

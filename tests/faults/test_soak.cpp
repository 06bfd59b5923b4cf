// A soak of `vela serve` (synthetic runner): several clients send mixed valid and
// invalid requests, garbage frames and aborts, and now and then hang up with requests
// open. After a warm-up phase the server's file descriptors, threads and RSS are
// measured with the clients gone; after the main phase again. Every request that was
// not abandoned ends with exactly one final, every KV block comes back, and nothing
// grows beyond a small slack. VELA_SOAK_S sets the main phase's length (default 60 s).
#include <catch2/catch.hpp>

#include <dirent.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <thread>

#include "tests/faults/fault_helpers.h"

using namespace vela;
using namespace vela::testing;
using namespace std::chrono_literals;
using client::ServerEvent;

namespace {

struct ProcessFigures {
  int num_fds = 0;
  int num_threads = 0;
  int64_t rss_kib = 0;
};

int count_entries(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return -1;
  int n = 0;
  while (auto* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

ProcessFigures figures_of(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  ProcessFigures f;
  f.num_fds = count_entries(proc + "/fd");
  f.num_threads = count_entries(proc + "/task");
  std::ifstream status(proc + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) f.rss_kib = std::atoll(line.c_str() + 6);
  return f;
}

// What the clients of one phase did and saw.
struct SoakCounts {
  std::atomic<int64_t> submitted{0}, finished{0}, aborted{0}, refused{0}, failed{0}, lost{0}, doubled{0};
  std::atomic<int64_t> abandoned{0}, garbage_sent{0}, garbage_refused{0}, wrong_tokens{0}, tokens{0};
};

// One client's loop until the deadline: rounds of 8-31 requests, each a valid one
// (sometimes aborted at once), an invalid one, or a valid one followed by a garbage
// frame; one round in seven it hangs up with its requests open.
void soak_client(ServeProcess& server, int index, std::chrono::steady_clock::time_point deadline, SoakCounts& n) {
  std::mt19937 rng(static_cast<uint32_t>(index) * 7919u + 1);
  auto c = server.connect(10s);
  if (!c) return void(n.lost += 1);
  for (int round = 0; std::chrono::steady_clock::now() < deadline; ++round) {
    std::set<std::string> ids;
    std::map<std::string, int> max_tokens;  // the valid, not aborted ones
    std::set<std::string> invalid, aborted;
    int garbage = 0;
    const int num_requests = 8 + static_cast<int>(rng() % 24);
    for (int i = 0; i < num_requests; ++i) {
      const std::string id = "c" + std::to_string(index) + "-" + std::to_string(round) + "-" + std::to_string(i);
      const int kind = static_cast<int>(rng() % 10);
      auto r = synthetic_request(id, numbered_prompt(static_cast<int>(rng() % 1000)), 1 + static_cast<int>(rng() % 48));
      r.stream = rng() % 2 == 0;
      if (kind == 0) r.params.temperature = -1.0f;
      if (kind == 1) r.prompt_token_ids->push_back(40000);  // outside the vocabulary
      // Catch's assertions are not for threads: a send that fails counts as lost.
      if (!c->submit(r).ok()) ++n.lost;
      ids.insert(id);
      if (kind <= 1) invalid.insert(id);
      else if (kind == 3) {
        if (!c->abort(id).ok()) ++n.lost;
        aborted.insert(id);
      } else max_tokens[id] = r.params.max_tokens;
      if (kind == 2) {
        if (!c->send_raw(rng() % 2 ? std::string("\xc1 soak garbage") : std::string(64, '\x93')).ok()) ++n.lost;
        ++garbage;
      }
    }
    n.submitted += num_requests;
    if (round % 7 == 6) {  // hang up with the round's requests open
      (void)c->next_event(20ms);
      c.reset();
      n.abandoned += num_requests;
      c = server.connect(10s);
      if (!c) return void(n.lost += 1);
      continue;
    }
    n.garbage_sent += garbage;
    Tally t;
    const auto until = std::chrono::steady_clock::now() + 30s;
    auto done = [&] { return t.finals.size() == ids.size() && garbage == 0; };
    while (!done() && std::chrono::steady_clock::now() < until) {
      auto ev = c->next_event(50ms);
      if (!ev) continue;
      if (ids.count(ev->request_id)) take(t, *ev);
      else if (ev->kind == ServerEvent::Kind::kError && ev->request_id.empty()) --garbage, ++n.garbage_refused;
    }
    for (const auto& id : ids) {
      auto f = t.finals.find(id);
      if (f == t.finals.end()) { ++n.lost; continue; }
      if (f->second > 1) ++n.doubled;
      const std::string& reason = t.finish[id];
      if (invalid.count(id)) n.refused += reason == "refused:invalid_value";
      else if (aborted.count(id)) n.aborted += reason == "abort" || reason == "length";
      else if (reason != "length") ++n.failed;
      else {
        ++n.finished;
        n.tokens += static_cast<int64_t>(t.tokens[id].size());
      }
      if (invalid.count(id) && reason != "refused:invalid_value") ++n.failed;
      if (aborted.count(id) && reason != "abort" && reason != "length") ++n.failed;
      if (max_tokens.count(id) && static_cast<int>(t.tokens[id].size()) != max_tokens[id]) ++n.wrong_tokens;
    }
  }
}

// Runs `num_clients` clients for `seconds`, then waits until the server has every
// block back and no request in flight.
void run_phase(ServeProcess& server, client::Client& watcher, int num_clients, double seconds, SoakCounts& n,
               std::string* blocks, bool* all_free) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  std::vector<std::thread> clients;
  for (int i = 0; i < num_clients; ++i) clients.emplace_back([&, i] { soak_client(server, i, deadline, n); });
  for (auto& t : clients) t.join();
  *blocks = wait_all_blocks_free(watcher, 10s, all_free);
}

}  // namespace

TEST_CASE("soak: mixed valid and invalid traffic with aborts and hang-ups: no request lost, nothing grows") {
  const char* env = std::getenv("VELA_SOAK_S");
  const double main_s = env ? std::max(5.0, std::atof(env)) : 60.0;
  const double warm_s = std::clamp(main_s / 6, 5.0, 30.0);
  constexpr int kClients = 4;
  ServeProcess server("cache:\n  num_gpu_blocks: 256\n", "", "synthetic@500");
  auto watcher = server.connect();
  REQUIRE(watcher);

  SoakCounts warm;
  std::string blocks;
  bool all_free = false;
  run_phase(server, *watcher, kClients, warm_s, warm, &blocks, &all_free);
  REQUIRE(all_free);
  std::this_thread::sleep_for(500ms);  // the hung-up connections' fds close
  const ProcessFigures before = figures_of(server.pid());

  SoakCounts n;
  const auto t0 = std::chrono::steady_clock::now();
  run_phase(server, *watcher, kClients, main_s, n, &blocks, &all_free);
  const double ran_s = seconds_since(t0);
  std::this_thread::sleep_for(500ms);
  const ProcessFigures after = figures_of(server.pid());

  std::printf("[soak] %.0f s (after a %.0f s warm-up), %d clients: %lld requests: %lld finished (%lld tokens), "
              "%lld aborted, %lld refused as invalid, %lld abandoned by hang-ups; %lld garbage frames, %lld refused; "
              "%lld failed, %lld lost, %lld with two finals, %lld with wrong token counts\n",
              ran_s, warm_s, kClients, (long long)n.submitted, (long long)n.finished, (long long)n.tokens,
              (long long)n.aborted, (long long)n.refused, (long long)n.abandoned, (long long)n.garbage_sent,
              (long long)n.garbage_refused, (long long)n.failed, (long long)n.lost, (long long)n.doubled,
              (long long)n.wrong_tokens);
  std::printf("[soak] blocks at the end: %s; server fds %d -> %d, threads %d -> %d, RSS %.1f -> %.1f MiB\n",
              blocks.c_str(), before.num_fds, after.num_fds, before.num_threads, after.num_threads,
              before.rss_kib / 1024.0, after.rss_kib / 1024.0);
  std::fflush(stdout);
  CHECK(n.finished > 0);
  CHECK(n.failed == 0);
  CHECK(n.lost == 0);
  CHECK(n.doubled == 0);
  CHECK(n.wrong_tokens == 0);
  CHECK(n.garbage_refused == n.garbage_sent);
  CHECK(all_free);
  CHECK(after.num_fds <= before.num_fds + 4);
  CHECK(after.num_threads <= before.num_threads + 2);
  // Flat within 16 MiB after the warm-up (allocator caches settle there).
  CHECK(after.rss_kib <= before.rss_kib + 16 * 1024);
  CHECK(server.pid() > 0);
  CHECK(process_alive(server.pid()));
}

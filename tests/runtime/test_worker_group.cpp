// The executor's WorkerGroup against real vela-worker processes (synthetic runner):
// handshake, steps, and every way a worker can fail.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/zmq_io.h"

#include "engine_core/engine_core.h"
#include "executor/worker_group.h"
#include "tests/runtime/process_helpers.h"
#include "workers/synthetic_runner.h"

using namespace vela;
using namespace std::chrono_literals;

namespace {

WorkerGroupOptions synthetic_options(int world_size, std::string transport = "ipc") {
  WorkerGroupOptions o;
  o.world_size = world_size;
  o.transport = std::move(transport);
  o.worker_binary = std::string(VELA_BINARY_DIR) + "/bin/vela-worker";
  o.runner = "synthetic";
  o.log_level = "warn";
  o.startup_timeout_s = 30;
  o.step_timeout_s = 10;
  return o;
}

// The engine's side of the startup, as EngineCore::create runs it: load and profile,
// the pool every rank can hold (agree_num_blocks), InitKVCache.
struct Started {
  std::vector<Hello> hellos;
  int32_t num_blocks = 0;
  int32_t vocab_size = 0;
};

Result<Started> start_group(WorkerGroup& group, int32_t num_blocks_override = 0) {
  LoadModel load;
  load.block_size_tokens = 16;
  VELA_TRY_ASSIGN(WorkerFacts facts, group.start(load));
  Started s;
  s.hellos = facts.hellos;
  s.vocab_size = facts.profiles[0].vocab_size;
  VELA_TRY_ASSIGN(s.num_blocks, agree_num_blocks(facts.profiles, num_blocks_override));
  VELA_TRY(group.init_kv_cache(InitKVCache{s.num_blocks}));
  return s;
}

SchedulerOutput prefill_step(uint64_t step_id, const std::string& id, std::vector<int32_t> prompt) {
  SchedulerOutput s;
  s.step_id = step_id;
  NewRequestData nr;
  nr.request_id = id;
  nr.prompt_token_ids = std::move(prompt);
  nr.block_ids = {0};
  s.num_scheduled_tokens.push_back({id, static_cast<int32_t>(nr.prompt_token_ids.size())});
  s.total_num_scheduled_tokens = static_cast<int32_t>(nr.prompt_token_ids.size());
  s.scheduled_new_reqs.push_back(std::move(nr));
  return s;
}

SchedulerOutput decode_step(uint64_t step_id, const std::string& id, int32_t new_token, int32_t computed) {
  SchedulerOutput s;
  s.step_id = step_id;
  auto& c = s.scheduled_cached_reqs;
  c.request_ids = {id};
  c.resumed_from_preemption = {0};
  c.new_token_ids = {{new_token}};
  c.new_block_ids = {{}};
  c.num_computed_tokens = {computed};
  s.num_scheduled_tokens.push_back({id, 1});
  s.total_num_scheduled_tokens = 1;
  return s;
}

WorkerEvent wait_event(WorkerGroup& group, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto ev = group.poll(100);
    if (ev.kind != WorkerEvent::Kind::kNone) return ev;
  }
  return {};
}

void run_two_steps(WorkerGroup& group, int32_t vocab) {
  REQUIRE(group.submit_step(prefill_step(1, "a", {5, 6, 7})).ok());
  auto ev = wait_event(group, 10s);
  REQUIRE(ev.kind == WorkerEvent::Kind::kStepOutput);
  REQUIRE(ev.output.step_id == 1);
  REQUIRE(ev.output.request_ids == std::vector<std::string>{"a"});
  const int32_t t1 = synthetic_next_token(7, 3, vocab);
  REQUIRE(ev.output.sampled_token_ids == std::vector<std::vector<int32_t>>{{t1}});
  REQUIRE(group.submit_step(decode_step(2, "a", t1, 3)).ok());
  ev = wait_event(group, 10s);
  REQUIRE(ev.kind == WorkerEvent::Kind::kStepOutput);
  REQUIRE(ev.output.sampled_token_ids == std::vector<std::vector<int32_t>>{{synthetic_next_token(t1, 4, vocab)}});
}

}  // namespace

TEST_CASE("WorkerGroup: one worker over ipc: handshake and steps") {
  zmq::context_t ctx;
  WorkerGroup group(ctx, synthetic_options(1));
  auto info = start_group(group);
  INFO((info.ok() ? std::string() : info.error().message));
  REQUIRE(info.ok());
  CHECK(info->num_blocks == static_cast<int32_t>((uint64_t{1} << 30) / (1024 * 16)));
  CHECK(info->vocab_size == 32000);
  CHECK(info->hellos[0].pid == group.pids()[0]);
  run_two_steps(group, info->vocab_size);
  const pid_t pid = group.pids()[0];
  group.shutdown(5);
  CHECK_FALSE(testing::process_alive(pid));
}

TEST_CASE("WorkerGroup: two tensor-parallel workers over tcp, Gloo bootstrap through the engine") {
  zmq::context_t ctx;
  auto opts = synthetic_options(2, "tcp");
  opts.step_channel = "socket";  // every step on ZeroMQ, as across hosts
  WorkerGroup group(ctx, opts);
  auto info = start_group(group);
  INFO((info.ok() ? std::string() : info.error().message));
  REQUIRE(info.ok());
  CHECK(group.endpoint().rfind("tcp://127.0.0.1:", 0) == 0);
  CHECK(info->hellos[0].dist_init_address.rfind("tcp://127.0.0.1:", 0) == 0);
  CHECK(info->hellos[1].dist_init_address.empty());
  run_two_steps(group, info->vocab_size);
  group.shutdown(5);
}

namespace {
std::string dir_of(const std::string& ipc_endpoint) {
  const std::string path = ipc_endpoint.substr(6);
  return path.substr(0, path.rfind('/'));
}
mode_t mode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}
}  // namespace

TEST_CASE("WorkerGroup: over ipc the sockets and rank 0's rendezvous store sit in a private directory") {
  const mode_t old_mask = ::umask(0);  // the modes must not come from the umask
  zmq::context_t ctx;
  WorkerGroup group(ctx, synthetic_options(2));
  auto info = start_group(group);
  ::umask(old_mask);
  INFO((info.ok() ? std::string() : info.error().message));
  REQUIRE(info.ok());
  const std::string store = info->hellos[0].dist_init_address;
  REQUIRE(group.endpoint().rfind("ipc://", 0) == 0);
  CHECK(store.rfind("ipc://", 0) == 0);  // no TCP port for any local user to reach
  CHECK(dir_of(store) == dir_of(group.endpoint()));
  CHECK(dir_of(group.endpoint()) == transport::private_ipc_dir());
  CHECK(mode_of(transport::private_ipc_dir()) == 0700);
  CHECK(mode_of(group.endpoint().substr(6)) == 0600);
  CHECK(mode_of(store.substr(6)) == 0600);
  run_two_steps(group, info->vocab_size);
  group.shutdown(5);
}

TEST_CASE("WorkerGroup: over tcp a stranger cannot speak for a rank (CURVE with keys made per group)") {
  zmq::context_t ctx;
  auto opts = synthetic_options(1, "tcp");
  opts.step_channel = "socket";
  WorkerGroup group(ctx, opts);
  auto info = start_group(group);
  INFO((info.ok() ? std::string() : info.error().message));
  REQUIRE(info.ok());
  // A plain DEALER that claims to be a rank and reports a failure: without
  // authentication the group would fail on its word.
  zmq::context_t rogue_ctx;
  zmq::socket_t rogue(rogue_ctx, zmq::socket_type::dealer);
  rogue.set(zmq::sockopt::linger, 0);
  rogue.set(zmq::sockopt::routing_id, "w9");  // "w0" is taken: a ROUTER turns a duplicate away
  rogue.connect(group.endpoint());
  (void)transport::send_frames(rogue, msg::encode(ErrorMessage{0, "rogue", "a stranger speaking for a rank", {}}, 0));
  std::this_thread::sleep_for(300ms);
  run_two_steps(group, info->vocab_size);
  CHECK(group.poll(200).kind == WorkerEvent::Kind::kNone);
  group.shutdown(5);
}

TEST_CASE("WorkerGroup: steps larger than a shared-memory slot take the socket, in order with the rest") {
  // 512-byte slots: the steps for 40 long-named requests, and rank 0's answers to
  // them, do not fit and travel on the socket (the ring carries a marker for each such
  // step); once 39 requests have finished, request 0's steps fit. Both ranks must
  // see every step once and in order, and every output must come back whole, which
  // the synthetic tokens (a function of each request's whole history) show.
  zmq::context_t ctx;
  auto opts = synthetic_options(2);
  opts.step_channel = "shm";
  opts.shm_slot_bytes = 512;
  WorkerGroup group(ctx, opts);
  auto info = start_group(group);
  INFO((info.ok() ? std::string() : info.error().message));
  REQUIRE(info.ok());
  const int32_t vocab = info->vocab_size;
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) ids.push_back("request-with-a-long-name-" + std::to_string(i));
  std::vector<int32_t> last(ids.size(), 2);  // prompts are {i, 1, 2}
  std::vector<int32_t> len(ids.size(), 3);
  for (uint64_t step_id = 1; step_id <= 8; ++step_id) {
    SchedulerOutput s;
    s.step_id = step_id;
    const size_t n = step_id <= 2 ? ids.size() : 1;
    if (step_id == 3)
      for (size_t i = 1; i < ids.size(); ++i) s.finished_req_ids.push_back(ids[i]);
    for (size_t i = 0; i < n; ++i) {
      if (step_id == 1) {
        NewRequestData nr;
        nr.request_id = ids[i];
        nr.prompt_token_ids = {static_cast<int32_t>(i), 1, 2};
        nr.block_ids = {static_cast<int32_t>(i)};
        s.scheduled_new_reqs.push_back(nr);
        s.num_scheduled_tokens.push_back({ids[i], 3});
        s.total_num_scheduled_tokens += 3;
      } else {
        auto& c = s.scheduled_cached_reqs;
        c.request_ids.push_back(ids[i]);
        c.resumed_from_preemption.push_back(0);
        c.new_token_ids.push_back({last[i]});
        c.new_block_ids.push_back({});
        c.num_computed_tokens.push_back(len[i] - 1);
        s.num_scheduled_tokens.push_back({ids[i], 1});
        s.total_num_scheduled_tokens += 1;
      }
    }
    REQUIRE(group.submit_step(s).ok());
    auto ev = wait_event(group, 10s);
    INFO("step " << step_id << ": " << ev.error);
    REQUIRE(ev.kind == WorkerEvent::Kind::kStepOutput);
    REQUIRE(ev.output.step_id == step_id);
    REQUIRE(ev.output.request_ids.size() == n);
    for (size_t i = 0; i < n; ++i) {
      CHECK(ev.output.request_ids[i] == ids[i]);
      REQUIRE(ev.output.sampled_token_ids[i] == std::vector<int32_t>{synthetic_next_token(last[i], len[i], vocab)});
      last[i] = ev.output.sampled_token_ids[i][0];
      ++len[i];
    }
  }
  group.shutdown(5);
}

TEST_CASE("WorkerGroup: the minimum KV cache over ranks and the override") {
  zmq::context_t ctx;
  auto opts = synthetic_options(1);
  WorkerGroup group(ctx, opts);
  auto info = start_group(group, 123);
  INFO((info.ok() ? std::string() : info.error().message));
  REQUIRE(info.ok());
  CHECK(info->num_blocks == 123);
}

TEST_CASE("WorkerGroup: a worker killed with SIGKILL mid-step is reported, not waited for") {
  zmq::context_t ctx;
  auto opts = synthetic_options(2);
  WorkerGroup group(ctx, opts);
  REQUIRE(start_group(group).ok());
  const auto pids = group.pids();
  ::kill(pids[1], SIGKILL);
  // The step may or may not be sent before the death is seen, and rank 0 (which
  // needs nothing from rank 1 in the synthetic runner) may still answer it; either
  // way a failure event must come quickly.
  (void)group.submit_step(prefill_step(1, "a", {1, 2}));
  const auto t0 = std::chrono::steady_clock::now();
  auto ev = wait_event(group, 5s);
  if (ev.kind == WorkerEvent::Kind::kStepOutput) ev = wait_event(group, 5s);
  REQUIRE(ev.kind == WorkerEvent::Kind::kFailure);
  CHECK(ev.error.find("rank 1") != std::string::npos);
  CHECK(ev.error.find("signal 9") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  group.kill_all();
  CHECK_FALSE(testing::process_alive(pids[0]));
}

TEST_CASE("WorkerGroup: a stopped worker (SIGSTOP) is named within about a second, long before the deadline") {
  zmq::context_t ctx;
  auto opts = synthetic_options(1);
  opts.step_timeout_s = 30.0;
  WorkerGroup group(ctx, opts);
  REQUIRE(start_group(group).ok());
  const pid_t pid = group.pids()[0];
  ::kill(pid, SIGSTOP);
  REQUIRE(group.submit_step(prefill_step(1, "a", {1, 2})).ok());
  const auto t0 = std::chrono::steady_clock::now();
  auto ev = wait_event(group, 5s);
  REQUIRE(ev.kind == WorkerEvent::Kind::kFailure);
  INFO(ev.error);
  CHECK(ev.error.find("rank(s) 0 (pid " + std::to_string(pid) + ") stopped") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - t0 >= 900ms);
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
  group.kill_all();  // SIGKILL ends a stopped process too
  CHECK_FALSE(testing::process_alive(pid));
}

TEST_CASE("WorkerGroup: a worker that cannot load fails the handshake with its message") {
  zmq::context_t ctx;
  auto opts = synthetic_options(1);
  opts.runner = "no-such-runner";
  WorkerGroup group(ctx, opts);
  auto info = start_group(group);
  REQUIRE_FALSE(info.ok());
  CHECK(info.error().message.find("no-such-runner") != std::string::npos);
}

TEST_CASE("WorkerGroup: workers die with their engine process (SIGKILL of the engine)") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t engine = ::fork();
  REQUIRE(engine >= 0);
  if (engine == 0) {
    zmq::context_t ctx;
    WorkerGroup group(ctx, synthetic_options(2));
    if (!start_group(group).ok()) ::_exit(1);
    auto pids = group.pids();
    (void)!::write(fds[1], pids.data(), pids.size() * sizeof(pid_t));
    ::pause();  // until killed
    ::_exit(0);
  }
  ::close(fds[1]);
  pid_t workers[2] = {0, 0};
  ssize_t n = ::read(fds[0], workers, sizeof(workers));
  ::close(fds[0]);
  ::kill(engine, SIGKILL);
  testing::wait_child(engine, 5s);
  REQUIRE(n == static_cast<ssize_t>(sizeof(workers)));
  CHECK(testing::eventually([&] { return !testing::process_alive(workers[0]) && !testing::process_alive(workers[1]); }, 5s));
}

// The EngineCoreActor and the TraceActor, each behaviour driven from a scoped actor
// that stands in for the frontend: startup and health, a request's tokens streamed
// and ended by length, an abort, a worker's death failing the live requests and the
// replica, a stop; trace records reaching the file. Real vela-worker processes with
// the synthetic runner, whose tokens the test predicts.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "actors/engine_actors.h"
#include "tests/runtime/process_helpers.h"
#include "workers/synthetic_runner.h"

using namespace vela;
using namespace vela::actors;
using namespace std::chrono_literals;
using vela::testing::eventually;

namespace {

EngineCoreSettings synthetic_engine() {
  EngineCoreSettings s;
  s.core.limits.max_num_seqs = 8;
  s.core.limits.max_num_batched_tokens = 256;
  s.core.limits.max_model_len = 512;
  s.core.limits.async_scheduling = true;
  s.core.num_blocks_override = 64;
  s.workers.worker_binary = std::string(VELA_BINARY_DIR) + "/bin/vela-worker";
  s.workers.runner = "synthetic";
  s.workers.log_level = "warn";
  s.workers.startup_timeout_s = 30;
  s.workers.step_timeout_s = 10;
  return s;
}

EngineCoreRequest request(std::string id, std::vector<int32_t> prompt, int32_t max_tokens) {
  EngineCoreRequest r;
  r.request_id = std::move(id);
  r.prompt_token_ids = std::move(prompt);
  r.sampling_params.max_tokens = max_tokens;
  r.sampling_params.ignore_eos = true;
  return r;
}

// This process's children (the workers the engine spawned).
std::vector<pid_t> children() {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string line;
    std::getline(in, line);
    const auto paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(line.c_str() + paren + 1, " %c %d", &state, &ppid) == 2 && ppid == ::getpid())
      out.push_back(std::stoi(name));
  }
  return out;
}

size_t count_lines(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

struct Fixture {
  caf::actor_system_config cfg;
  caf::actor_system system{cfg};
  caf::scoped_actor frontend{system};
  ServerStatus status;

  engine_core_actor start(EngineCoreSettings settings, EngineFacts* facts = nullptr) {
    auto engine = spawn_engine_core(system, std::move(settings), caf::actor_cast<frontend_actor>(frontend),
                                    std::nullopt, &status);
    frontend->monitor(engine);
    bool healthy = false;
    frontend->receive(
        [&](EngineStateMsg& m) {
          healthy = m.healthy;
          INFO(m.error);
          CHECK(m.healthy);
          if (facts) *facts = m.facts;
        },
        caf::after(std::chrono::seconds(30)) >> [] { FAIL("no EngineStateMsg within 30 s"); });
    REQUIRE(healthy);
    return engine;
  }

  // Outputs until request `id` ends (or 10 s pass), concatenated.
  EngineCoreOutput until_final(const std::string& id) {
    EngineCoreOutput all;
    all.request_id = id;
    bool done = false;
    while (!done) {
      frontend->receive(
          [&](OutputsMsg& m) {
            for (auto& o : m.outputs.outputs) {
              if (o.request_id != id) continue;
              all.new_token_ids.insert(all.new_token_ids.end(), o.new_token_ids.begin(), o.new_token_ids.end());
              all.finish_reason = o.finish_reason;
              all.error = o.error;
              done = done || o.finish_reason != FinishReason::kNone;
            }
          },
          [&](EngineStateMsg& m) { CHECK_FALSE(m.healthy); },
          caf::after(std::chrono::seconds(10)) >> [&] {
            FAIL("request " << id << " did not end within 10 s");
          });
    }
    return all;
  }

  void stop(const engine_core_actor& engine) {
    frontend->send(engine, StopMsg{2});
    bool down = false;
    while (!down)
      frontend->receive([&](const caf::down_msg&) { down = true; }, [](OutputsMsg&) {},
                        caf::after(std::chrono::seconds(10)) >> [] { FAIL("the engine did not stop within 10 s"); });
  }
};

}  // namespace

TEST_CASE("EngineCoreActor: healthy once started; streams a request to its length; aborts; stops") {
  Fixture f;
  EngineFacts facts;
  auto engine = f.start(synthetic_engine(), &facts);
  CHECK(facts.num_blocks == 64);
  REQUIRE(facts.vocab_size > 0);

  f.frontend->send(engine, AddRequestMsg{request("a", {5, 6, 7}, 6)});
  const EngineCoreOutput a = f.until_final("a");
  CHECK(a.finish_reason == FinishReason::kLength);
  std::vector<int32_t> expected, tokens = {5, 6, 7};
  for (int i = 0; i < 6; ++i) {
    expected.push_back(synthetic_next_token(tokens.back(), int64_t(tokens.size()), facts.vocab_size));
    tokens.push_back(expected.back());
  }
  CHECK(a.new_token_ids == expected);
  CHECK(f.status.engines_ready == 1);

  f.frontend->send(engine, AddRequestMsg{request("b", {1, 2}, 400)});
  f.frontend->send(engine, AbortMsg{{"b"}});
  CHECK(f.until_final("b").finish_reason == FinishReason::kAbort);
  f.stop(engine);
}

TEST_CASE("EngineCoreActor: a worker killed mid-request fails the live requests, then the replica") {
  Fixture f;
  f.status.num_engines = 1;
  auto engine = f.start(synthetic_engine());
  f.frontend->send(engine, AddRequestMsg{request("long", {1, 2, 3}, 400)});
  const auto workers = children();
  REQUIRE(workers.size() == 1);
  ::kill(workers[0], SIGKILL);
  const EngineCoreOutput failed = f.until_final("long");
  CHECK(failed.finish_reason == FinishReason::kError);
  CHECK_THAT(failed.error, Catch::Matchers::Contains("rank 0"));
  // The replica is dead (parallel.restart_workers is off): the server's exit code is set.
  CHECK(eventually([&] { return f.status.engines_dead == 1; }, 5s));
  CHECK(f.status.exit_code == 3);
  f.frontend->send(engine, AddRequestMsg{request("late", {1}, 1)});  // refused: the replica is dead
  CHECK(f.until_final("late").finish_reason == FinishReason::kError);
  f.stop(engine);
}

TEST_CASE("TraceActor: every record it is sent reaches the JSONL file") {
  const std::string path = std::filesystem::temp_directory_path() / ("vela-test-trace-" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(path);
  {
    caf::actor_system_config cfg;
    caf::actor_system system{cfg};
    auto tracer = spawn_tracer(system, path);
    caf::scoped_actor self{system};
    for (uint64_t i = 1; i <= 3; ++i) {
      TraceRecord r;
      r.type = "SchedulerOutput";
      r.from = "engine0";
      r.to = "engine0.worker0";
      r.step_id = i;
      self->send(tracer, std::move(r));
    }
    // Appended on the tracer's own thread: wait for the lines, then stop it.
    CHECK(eventually([&] { return count_lines(path) == 3; }, 5s));
    self->monitor(tracer);
    self->send_exit(tracer, caf::exit_reason::user_shutdown);
    self->receive([](const caf::down_msg&) {}, caf::after(std::chrono::seconds(10)) >> [] { FAIL("no down"); });
  }
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::filesystem::remove(path);
  REQUIRE(lines.size() == 3);
  CHECK_THAT(lines[2], Catch::Matchers::Contains("\"step\":3"));
}

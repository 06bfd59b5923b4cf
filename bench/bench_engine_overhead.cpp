// The engine's own overhead per step (issue 5): Scheduler::schedule -> SchedulerOutput
// encoded and sent to every worker over ipc:// -> rank 0's ModelRunnerOutput back ->
// decode -> Scheduler::update_from_output, with 256 running requests in decode and
// real vela-worker processes whose runner does no compute (--runner noop by default:
// it keeps the model runner's persistent batch and builds its step inputs, then
// "samples" a fixed token). No actor hops: this is the executor thread's own loop.
// Target: < 100 us per step with 1 and 2 workers.
//
// BM_ZmqFloor is the floor under it: the same frame sizes bounced between the same
// sockets (ROUTER -> N DEALER peers in other processes, rank 0 answers) with no
// encoding, no scheduler and blocking receives.
//
// BM_EngineStep runs with the steps on the ZeroMQ socket (shm:0) and on the
// shared-memory StepChannel (shm:1, the default of `vela serve`); BM_ShmFloor is the
// floor under the latter, as BM_ZmqFloor is under the former.
//
// Usage: bench_engine_overhead [--runner noop|synthetic] [--requests 256] [--spin-us N (default parallel.step_spin_us, 200)]
//        --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//        (the peers of BM_ZmqFloor are this binary run as --echo-peer ...)
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>
#include <zmq.hpp>

#include "engine_core/engine_core.h"
#include "engine_core/scheduler.h"
#include "transport/step_channel.h"
#include "executor/worker_group.h"
#include "executor/worker_group_executor.h"
#include "transport/zmq_io.h"

extern char** environ;

using namespace vela;

namespace {

std::string g_runner = "noop";
int g_requests = 256;
int64_t g_spin_ns = WorkerGroupOptions{}.step_spin_ns;
constexpr int kPromptTokens = 16;
constexpr int kMaxTokens = (1 << 16) - 2 * kPromptTokens;  // no request ends during a run

// ---- engine step ------------------------------------------------------------------

// Request i of a run: a 16-token prompt, never ending during the run. Ids are short,
// like the frontend's: "<generation>-<i>".
EngineCoreRequest decode_request(const std::string& generation, int i) {
  EngineCoreRequest r;
  r.request_id = generation + "-" + std::to_string(i);
  for (int j = 0; j < kPromptTokens; ++j) r.prompt_token_ids.push_back((i * 31 + j) % 32000);
  r.sampling_params.max_tokens = kMaxTokens;
  r.sampling_params.ignore_eos = true;
  return r;
}

struct EngineHarness {
  zmq::context_t context;
  std::unique_ptr<WorkerGroup> group;
  int32_t num_blocks = 0;
  uint64_t generation = 0;  // request ids differ between runs: "<generation>-<i>"
};

std::map<std::tuple<int, int, int>, std::unique_ptr<EngineHarness>> g_engines;  // by (workers, channel, trace)
const char* const kChannels[] = {"socket", "shm"};  // the `channel` argument
// With trace:1 the engine's records go to this sink (as they go to TraceActor in
// `vela serve`) and the workers append theirs to a JSONL file, as they do there.
std::vector<TraceRecord> g_trace_sink;
size_t g_trace_records = 0;
const std::string g_trace_path = "/tmp/vela-bench-trace-" + std::to_string(::getpid()) + ".jsonl";

EngineHarness* engine_for(int workers, int channel, int trace, std::string* error) {
  auto& slot = g_engines[{workers, channel, trace}];
  if (slot) return slot.get();
  auto h = std::make_unique<EngineHarness>();
  WorkerGroupOptions o;
  if (trace) o.trace_path = g_trace_path;
  o.world_size = workers;
  o.step_channel = kChannels[channel];
  o.step_spin_ns = g_spin_ns;
  o.runner = g_runner;
  o.log_level = "warn";
  TraceFn sink;
  if (trace)
    sink = [](TraceRecord r) {
      if (g_trace_sink.size() == 4096) g_trace_sink.clear();
      g_trace_sink.push_back(std::move(r));
      ++g_trace_records;
    };
  h->group = std::make_unique<WorkerGroup>(h->context, o, std::move(sink));
  // The engine's startup (EngineCore::create), with a pool of 2^20 blocks: 256
  // requests x 4096 blocks of 16 tokens.
  h->num_blocks = 1 << 20;
  auto facts = h->group->start(LoadModel{});
  auto init = facts ? h->group->init_kv_cache(InitKVCache{h->num_blocks}) : Status(facts.error());
  if (!init) {
    *error = "workers did not start: " + init.error().message;
    return nullptr;
  }
  slot = std::move(h);
  return slot.get();
}

// One step as the executor thread runs it, reusing every buffer (step, event, outputs).
bool run_step(WorkerGroup& group, Scheduler& scheduler, SchedulerOutput& step, WorkerEvent& ev,
              EngineCoreOutputs& outs, std::string* error) {
  scheduler.schedule(step);
  if (auto sent = group.submit_step(step); !sent) {
    *error = sent.error().message;
    return false;
  }
  while (true) {
    group.poll(1000, ev);
    if (ev.kind == WorkerEvent::Kind::kStepOutput) {
      scheduler.update_from_output(step, ev.output, outs);
      return true;
    }
    if (ev.kind == WorkerEvent::Kind::kFailure) {
      *error = ev.error;
      return false;
    }
  }
}

void BM_EngineStep(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  const int channel = static_cast<int>(state.range(1));
  const int trace = static_cast<int>(state.range(2));
  std::string error;
  EngineHarness* h = engine_for(workers, channel, trace, &error);
  if (!h) {
    state.SkipWithError(error.c_str());
    return;
  }
  SchedulerLimits limits;
  limits.max_num_seqs = g_requests;
  limits.max_num_batched_tokens = 8192;
  limits.max_model_len = 1 << 16;
  limits.num_blocks = h->num_blocks;
  limits.block_size_tokens = 16;
  Scheduler scheduler(limits);
  const uint64_t gen = ++h->generation;
  for (int i = 0; i < g_requests; ++i) {
    if (auto rejected = scheduler.add_request(decode_request(std::to_string(gen), i))) {
      state.SkipWithError(("request rejected: " + rejected->error).c_str());
      return;
    }
  }
  SchedulerOutput step;
  WorkerEvent ev;
  EngineCoreOutputs outs;
  for (int i = 0; i < 20; ++i)  // the prefill step, then decode steps until every buffer is warm
    if (!run_step(*h->group, scheduler, step, ev, outs, &error)) {
      state.SkipWithError(error.c_str());
      return;
    }
  const size_t step_bytes = msg::encode(step, step.step_id)[0].size();
  const size_t output_bytes = msg::encode(ev.output, ev.output.step_id)[0].size();
  int64_t runner_ns = 0;
  const size_t traced_before = g_trace_records;
  for (auto _ : state) {
    if (!run_step(*h->group, scheduler, step, ev, outs, &error)) {
      state.SkipWithError(error.c_str());
      return;
    }
    runner_ns += ev.output.execute_time_ns;
  }
  if (static_cast<int>(scheduler.num_running()) != g_requests || step.scheduled_new_reqs.size() != 0) {
    state.SkipWithError("the batch changed during the run (not 256 decodes any more)");
    return;
  }
  state.counters["running"] = static_cast<double>(scheduler.num_running());
  state.counters["step_bytes"] = static_cast<double>(step_bytes);
  state.counters["output_bytes"] = static_cast<double>(output_bytes);
  if (trace)
    state.counters["engine_trace_records"] = benchmark::Counter(static_cast<double>(g_trace_records - traced_before),
                                                                benchmark::Counter::kAvgIterations);
  state.counters["runner_us"] = benchmark::Counter(static_cast<double>(runner_ns) * 1e-3,
                                                   benchmark::Counter::kAvgIterations);
  // Free the workers' state: the aborted ids travel in one more step.
  scheduler.abort_requests([&] {
    std::vector<std::string> ids;
    for (int i = 0; i < g_requests; ++i) ids.push_back(std::to_string(gen) + "-" + std::to_string(i));
    return ids;
  }());
  (void)run_step(*h->group, scheduler, step, ev, outs, &error);
}
// trace:1 (shm only) is what `trace.enabled: true` costs; trace:0 is the hot path with
// tracing off, which must not differ measurably from a build without tracing.
BENCHMARK(BM_EngineStep)->ArgNames({"workers", "shm", "trace"})->ArgsProduct({{1, 2}, {0, 1}, {0}})
    ->Args({1, 1, 1})->Args({2, 1, 1})->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(1.0);

// ---- the whole step path, and overlap (async scheduling) ------------------------------

// One step period through EngineCore + WorkerGroupExecutor (the path `vela serve`
// runs, less the actor mailbox): collect the oldest step's output and apply it, spend
// engine_us of engine-side work (what the frontend, detokenizing and streaming take
// per step in a server), then schedule and submit. The runner spends runner_us per
// step (noop@US: it sleeps, as the host does while a GPU computes). Without async
// scheduling the period is about runner + engine + the step path; with it, steps
// N+1 and N overlap and the period is about max(runner, engine + the step path).
void BM_EngineCoreStep(benchmark::State& state) {
  const bool async = state.range(0) != 0;
  const int64_t runner_us = state.range(1);
  const int64_t engine_us = state.range(2);
  WorkerGroupOptions o;
  o.world_size = 1;
  o.step_spin_ns = g_spin_ns;
  o.runner = runner_us > 0 ? "noop@" + std::to_string(runner_us) : g_runner;
  o.log_level = "warn";
  WorkerGroupExecutor executor(o);
  EngineCoreOptions options;
  options.limits.max_num_seqs = g_requests;
  options.limits.max_num_batched_tokens = 8192;
  options.limits.max_model_len = 1 << 16;
  options.limits.async_scheduling = async;
  options.num_blocks_override = 1 << 20;
  auto created = EngineCore::create(options, executor);
  if (!created) {
    state.SkipWithError(("startup failed: " + created.error().message).c_str());
    return;
  }
  EngineCore& core = **created;
  for (int i = 0; i < g_requests; ++i) {
    if (auto rejected = core.add_request(decode_request("1", i))) {
      state.SkipWithError(("request rejected: " + rejected->error).c_str());
      return;
    }
  }
  EngineCoreOutputs outs;
  auto one_period = [&]() -> bool {
    if (auto s = core.submit_steps(); !s) return state.SkipWithError(s.error().message.c_str()), false;
    auto got = core.collect(outs, -1);
    if (!got) return state.SkipWithError(got.error().message.c_str()), false;
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(engine_us);
    while (std::chrono::steady_clock::now() < until) {
    }
    return true;
  };
  for (int i = 0; i < 20; ++i)
    if (!one_period()) return;
  int64_t tokens = 0;
  for (auto _ : state) {
    if (!one_period()) return;
    for (const auto& out : outs.outputs) tokens += static_cast<int64_t>(out.new_token_ids.size());
  }
  state.counters["tokens_per_step"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kAvgIterations);
  executor.shutdown(5);
}
BENCHMARK(BM_EngineCoreStep)->ArgNames({"async", "runner_us", "engine_us"})
    ->ArgsProduct({{0, 1}, {0, 2000}, {0, 1000}})->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(1.0);

// ---- ZeroMQ floor -------------------------------------------------------------------

// A steady decode step for g_requests (ids as the engine step uses) and its answer.
struct DecodeStep {
  SchedulerOutput step;
  ModelRunnerOutput output;
};
DecodeStep decode_step() {
  SchedulerLimits limits;
  limits.max_num_seqs = g_requests;
  limits.max_num_batched_tokens = 8192;
  limits.max_model_len = 1 << 16;
  limits.num_blocks = 1 << 16;
  Scheduler s(limits);
  for (int i = 0; i < g_requests; ++i) {
    EngineCoreRequest r;
    r.request_id = "1-" + std::to_string(i);
    r.prompt_token_ids.assign(kPromptTokens, 7);
    r.sampling_params.max_tokens = kMaxTokens;
    r.sampling_params.ignore_eos = true;
    s.add_request(std::move(r));
  }
  DecodeStep d;
  EngineCoreOutputs outs;
  for (int k = 0; k < 4; ++k) {
    s.schedule(d.step);
    d.output.step_id = d.step.step_id;
    d.output.request_ids.clear();
    d.output.sampled_token_ids.clear();
    for (const auto& [id, n] : d.step.num_scheduled_tokens) {
      d.output.request_ids.push_back(id);
      d.output.sampled_token_ids.push_back({0});  // the no-op runner samples token 0
    }
    if (k < 3) s.update_from_output(d.step, d.output, outs);
  }
  return d;
}

std::pair<size_t, size_t> step_sizes() {
  const DecodeStep d = decode_step();
  return {msg::encode(d.step, d.step.step_id)[0].size(), msg::encode(d.output, d.output.step_id)[0].size()};
}

// ---- the codec alone (in process): where the engine's and a worker's CPU time goes ----

void BM_EncodeStep(benchmark::State& state) {
  const DecodeStep d = decode_step();
  msg::Frames frames;
  for (auto _ : state) msg::encode_into(d.step, d.step.step_id, 1, frames);
  state.counters["bytes"] = static_cast<double>(frames[0].size());
}
BENCHMARK(BM_EncodeStep)->Unit(benchmark::kMicrosecond);

void BM_DecodeStep(benchmark::State& state) {
  const DecodeStep d = decode_step();
  msg::Frames frames;
  msg::encode_into(d.step, d.step.step_id, 1, frames);
  msg::Message m;
  for (auto _ : state)
    if (!msg::decode_into(frames, m)) state.SkipWithError("decode failed");
}
BENCHMARK(BM_DecodeStep)->Unit(benchmark::kMicrosecond);

void BM_EncodeOutput(benchmark::State& state) {
  const DecodeStep d = decode_step();
  msg::Frames frames;
  for (auto _ : state) msg::encode_into(d.output, d.output.step_id, 1, frames);
  state.counters["bytes"] = static_cast<double>(frames[0].size());
}
BENCHMARK(BM_EncodeOutput)->Unit(benchmark::kMicrosecond);

void BM_DecodeOutput(benchmark::State& state) {
  const DecodeStep d = decode_step();
  msg::Frames frames;
  msg::encode_into(d.output, d.output.step_id, 1, frames);
  msg::Message m;
  for (auto _ : state)
    if (!msg::decode_into(frames, m)) state.SkipWithError("decode failed");
}
BENCHMARK(BM_DecodeOutput)->Unit(benchmark::kMicrosecond);

// A peer process: DEALER "w<rank>" that answers every frame (rank 0 only) with
// reply_bytes, until it receives an empty frame.
int echo_peer(const char* endpoint, int rank, size_t reply_bytes) {
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  transport::configure_socket(s);
  s.set(zmq::sockopt::routing_id, "w" + std::to_string(rank));
  s.connect(endpoint);
  const std::string reply(reply_bytes, 'x');
  s.send(zmq::buffer(std::string("hello")), zmq::send_flags::none);
  zmq::message_t m;
  while (true) {
    if (!s.recv(m, zmq::recv_flags::none)) return 1;
    if (m.size() == 0) return 0;
    if (rank == 0) s.send(zmq::const_buffer(reply.data(), reply.size()), zmq::send_flags::none);
  }
}

void BM_ZmqFloor(benchmark::State& state) {
  const int peers = static_cast<int>(state.range(0));
  const auto [step_bytes, output_bytes] = step_sizes();
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router);
  transport::configure_socket(router);
  router.set(zmq::sockopt::router_mandatory, 1);
  const std::string endpoint = transport::make_endpoint("ipc", "", "floor");
  router.bind(endpoint);
  std::vector<pid_t> pids;
  for (int r = 0; r < peers; ++r) {
    std::string self = "/proc/self/exe", rank = std::to_string(r), bytes = std::to_string(output_bytes);
    std::string flag = "--echo-peer", ep = endpoint;
    char* argv[] = {self.data(), flag.data(), ep.data(), rank.data(), bytes.data(), nullptr};
    pid_t pid = -1;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, environ) != 0) {
      state.SkipWithError("posix_spawn failed");
      return;
    }
    pids.push_back(pid);
  }
  zmq::message_t id, body;
  for (int r = 0; r < peers; ++r) {  // hellos
    (void)router.recv(id, zmq::recv_flags::none);
    (void)router.recv(body, zmq::recv_flags::none);
  }
  const std::string frame(step_bytes, 's');
  std::vector<std::string> ids;
  for (int r = 0; r < peers; ++r) ids.push_back("w" + std::to_string(r));
  for (auto _ : state) {
    for (const auto& peer : ids) {
      router.send(zmq::buffer(peer), zmq::send_flags::sndmore);
      router.send(zmq::const_buffer(frame.data(), frame.size()), zmq::send_flags::none);
    }
    (void)router.recv(id, zmq::recv_flags::none);
    (void)router.recv(body, zmq::recv_flags::none);
  }
  for (const auto& peer : ids) {
    router.send(zmq::buffer(peer), zmq::send_flags::sndmore);
    router.send(zmq::const_buffer(nullptr, 0), zmq::send_flags::none);
  }
  for (pid_t p : pids) ::waitpid(p, nullptr, 0);
  transport::remove_ipc_file(endpoint);
  state.counters["step_bytes"] = static_cast<double>(step_bytes);
  state.counters["output_bytes"] = static_cast<double>(output_bytes);
}
BENCHMARK(BM_ZmqFloor)->ArgName("workers")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond)
    ->MinTime(1.0);

// The shared-memory floor: the same frame sizes through a StepChannel to forked
// peers (rank 0 answers each), spinning as the engine does before sleeping.
void BM_ShmFloor(benchmark::State& state) {
  const int peers = static_cast<int>(state.range(0));
  const auto [step_bytes, output_bytes] = step_sizes();
  auto channel = transport::StepChannel::create(peers, 4, 1 << 20);
  if (!channel) {
    state.SkipWithError(channel.error().message.c_str());
    return;
  }
  auto& c = **channel;
  std::vector<pid_t> pids;
  for (int r = 0; r < peers; ++r) {
    const pid_t pid = ::fork();
    if (pid == 0) {  // the peer: read each record, rank 0 answers; an empty record ends it
      auto mine = transport::StepChannel::attach(c.worker_spec(r), r);
      if (!mine) ::_exit(1);
      auto& m = **mine;
      const transport::ShmFrames reply = {std::string(output_bytes, 'x')};
      transport::ShmFrames got;
      uint32_t tag = 0;
      while (true) {
        if (!m.down().wait_readable(static_cast<uint32_t>(r), m.wake_fd(), g_spin_ns,
                                    transport::steady_now_ns() + 60'000'000'000))
          ::_exit(4);  // the bench is gone
        if (!m.down().read(static_cast<uint32_t>(r), got, &tag).ok()) ::_exit(2);
        if (got.empty() || got[0].empty()) ::_exit(0);
        if (r == 0 && !m.up().write(reply, 0, transport::steady_now_ns() + 1'000'000'000)) ::_exit(3);
      }
    }
    pids.push_back(pid);
  }
  const transport::ShmFrames frame = {std::string(step_bytes, 's')};
  transport::ShmFrames answer;
  uint32_t tag = 0;
  auto round_trip = [&]() -> bool {
    if (!c.down().write(frame, 0, transport::steady_now_ns() + 1'000'000'000)) return false;
    return c.up().wait_readable(0, c.wake_fd(), g_spin_ns, transport::steady_now_ns() + 10'000'000'000) &&
           c.up().read(0, answer, &tag).ok();
  };
  for (auto _ : state)
    if (!round_trip()) {
      state.SkipWithError("shared-memory round trip failed");
      break;
    }
  (void)c.down().write({std::string()}, 0, transport::steady_now_ns() + 1'000'000'000);
  for (pid_t p : pids) ::waitpid(p, nullptr, 0);
  state.counters["step_bytes"] = static_cast<double>(step_bytes);
  state.counters["output_bytes"] = static_cast<double>(output_bytes);
}
BENCHMARK(BM_ShmFloor)->ArgName("workers")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond)
    ->MinTime(1.0);

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && !std::strcmp(argv[1], "--echo-peer"))
    return echo_peer(argv[2], std::atoi(argv[3]), static_cast<size_t>(std::atol(argv[4])));
  benchmark::Initialize(&argc, argv);
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--runner")) g_runner = argv[i + 1];
    else if (!std::strcmp(argv[i], "--requests")) g_requests = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--spin-us")) g_spin_ns = static_cast<int64_t>(std::atof(argv[i + 1]) * 1000);
    else {
      std::fprintf(stderr, "unknown argument %s (use --runner noop|synthetic, --requests N, --spin-us US)\n", argv[i]);
      return 2;
    }
  }
  benchmark::AddCustomContext("runner", g_runner);
  benchmark::AddCustomContext("requests", std::to_string(g_requests));
  benchmark::AddCustomContext("spin_us", std::to_string(g_spin_ns / 1000));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (auto& [n, h] : g_engines) h->group->shutdown(5);
  std::remove(g_trace_path.c_str());
  return 0;
}

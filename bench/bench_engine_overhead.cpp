// The engine's own overhead per step: Scheduler + SchedulerOutput broadcast over
// ipc:// + ModelRunnerOutput back + update_from_output, with the synthetic runner
// (no compute) in real vela-worker processes. 256 running requests in decode.
// Target: < 100 us per step. Usage: bench_engine_overhead [--workers N] [--steps N]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "engine_core/scheduler.h"
#include "executor/worker_group.h"

using namespace vela;

int main(int argc, char** argv) {
  int workers = 1, steps = 2000, num_requests = 256;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--workers")) workers = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--requests")) num_requests = std::atoi(argv[i + 1]);
  }
  zmq::context_t ctx;
  WorkerGroupOptions o;
  o.world_size = workers;
  o.runner = "synthetic";
  o.log_level = "warn";
  o.num_blocks_override = 1 << 16;
  WorkerGroup group(ctx, o);
  auto info = group.start();
  if (!info) {
    std::fprintf(stderr, "start failed: %s\n", info.error().message.c_str());
    return 1;
  }
  SchedulerLimits limits;
  limits.max_num_seqs = num_requests;
  limits.max_num_batched_tokens = 8192;
  limits.max_model_len = 1 << 15;
  limits.num_blocks = info->num_blocks;
  Scheduler scheduler(limits);
  for (int i = 0; i < num_requests; ++i) {
    EngineCoreRequest r;
    r.request_id = "r" + std::to_string(i);
    for (int j = 0; j < 16; ++j) r.prompt_token_ids.push_back((i * 31 + j) % 32000);
    r.sampling_params.max_tokens = 1 << 14;
    r.sampling_params.ignore_eos = true;
    scheduler.add_request(std::move(r));
  }
  SchedulerOutput step;
  EngineCoreOutputs outs;
  auto run_step = [&]() -> bool {
    scheduler.schedule(step);
    if (!group.submit_step(step)) return false;
    while (true) {
      auto ev = group.poll(1000);
      if (ev.kind == WorkerEvent::Kind::kStepOutput) {
        scheduler.update_from_output(step, ev.output, outs);
        return true;
      }
      if (ev.kind == WorkerEvent::Kind::kFailure) {
        std::fprintf(stderr, "%s\n", ev.error.c_str());
        return false;
      }
    }
  };
  for (int i = 0; i < 50; ++i)  // prefill + warm-up
    if (!run_step()) return 1;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i)
    if (!run_step()) return 1;
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / steps;
  std::printf("engine overhead: %d running requests, %d worker(s): %.1f us per step (%d steps)\n",
              static_cast<int>(scheduler.num_running()), workers, us, steps);
  group.shutdown(5);
  return 0;
}

// vela-worker: one process per device, started by the engine's executor. Not meant
// to be run by hand; its arguments are the executor's WorkerSpec.
#include <CLI/CLI.hpp>

#include <cstdlib>

#include "common/logging.h"
#include "workers/synthetic_runner.h"
#include "workers/worker_process.h"
#include "workers/model_runner.h"
#include "workers/noop_runner.h"

int main(int argc, char** argv) {
  CLI::App app{"vela-worker: runs one rank's model runner for a vela engine"};
  vela::WorkerOptions opts;
  std::string log_level = "info";
  app.add_option("--rank", opts.rank)->required();
  app.add_option("--world-size", opts.world_size)->required();
  app.add_option("--replica", opts.replica);
  app.add_option("--device", opts.device);
  app.add_option("--engine", opts.engine_endpoint, "the executor's ROUTER endpoint")->required();
  app.add_option("--runner", opts.runner, "model | synthetic | synthetic@US | noop | noop@US (@US: each step takes US microseconds)");
  app.add_option("--parent-pid", opts.parent_pid, "exit when this process is gone");
  app.add_option("--log-level", log_level);
  app.add_option("--trace", opts.trace_path, "append message-trace records to this JSONL file");
  app.add_option("--step-channel", opts.step_channel, "shared-memory step channel MEMFD:DOWNFD:UPFD (inherited fds)");
  app.add_option("--step-spin-ns", opts.step_spin_ns, "spin this long for the next step before sleeping");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  spdlog::level::level_enum level = spdlog::level::info;
  vela::parse_log_level(log_level, &level);
  vela::set_log_levels(level, {});

  vela::RunnerFactory factory = [&opts](const std::string& kind, vela::Communicator* comm)
      -> vela::Result<std::unique_ptr<vela::Runner>> {
    if (kind == "synthetic") return vela::make_synthetic_runner();
    if (kind.rfind("synthetic@", 0) == 0) {  // requests that outlive a drain or a frame's transfer, in tests
      vela::SyntheticRunnerOptions options;
      options.step_time_us = std::atoll(kind.c_str() + 10);
      return vela::make_synthetic_runner(options);
    }
    if (kind == "model") {
      vela::ModelRunnerOptions options;
      options.device = opts.device;
      return vela::make_model_runner(comm, options);
    }
    if (kind == "noop") return vela::make_noop_runner();
    if (kind.rfind("noop@", 0) == 0) {
      vela::NoopRunnerOptions options;
      options.step_time_us = std::atoll(kind.c_str() + 5);
      return vela::make_noop_runner(options);
    }
    return vela::make_error("unknown_runner", "vela-worker: runner '" + kind + "' is not available in this build");
  };
  return vela::run_worker(opts, factory);
}

// `vela serve --config FILE [--set k=v ...]`: run the engine (actor system + worker
// processes) and serve clients on frontend.endpoint (and HTTP on http.port, docs/HTTP.md) until SIGTERM. Exit codes: 0
// (stopped, every request finished), 2 (bad config, model or endpoint), 3 (the
// drain timed out: requests were cut off with finish_reason "shutdown"), other
// non-zero codes when an engine replica failed.
#include <iostream>
#include <memory>

#include "actors/server.h"
#include "apps/vela/commands.h"
#include "common/logging.h"
#include "llm/engine_setup.h"

namespace vela::cli {

void add_serve_command(CLI::App& app) {
  struct Opts {
    std::string file;
    std::vector<std::string> overrides;
    ServeOptions serve;
  };
  auto opts = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("serve", "Run the engine and serve clients over ZeroMQ (and the OpenAI HTTP API when http.port is set)");
  cmd->add_option("--config", opts->file, "YAML config file");
  cmd->add_option("--set", opts->overrides, "Override a key: section.key=value (repeatable)");
  cmd->add_option("--runner", opts->serve.runner, "Worker runner: model (default) or synthetic (no compute; tests, overhead benchmark)");
  cmd->add_option("--drain-timeout", opts->serve.drain_timeout_s,
                  "Seconds SIGTERM waits for in-flight requests (overrides frontend.drain_timeout_s); then each "
                  "still running ends with finish_reason shutdown and the exit code is 3");
  cmd->callback([opts]() {
    auto config = load_config(opts->file, opts->overrides);
    if (!config) {
      std::cerr << "vela: " << config.error().message << "\n";
      throw CLI::RuntimeError(2);
    }
    apply_logging(config->logging);
    auto resolved = resolve_model_paths(*config);
    if (!resolved) {
      std::cerr << "vela: " << resolved.error().message << "\n";
      throw CLI::RuntimeError(2);
    }
    int code = run_server(*resolved, opts->serve);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace vela::cli

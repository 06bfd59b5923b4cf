#include <cstdio>

#include "apps/vela/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"vela: an LLM inference engine (paged KV cache, continuous batching, actors over ZeroMQ)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vela 0.1.0");
  vela::cli::add_config_command(app);
  vela::cli::add_bench_command(app);
  vela::cli::add_serve_command(app);
  vela::cli::add_generate_command(app);
  vela::cli::add_chat_command(app);
  vela::cli::add_trace_command(app);
  vela::cli::add_keygen_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}

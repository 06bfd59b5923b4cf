#pragma once
// Subcommands of `vela`. Each add_*_command registers itself on the app and sets
// a callback; main() only parses and dispatches.
#include <CLI/CLI.hpp>

namespace vela::cli {

void add_config_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_trace_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_keygen_command(CLI::App& app);

}  // namespace vela::cli

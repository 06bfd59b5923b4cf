// `vela trace summarize FILE`: per message type the count, bytes and latency
// percentiles, then a per-step timeline. `vela trace chrome FILE OUT` converts.
#include <iostream>
#include <memory>

#include "apps/vela/commands.h"
#include "transport/trace_summary.h"

namespace vela::cli {

void add_trace_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("trace", "Read message traces written with trace.enabled");
  cmd->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  auto steps = std::make_shared<size_t>(20);
  auto* sum = cmd->add_subcommand("summarize", "Counts, bytes and latency per message type; step timeline");
  sum->add_option("FILE", *file, "trace JSONL (PATH.jsonl)")->required();
  sum->add_option("--steps", *steps, "steps to list in the timeline");
  sum->callback([file, steps]() {
    auto records = read_trace(*file);
    if (!records) {
      std::cerr << "vela: " << records.error().message << "\n";
      throw CLI::RuntimeError(2);
    }
    std::cout << format_summary(summarize_trace(*records), *steps);
  });
  auto out = std::make_shared<std::string>();
  auto* chrome = cmd->add_subcommand("chrome", "Convert a JSONL trace to Chrome trace-event JSON (Perfetto)");
  chrome->add_option("FILE", *file, "trace JSONL")->required();
  chrome->add_option("OUT", *out, "output .json")->required();
  chrome->callback([file, out]() {
    auto ok = write_chrome_trace(*file, *out);
    if (!ok) {
      std::cerr << "vela: " << ok.error().message << "\n";
      throw CLI::RuntimeError(2);
    }
  });
}

}  // namespace vela::cli

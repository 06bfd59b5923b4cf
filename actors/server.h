#pragma once
// run_server: `vela serve`. Builds the actor system from the config, starts every
// replica's workers, opens the client endpoint, and runs until SIGTERM/SIGINT
// (drain: exit 0, or 3 when the drain timed out and requests were cut off) or an
// unhealthy engine (exit non-zero). No CAF in this header.
#include <string>

#include "configs/config.h"

namespace vela {

struct ServeOptions {
  std::string runner = "model";    // vela-worker --runner: "model" or "synthetic"
  double drain_timeout_s = -1;     // >= 0: overrides frontend.drain_timeout_s
};

// run_server's exit codes (besides 0: drained, every request finished).
inline constexpr int kExitConfigOrBind = 2;      // bad config, model or endpoint
inline constexpr int kExitRequestsCutOff = 3;    // a stop signal's drain timed out: requests got "shutdown"

int run_server(const Config& config, const ServeOptions& options);

}  // namespace vela

#pragma once
// run_server: `vela serve`. Builds the actor system from the config, starts every
// replica's workers, opens the client endpoint, and runs until SIGTERM/SIGINT
// (drain, exit 0) or an unhealthy engine (exit non-zero). No CAF in this header.
#include <string>

#include "configs/config.h"

namespace vela {

struct ServeOptions {
  std::string runner = "model";    // vela-worker --runner: "model" or "synthetic"
  double drain_timeout_s = 60;     // SIGTERM: how long in-flight requests may finish
};

int run_server(const Config& config, const ServeOptions& options);

}  // namespace vela

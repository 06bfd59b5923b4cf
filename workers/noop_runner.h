#pragma once
// NoopRunner: answers every step without computing anything, sampling one fixed
// token for each request whose tokens are all scheduled. It follows the same
// SchedulerOutput bookkeeping as the model runner, so the engine around it runs
// exactly as it would; what it measures is the engine's own overhead.
#include <memory>

#include "workers/runner.h"

namespace vela {

// The token is the smallest id that is not an EOS id of the model (0 usually).
std::unique_ptr<Runner> make_noop_runner();

}  // namespace vela

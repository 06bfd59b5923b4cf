#pragma once
// Finding the project's own data files (configs/demo-model, perf/models, the
// fetched tokenizer) from wherever vela runs: $VELA_HOME, the working directory,
// next to the executable (<root>/build*/bin/), or the source tree it was built from.
#include <string>

namespace vela {

// Returns the first existing <root>/relative_path, or "" when none exists.
std::string find_project_file(const std::string& relative_path);

}  // namespace vela

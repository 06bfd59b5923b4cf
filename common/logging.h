#pragma once
// One spdlog logger per component ("engine_core", "worker", "frontend", ...).
// Levels come from the config's logging section through set_log_levels().
#include <spdlog/spdlog.h>

#include <map>
#include <memory>
#include <string>

namespace vela {

// Returns the component's logger, creating it (stderr, shared format) on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

// Parses "trace|debug|info|warn|error|critical|off"; returns false on anything else.
bool parse_log_level(const std::string& text, spdlog::level::level_enum* out);

// Sets the default level for every logger and per-component overrides.
void set_log_levels(spdlog::level::level_enum default_level,
                    const std::map<std::string, spdlog::level::level_enum>& per_component);

}  // namespace vela

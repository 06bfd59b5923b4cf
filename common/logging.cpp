#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace vela {
namespace {
std::mutex g_mu;
spdlog::level::level_enum g_default = spdlog::level::info;
std::map<std::string, spdlog::level::level_enum> g_overrides;

spdlog::level::level_enum level_for(const std::string& component) {
  auto it = g_overrides.find(component);
  return it == g_overrides.end() ? g_default : it->second;
}
}  // namespace

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (auto existing = spdlog::get(component)) return existing;
  auto created = spdlog::stderr_color_mt(component);
  created->set_pattern("[%H:%M:%S.%e] [%n] [%^%l%$] %v");
  created->set_level(level_for(component));
  return created;
}

bool parse_log_level(const std::string& text, spdlog::level::level_enum* out) {
  static const std::map<std::string, spdlog::level::level_enum> kLevels = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warn", spdlog::level::warn},
      {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off}};
  auto it = kLevels.find(text);
  if (it == kLevels.end()) return false;
  *out = it->second;
  return true;
}

void set_log_levels(spdlog::level::level_enum default_level,
                    const std::map<std::string, spdlog::level::level_enum>& per_component) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_default = default_level;
  g_overrides = per_component;
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->set_level(level_for(l->name())); });
}

}  // namespace vela

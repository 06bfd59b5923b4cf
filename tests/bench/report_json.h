#pragma once
// Reading a saved `vela bench` JSON report (perf/report.h's to_json) in tests.
#include <nlohmann/json.hpp>

#include <fstream>
#include <optional>
#include <string>

namespace vela::testing {

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

// The figure named `name`, or nullopt.
inline std::optional<nlohmann::json> figure(const nlohmann::json& report, const std::string& name) {
  if (!report.contains("figures")) return std::nullopt;
  for (const auto& f : report["figures"])
    if (f.value("name", "") == name) return f;
  return std::nullopt;
}

// The figure's value; NaN when the figure is missing or its value is null (NaN is saved as null).
inline double value_of(const nlohmann::json& report, const std::string& name) {
  auto f = figure(report, name);
  if (!f || !f->contains("value") || !(*f)["value"].is_number()) return std::nan("");
  return (*f)["value"].get<double>();
}

}  // namespace vela::testing

#include "perf/report.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#ifndef VELA_GIT_COMMIT
#define VELA_GIT_COMMIT "unknown"
#endif

namespace vela::perf {

std::string utc_now_iso8601() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string build_commit() { return VELA_GIT_COMMIT; }

namespace {
std::string num(double v) {
  if (std::isnan(v)) return "-";
  char buf[64];
  if (std::fabs(v) >= 1000) std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (std::fabs(v) >= 10) std::snprintf(buf, sizeof buf, "%.1f", v);
  else std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}
}  // namespace

std::string format_table(const Report& r) {
  std::ostringstream os;
  os << "vela bench " << r.kind << (r.workload.empty() ? "" : " " + r.workload) << " on " << r.device << " ("
     << r.date << ", " << r.commit.substr(0, 12) << ")\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-34s %14s %-8s %14s %8s  %s\n", "figure", "measured", "unit", "limit", "ratio", "limit is");
  os << line;
  for (const auto& f : r.figures) {
    std::snprintf(line, sizeof line, "%-34s %14s %-8s %14s %8s  %s\n", f.name.c_str(), num(f.value).c_str(),
                  f.unit.c_str(), num(f.limit).c_str(),
                  std::isnan(f.ratio()) ? "-" : (num(f.ratio() * 100) + "%").c_str(), f.limit_name.c_str());
    os << line;
  }
  return os.str();
}

std::string to_json(const Report& r) {
  nlohmann::json j;
  j["kind"] = r.kind;
  j["workload"] = r.workload;
  j["device"] = r.device;
  j["date"] = r.date;
  j["commit"] = r.commit;
  j["config"] = r.config;
  j["figures"] = nlohmann::json::array();
  for (const auto& f : r.figures) {
    nlohmann::json fj = {{"name", f.name}, {"value", f.value}, {"unit", f.unit}};
    if (!std::isnan(f.limit)) {
      fj["limit"] = f.limit;
      fj["limit_name"] = f.limit_name;
      fj["ratio"] = f.ratio();
    }
    j["figures"].push_back(fj);
  }
  return j.dump(2);
}

Result<std::string> save_report(const Report& r, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error("io", dir + ": " + ec.message());
  std::string stamp = r.date;
  for (auto& c : stamp)
    if (c == ':') c = '-';
  std::string path = dir + "/" + stamp + "-" + r.kind + (r.workload.empty() ? "" : "-" + r.workload) + ".json";
  std::ofstream out(path);
  if (!out) return make_error("io", path + ": cannot write");
  out << to_json(r) << "\n";
  return path;
}

}  // namespace vela::perf

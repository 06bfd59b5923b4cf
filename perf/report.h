#pragma once
// A benchmark's figures, printed as a human table and saved as JSON (device, date,
// commit, config, figures). Every throughput figure may carry its limit, so the
// report shows measured / limit next to it.
#include <cmath>
#include <string>
#include <vector>

#include "common/result.h"

namespace vela::perf {

struct Figure {
  std::string name;                  // e.g. "output tokens/s"
  double value = 0;
  std::string unit;                  // e.g. "tok/s", "s", "ms"
  double limit = std::nan("");       // the roofline (or baseline) for this figure; NaN = none
  std::string limit_name;            // "roofline", "HF transformers", ...
  bool higher_is_better = true;      // tok/s: yes; seconds: no
  // measured / limit for "higher is better", limit / measured otherwise: 1.0 = at the limit.
  double ratio() const { return std::isnan(limit) || value == 0 ? std::nan("") : higher_is_better ? value / limit : limit / value; }
};

struct Report {
  std::string kind;       // throughput | serve | roofline
  std::string workload;   // W1, ..., or "" for roofline
  std::string device;     // "cpu (2 cores)", "NVIDIA H200", ...
  std::string date;       // ISO 8601, UTC
  std::string commit;
  std::string config;     // effective config (YAML) or description
  std::vector<Figure> figures;
};

std::string utc_now_iso8601();
std::string build_commit();  // the git commit this binary was configured from

std::string format_table(const Report& report);
std::string to_json(const Report& report);
// Writes DIR/<date>-<kind>[-<workload>].json and returns its path.
Result<std::string> save_report(const Report& report, const std::string& dir);

}  // namespace vela::perf

#include "common/paths.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

#ifndef VELA_SOURCE_DIR
#define VELA_SOURCE_DIR ""
#endif

namespace vela {

std::string find_project_file(const std::string& relative_path) {
  namespace fs = std::filesystem;
  std::vector<fs::path> roots;
  if (const char* home = std::getenv("VELA_HOME")) roots.emplace_back(home);
  std::error_code ec;
  roots.push_back(fs::current_path(ec));
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) roots.push_back(exe.parent_path().parent_path().parent_path());
  if (*VELA_SOURCE_DIR) roots.emplace_back(VELA_SOURCE_DIR);
  for (const auto& r : roots)
    if (!r.empty() && fs::exists(r / relative_path, ec)) return (r / relative_path).string();
  return "";
}

}  // namespace vela

#pragma once
// Runs the built `vela` executable as a child process with a deadline and returns its
// exit code and everything it wrote (stdout and stderr together), plus a fresh temp
// directory per test for --save.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/runtime/process_helpers.h"

extern char** environ;

namespace vela::testing {

struct VelaRun {
  int exit_code = -1;  // -1: killed by a signal; -2: ran past its deadline (then killed)
  std::string output;
};

inline VelaRun run_vela(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  const std::string bin = std::string(VELA_BINARY_DIR) + "/bin/vela";
  char log_template[] = "/tmp/vela-bench-test-XXXXXX";
  const int fd = ::mkstemp(log_template);
  VelaRun result;
  if (fd < 0) return result;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fd, STDERR_FILENO);
  std::vector<std::string> all = {bin};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const bool spawned = ::posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), environ) == 0;
  posix_spawn_file_actions_destroy(&actions);
  ::close(fd);
  if (spawned) {
    auto status = wait_child(pid, timeout);
    result.exit_code = !status ? -2 : WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }
  std::ifstream in(log_template);
  std::stringstream ss;
  ss << in.rdbuf();
  result.output = ss.str();
  ::unlink(log_template);
  return result;
}

// A temp directory removed when the test ends.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vela-bench-results-XXXXXX";
    if (::mkdtemp(tmpl)) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  // The one *.json file --save wrote here ("" when there is not exactly one).
  std::string only_json() const {
    std::string found;
    int count = 0;
    for (const auto& e : std::filesystem::directory_iterator(path_))
      if (e.path().extension() == ".json") {
        found = e.path().string();
        ++count;
      }
    return count == 1 ? found : "";
  }

 private:
  std::string path_;
};

}  // namespace vela::testing

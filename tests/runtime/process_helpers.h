#pragma once
// Helpers for tests that run real processes: every wait has a deadline and a test
// never leaves a process behind.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

namespace vela::testing {

// Runs command through /bin/sh; appends what it prints (stdout, and stderr unless
// keep_stderr is false) to *output when given. The exit code, or -1 if it did not exit.
inline int shell(const std::string& command, std::string* output = nullptr, bool keep_stderr = true) {
  FILE* p = ::popen((command + (keep_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    if (output) output->append(buf, n);
  const int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// True while the process exists and is not a zombie.
inline bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  std::string pid_s, comm, state;
  stat >> pid_s >> comm >> state;
  return state != "Z" && state != "X";
}

// Waits up to timeout for a child to exit; returns its raw status, or nullopt
// (after SIGKILLing and reaping it) when it did not exit in time.
inline std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return std::nullopt;
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

}  // namespace vela::testing

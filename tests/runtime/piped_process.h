#pragma once
// A child process whose stdin and stdout (stderr merged) are pipes held by the
// test: it can type lines, send signals and read what was printed, each with a
// deadline. The child is killed when the object goes away.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/runtime/process_helpers.h"

extern char** environ;

namespace vela::testing {

class PipedProcess {
 public:
  explicit PipedProcess(std::vector<std::string> args) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    stdin_fd_ = in[1];
    stdout_fd_ = out[0];
  }
  ~PipedProcess() {
    close_stdin();
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      wait_child(pid_, std::chrono::seconds(10));
    }
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
  }

  pid_t pid() const { return pid_; }
  bool write(const std::string& text) { return ::write(stdin_fd_, text.data(), text.size()) == ssize_t(text.size()); }
  void close_stdin() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
  }

  // Reads until `pred(output so far)` holds or the deadline passes (or EOF); returns pred's verdict.
  template <class Pred>
  bool read_until(Pred pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred(output_)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || eof_) break;
      pollfd p{stdout_fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100))) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
      if (n <= 0) eof_ = true;
      else output_.append(buf, static_cast<size_t>(n));
    }
    return pred(output_);
  }
  bool read_until_contains(const std::string& needle, std::chrono::milliseconds timeout) {
    return read_until([&](const std::string& o) { return o.find(needle) != std::string::npos; }, timeout);
  }
  const std::string& output() const { return output_; }

  // Reads everything until EOF, then waits for the exit; the exit code, or -1
  // (killed by a signal) / -2 (timed out, killed).
  int wait_exit(std::chrono::milliseconds timeout) {
    using std::chrono::milliseconds;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    read_until([&](const std::string&) { return eof_; }, timeout);
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    auto status = wait_child(pid_, std::max(milliseconds(100), left));
    exited_ = true;
    if (!status) return -2;
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1, stdout_fd_ = -1;
  bool eof_ = false, exited_ = false;
  std::string output_;
};

}  // namespace vela::testing

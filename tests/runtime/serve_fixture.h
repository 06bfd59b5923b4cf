#pragma once
// Runs `vela serve` (the synthetic runner unless told otherwise) as a real child
// process for a test, with a config written to a temp file; always kills it (and so
// its workers) at the end. Everything the server makes on disk (the config, the
// frontend socket, its private socket directory: XDG_RUNTIME_DIR points here) lives
// in one directory of the test's, removed at the end even after a SIGKILL.
#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "tests/runtime/process_helpers.h"
#include "workers/synthetic_runner.h"

extern char** environ;

namespace vela::testing {

class ServeProcess {
 public:
  // extra_yaml is appended to a config that sets the endpoint and the log level;
  // runner is vela-worker's --runner ("synthetic" or "model").
  // endpoint: the frontend endpoint (default: ipc in the test's directory).
  explicit ServeProcess(const std::string& extra_yaml, const std::string& endpoint_name = "",
                        const std::string& runner = "synthetic", const std::string& endpoint = "") {
    (void)endpoint_name;  // the directory is unique already
    char tmpl[] = "/tmp/vela-test-XXXXXX";
    if (::mkdtemp(tmpl)) dir_ = tmpl;
    endpoint_ = endpoint.empty() ? "ipc://" + dir_ + "/frontend.sock" : endpoint;
    config_path_ = dir_ + "/config.yaml";
    // A test's own frontend section in extra_yaml comes later and wins (drain_timeout_s).
    std::ofstream(config_path_) << "frontend:\n  endpoint: " << endpoint_ << "\n  drain_timeout_s: 20\nlogging:\n  level: warn\n"
                                << extra_yaml;
    std::string bin = std::string(VELA_BINARY_DIR) + "/bin/vela";
    std::vector<std::string> args = {bin, "serve", "--config", config_path_, "--runner", runner};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings = {"XDG_RUNTIME_DIR=" + dir_};
    for (char** e = environ; e && *e; ++e)
      if (std::string(*e).rfind("XDG_RUNTIME_DIR=", 0) != 0) env_strings.push_back(*e);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    if (::posix_spawn(&pid_, bin.c_str(), nullptr, nullptr, argv.data(), envp.data()) != 0) pid_ = -1;
  }
  ~ServeProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      wait_child(pid_, std::chrono::seconds(10));
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  pid_t pid() const { return pid_; }
  const std::string& endpoint() const { return endpoint_; }
  // The test's directory: the config, the frontend socket, the server's private socket directory.
  const std::string& dir() const { return dir_; }

  // A connected client once the server answers a ping (it binds after its workers are up).
  std::unique_ptr<client::Client> connect(std::chrono::milliseconds timeout = std::chrono::seconds(30),
                                          const std::optional<client::ClientCurveKeys>& curve = std::nullopt) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto c = client::Client::connect(endpoint_, curve);
      if (c && (*c)->ping(std::chrono::milliseconds(300))) return std::move(c.value());
      if (!process_alive(pid_)) return nullptr;
    }
    return nullptr;
  }

  // The vela-worker processes whose parent is this server.
  std::vector<pid_t> worker_pids() const {
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    if (!d) return out;
    while (auto* e = ::readdir(d)) {
      pid_t p = std::atoi(e->d_name);
      if (p <= 0) continue;
      std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
      std::string pid_s, comm, state;
      pid_t ppid = 0;
      stat >> pid_s >> comm >> state >> ppid;
      if (ppid == pid_ && comm == "(vela-worker)") out.push_back(p);
    }
    ::closedir(d);
    return out;
  }

  // Waits for the server to exit; its exit code, or -1 (killed) / -2 (timed out, killed).
  int wait_exit(std::chrono::milliseconds timeout) {
    auto status = wait_child(pid_, timeout);
    exited_ = true;
    if (!status) return -2;
    return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  std::string dir_;
  std::string endpoint_;
  std::string config_path_;
};

// The tokens the synthetic runner produces after `prompt`.
inline std::vector<int32_t> expected_synthetic(const std::vector<int32_t>& prompt, int max_tokens, int32_t vocab = 32000) {
  std::vector<int32_t> seq = prompt, out;
  for (int i = 0; i < max_tokens; ++i) {
    int32_t t = synthetic_next_token(seq.back(), static_cast<int64_t>(seq.size()), vocab);
    seq.push_back(t);
    out.push_back(t);
  }
  return out;
}

}  // namespace vela::testing

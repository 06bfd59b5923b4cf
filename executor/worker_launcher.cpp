#include "executor/worker_launcher.h"

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

extern char** environ;

namespace vela {

std::string ExitStatus::describe() const {
  if (exited) return "exited with code " + std::to_string(code);
  return std::string("killed by signal ") + std::to_string(signal) + " (" + strsignal(signal) + ")";
}

WorkerProcess::WorkerProcess(WorkerProcess&& other) noexcept { *this = std::move(other); }

WorkerProcess& WorkerProcess::operator=(WorkerProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !reaped_) stop(0);
    if (pidfd_ >= 0) ::close(pidfd_);
    pid_ = other.pid_;
    pidfd_ = other.pidfd_;
    reaped_ = other.reaped_;
    status_ = other.status_;
    other.pid_ = -1;
    other.pidfd_ = -1;
    other.reaped_ = true;
  }
  return *this;
}

WorkerProcess::~WorkerProcess() {
  if (pid_ > 0 && !reaped_) stop(0);
  if (pidfd_ >= 0) ::close(pidfd_);
}

std::optional<ExitStatus> WorkerProcess::try_reap() {
  if (reaped_) return status_;
  if (pid_ <= 0) return std::nullopt;
  int raw = 0;
  pid_t r = ::waitpid(pid_, &raw, WNOHANG);
  if (r == 0) return std::nullopt;
  ExitStatus s;
  if (r < 0) {
    s.exited = true;  // already reaped elsewhere (ECHILD): nothing more to learn
    s.code = -1;
  } else if (WIFEXITED(raw)) {
    s.exited = true;
    s.code = WEXITSTATUS(raw);
  } else if (WIFSIGNALED(raw)) {
    s.signal = WTERMSIG(raw);
  }
  reaped_ = true;
  status_ = s;
  return s;
}

ExitStatus WorkerProcess::stop(double timeout_s) {
  using namespace std::chrono;
  const auto deadline = steady_clock::now() + duration<double>(timeout_s);
  while (true) {
    if (auto s = try_reap()) return *s;
    if (steady_clock::now() >= deadline) break;
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      auto left = duration_cast<milliseconds>(deadline - steady_clock::now()).count();
      ::poll(&p, 1, static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(left, 50))));
    } else {
      std::this_thread::sleep_for(milliseconds(5));
    }
  }
  ::kill(pid_, SIGKILL);
  // SIGKILL cannot be ignored; a stopped process is killed too. Wait for the kernel.
  while (true) {
    if (auto s = try_reap()) return *s;
    std::this_thread::sleep_for(milliseconds(1));
  }
}

void WorkerProcess::signal(int sig) const {
  if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

std::string default_worker_binary() {
  if (const char* env = std::getenv("VELA_WORKER_BINARY"); env && *env) return env;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "vela-worker";
  return (self.parent_path() / "vela-worker").string();
}

Result<WorkerProcess> spawn_worker(const std::string& binary, const WorkerSpec& spec) {
  if (::access(binary.c_str(), X_OK) != 0)
    return make_error("worker_binary", "worker binary '" + binary + "' is not executable: " +
                                           std::strerror(errno));
  std::vector<std::string> args = {
      binary,
      "--rank", std::to_string(spec.rank),
      "--world-size", std::to_string(spec.world_size),
      "--replica", std::to_string(spec.replica),
      "--device", spec.device,
      "--engine", spec.engine_endpoint,
      "--runner", spec.runner,
      "--parent-pid", std::to_string(::getpid()),
      "--log-level", spec.log_level,
  };
  if (!spec.trace_path.empty()) {
    args.push_back("--trace");
    args.push_back(spec.trace_path);
  }
  if (!spec.step_channel.empty()) {
    args.push_back("--step-channel");
    args.push_back(spec.step_channel);
    args.push_back("--step-spin-ns");
    args.push_back(std::to_string(spec.step_spin_ns));
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // The child starts with default signal dispositions and an empty mask, whatever the
  // engine's threads block (the engine blocks SIGTERM/SIGINT to read them synchronously).
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  // dup2 of an fd onto itself clears its close-on-exec flag in the child only.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int fd : spec.inherit_fds) posix_spawn_file_actions_adddup2(&actions, fd, fd);
  // Secrets (the worker's CURVE keys) travel in the environment, which only this user
  // can read (/proc/PID/environ), never in argv, which every user can.
  std::vector<char*> envp;
  for (char** e = environ; e && *e; ++e) envp.push_back(*e);
  std::vector<std::string> extra = spec.env;
  for (auto& e : extra) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, binary.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return make_error("spawn_failed", "posix_spawn of '" + binary + "' (rank " +
                                          std::to_string(spec.rank) + ") failed: " + std::strerror(rc));
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  return WorkerProcess(pid, pidfd);  // pidfd == -1 on old kernels: callers fall back to polling
}

}  // namespace vela

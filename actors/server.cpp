#include "actors/server.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "actors/client_bridge.h"
#include "actors/engine_actors.h"
#include "common/logging.h"
#include "transport/trace_summary.h"
#include "transport/zmq_io.h"
#include "llm/engine_setup.h"
#include "tokenizer/tokenizer.h"

namespace vela {
namespace {

using namespace actors;
namespace fs = std::filesystem;

std::shared_ptr<const Tokenizer> load_tokenizer(const Config& config) {
  const std::string dir = tokenizer_dir(config);
  if (dir.empty()) return nullptr;
  auto tok = Tokenizer::from_file((fs::path(dir) / "tokenizer.json").string());
  if (!tok) {
    logger("frontend")->warn("tokenizer in {} not loaded: {}", dir, tok.error().message);
    return nullptr;
  }
  return std::shared_ptr<const Tokenizer>(std::move(tok.value()));
}

WorkerGroupOptions worker_options(const Config& c, const ServeOptions& o, int32_t replica) {
  WorkerGroupOptions w;
  w.replica = replica;
  w.world_size = c.parallel.tensor_parallel_size;
  // Replica r uses devices [r * tp, (r + 1) * tp) of parallel.devices.
  for (int32_t i = 0; i < w.world_size; ++i) {
    size_t d = static_cast<size_t>(replica * w.world_size + i);
    w.devices.push_back(d < c.parallel.devices.size() ? c.parallel.devices[d] : "cpu");
  }
  w.transport = c.parallel.worker_transport;
  w.host = c.parallel.worker_host;
  w.runner = o.runner;
  w.log_level = c.logging.level;
  w.startup_timeout_s = c.parallel.worker_startup_timeout_s;
  w.step_timeout_s = c.parallel.step_timeout_s;
  w.step_channel = c.parallel.step_channel;
  w.shm_slot_bytes = uint64_t{static_cast<uint32_t>(c.parallel.shm_slot_kib)} << 10;
  w.step_spin_ns = static_cast<int64_t>(c.parallel.step_spin_us * 1000);
  return w;
}

// Waits for SIGINT/SIGTERM (blocked in every thread) up to timeout; 0 when none came.
int wait_signal(std::chrono::milliseconds timeout) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec ts{static_cast<time_t>(timeout.count() / 1000), static_cast<long>((timeout.count() % 1000) * 1000000)};
  int sig = ::sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

}  // namespace

int run_server(const Config& config, const ServeOptions& options) {
  auto log = logger("serve");
  // Block the stop signals before any thread exists: every thread inherits the mask
  // and only this one takes them, synchronously.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto resolved_len = resolve_max_model_len(config);
  if (!resolved_len) {
    log->error("{}", resolved_len.error().message);
    return 2;
  }
  const int32_t max_model_len = *resolved_len;
  // The client endpoint's keys and a live server on its path are refused now, before
  // any worker loads a model, not minutes later when the endpoint is bound.
  std::optional<ClientCurve> curve;
  if (config.security.curve()) {
    auto server_keys = transport::load_curve_secret_key(config.security.curve_secret_key_file);
    auto authorized = transport::load_curve_public_keys(config.security.curve_authorized_keys_file);
    if (!server_keys || !authorized) {
      log->error("security: {}", (!server_keys ? server_keys.error() : authorized.error()).message);
      return kExitConfigOrBind;
    }
    curve = ClientCurve{*server_keys, *authorized};
    log->info("clients must authenticate with CURVE (server public key {}, {} authorized client key(s))",
              server_keys->public_key, authorized->size());
  }
  if (auto free = transport::check_ipc_free(config.frontend.endpoint); !free) {
    log->error("{}", free.error().message);
    return kExitConfigOrBind;
  }
  auto tokenizer = load_tokenizer(config);
  const int32_t dp = config.parallel.data_parallel_size;
  const std::string trace_jsonl = config.trace.enabled ? config.trace.path + ".jsonl" : "";
  if (!trace_jsonl.empty()) fs::remove(trace_jsonl);

  ServerStatus status;
  status.num_engines = dp;
  int exit_code = 0;
  std::unique_ptr<ClientBridge> bridge;
  {
    caf::actor_system_config cfg;
    caf::actor_system system{cfg};
    std::optional<trace_actor> tracer;
    if (!trace_jsonl.empty()) tracer = spawn_tracer(system, trace_jsonl);
    FrontendSettings fs_settings;
    fs_settings.max_message_bytes = config.frontend.max_message_bytes;
    fs_settings.max_pending_requests = config.frontend.max_pending_requests;
    fs_settings.num_engines = static_cast<size_t>(dp);
    fs_settings.tokenizer_threads = config.frontend.tokenizer_threads;
    fs_settings.stall_after_s = std::clamp(config.parallel.step_timeout_s / 4, 0.25, 2.0);
    auto frontend = spawn_frontend(system, fs_settings, tokenizer, tracer, &status);
    std::vector<engine_core_actor> engines;
    for (int32_t r = 0; r < dp; ++r) {
      EngineCoreSettings es;
      es.engine_index = r;
      es.core = make_engine_core_options(config, max_model_len);
      es.restart_workers = config.parallel.restart_workers;
      es.workers = worker_options(config, options, r);
      es.trace_path = trace_jsonl;
      engines.push_back(spawn_engine_core(system, es, frontend, tracer, &status));
    }
    caf::anon_send(frontend, EnginesMsg{engines});

    // Startup: every replica ready or dead (serving needs one), or a stop signal.
    bool stopping = false;
    while (status.engines_ready.load() + status.engines_dead.load() < dp && status.exit_code.load() < 0) {
      if (wait_signal(std::chrono::milliseconds(50))) {
        stopping = true;
        break;
      }
    }
    if (status.exit_code.load() < 0 && !stopping) {
      ClientBridgeCallbacks cb;
      cb.on_frames = [frontend](std::string identity, std::vector<std::string> frames, int64_t recv_ns) {
        caf::anon_send(frontend, ClientFramesMsg{std::move(identity), std::move(frames), recv_ns});
      };
      cb.on_client_gone = [frontend](const std::string& identity) { caf::anon_send(frontend, ClientGoneMsg{identity}); };
      auto started = ClientBridge::start(config.frontend.endpoint, cb, curve);
      if (!started) {
        status.fail(kExitConfigOrBind, started.error().message);
      } else {
        bridge = std::move(started.value());
        caf::anon_send(frontend, BridgeMsg{bridge.get()});
        log->info("serving on {} ({} replica(s) x {} worker(s))", bridge->endpoint(), dp,
                  config.parallel.tensor_parallel_size);
      }
    }
    // Serve until a signal (drain) or an unhealthy engine.
    const double drain_timeout_s =
        options.drain_timeout_s >= 0 ? options.drain_timeout_s : config.frontend.drain_timeout_s;
    while (!stopping && status.exit_code.load() < 0) {
      if (int sig = wait_signal(std::chrono::milliseconds(100))) {
        log->info("{}: draining in-flight requests (up to {} s)", sig == SIGTERM ? "SIGTERM" : "SIGINT", drain_timeout_s);
        caf::anon_send(frontend, DrainMsg{});
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(drain_timeout_s);
        while (!status.drained.load() && status.exit_code.load() < 0 && std::chrono::steady_clock::now() < deadline) {
          if (wait_signal(std::chrono::milliseconds(20))) break;  // a second signal: stop now
        }
        if (!status.drained.load() && status.exit_code.load() < 0) {
          // Every request still running gets its final ("shutdown"), never silence.
          caf::anon_send(frontend, CutOffMsg{});
          const auto cut_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
          while (!status.drained.load() && std::chrono::steady_clock::now() < cut_deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
          log->warn("drain timed out: {} request(s) ended with finish_reason shutdown; exiting {}",
                    status.num_cut_off.load(), kExitRequestsCutOff);
          exit_code = kExitRequestsCutOff;
        }
        stopping = true;
      }
    }
    if (status.exit_code.load() >= 0) {
      std::lock_guard lock(status.mu);
      log->error("exiting: {}", status.fatal_error);
      exit_code = status.exit_code.load();
      // Let the error replies already queued reach the clients.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    {
      // The engines finish their steps in flight first; the tracer stops only after
      // them, so the records of those last steps reach the trace.
      caf::scoped_actor self{system};
      for (auto& e : engines) self->monitor(e);
      for (auto& e : engines) caf::anon_send(e, StopMsg{5});
      caf::anon_send_exit(frontend, caf::exit_reason::user_shutdown);
      for (size_t i = 0; i < engines.size(); ++i)
        self->receive([](const caf::down_msg&) {}, caf::after(std::chrono::seconds(10)) >> [] {});
    }
    if (tracer) caf::anon_send_exit(*tracer, caf::exit_reason::user_shutdown);
    system.await_all_actors_done();
    // The bridge's callbacks hold the frontend's handle; the actor system cannot
    // finish (it waits for every detached actor to be released) until it is gone.
    bridge.reset();
  }
  if (!trace_jsonl.empty()) {
    auto written = write_chrome_trace(trace_jsonl, config.trace.path + ".chrome.json");
    if (!written) log->warn("chrome trace not written: {}", written.error().message);
  }
  return exit_code;
}

}  // namespace vela

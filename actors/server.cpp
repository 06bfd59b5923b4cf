#include "actors/server.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "actors/client_bridge.h"
#include "actors/engine_actors.h"
#include "common/logging.h"
#include "http/http_server.h"
#include "metrics/serve_metrics.h"
#include "model/device.h"
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

// The model's name in the HTTP API: http.served_model_name, else the model directory's name.
std::string served_model_name(const Config& c) {
  if (!c.http.served_model_name.empty()) return c.http.served_model_name;
  fs::path p(c.model.path);
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().empty() ? "vela" : p.filename().string();
}

// http.api_key, else the variable http.api_key_env names (which must then be set:
// a key the operator asked for is never silently dropped).
Result<std::string> resolve_api_key(const Config& c) {
  if (!c.http.api_key.empty() || c.http.api_key_env.empty()) return c.http.api_key;
  const char* v = std::getenv(c.http.api_key_env.c_str());
  if (!v || !*v)
    return make_error("bad_config", "http.api_key_env names the environment variable " + c.http.api_key_env +
                                        ", which is not set (or empty)");
  return std::string(v);
}

bool is_loopback(const std::string& host) { return host == "127.0.0.1" || host == "::1" || host == "localhost"; }

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
  // Devices that do not exist are refused before any worker starts.
  if (int have = -1; !config.parallel.devices.empty()) {
    for (const std::string& d : config.parallel.devices) {
      auto device = parse_device(d);
      if (!device || device->type != DeviceType::kCUDA) continue;
      if (have < 0) have = cuda_device_count();
      if (device->index >= have) {
        log->error("parallel.devices: {} does not exist: this machine has {} CUDA device{}", d, have,
                   have == 1 ? "" : "s");
        return 2;
      }
    }
  }
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

  std::string api_key;
  if (config.http.port > 0) {
    auto key = resolve_api_key(config);
    if (!key) {
      log->error("{}", key.error().message);
      return kExitConfigOrBind;
    }
    api_key = std::move(*key);
    if (!is_loopback(config.http.host) && api_key.empty())
      log->warn("http.host is {} (not loopback) and no API key is set: anyone who reaches it can use the server",
                config.http.host);
  }

  ServerStatus status;
  metrics::ServeMetrics serve_metrics(static_cast<size_t>(dp), served_model_name(config));
  status.num_engines = dp;
  int exit_code = 0;
  std::unique_ptr<ClientBridge> bridge;
  std::unique_ptr<http::HttpServer> http_server;
  {
    caf::actor_system_config cfg;
    caf::actor_system system{cfg};
    std::optional<trace_actor> tracer;
    if (!trace_jsonl.empty()) tracer = spawn_tracer(system, trace_jsonl);
    FrontendSettings fs_settings;
    fs_settings.max_message_bytes = config.frontend.max_message_bytes;
    fs_settings.max_pending_requests = config.frontend.max_pending_requests;
    fs_settings.num_engines = static_cast<size_t>(dp);
    fs_settings.metrics = &serve_metrics;
    fs_settings.tokenizer_threads = config.frontend.tokenizer_threads;
    fs_settings.detokenizer_threads = config.frontend.detokenizer_threads;
    fs_settings.stall_after_s = std::clamp(config.parallel.step_timeout_s / 4, 0.25, 2.0);
    auto frontend = spawn_frontend(system, fs_settings, tokenizer, tracer, &status);
    std::vector<engine_core_actor> engines;
    for (int32_t r = 0; r < dp; ++r) {
      EngineCoreSettings es;
      es.engine_index = r;
      es.core = make_engine_core_options(config, max_model_len);
      es.restart_workers = config.parallel.restart_workers;
      es.workers = worker_group_options(config, options.runner, r);
      es.trace_path = trace_jsonl;
      es.metrics = &serve_metrics;
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
    if (status.exit_code.load() < 0 && !stopping && config.http.port > 0) {
      http::HttpServerOptions ho;
      ho.host = config.http.host;
      ho.port = config.http.port;
      ho.api_key = api_key;
      ho.served_model_name = served_model_name(config);
      ho.max_model_len = max_model_len;
      ho.max_body_bytes = config.http.max_body_bytes;
      ho.max_header_bytes = config.http.max_header_bytes;
      ho.max_connections = config.http.max_connections;
      ho.max_requests_per_s = config.http.max_requests_per_s;
      ho.idle_timeout_s = config.http.idle_timeout_s;
      http::HttpServerCallbacks hc;
      hc.on_generate = [frontend](std::string identity, std::vector<client::GenerateRequest> choices, bool auto_max,
                                  int64_t recv_ns) {
        caf::anon_send(frontend, HttpGenerateMsg{std::move(identity), std::move(choices), auto_max, recv_ns});
      };
      hc.on_gone = [frontend](const std::string& identity) { caf::anon_send(frontend, ClientGoneMsg{identity}); };
      auto started = http::HttpServer::start(ho, hc, tokenizer, &serve_metrics);
      if (!started) {
        status.fail(kExitConfigOrBind, started.error().message);
      } else {
        http_server = std::move(started.value());
        caf::anon_send(frontend, HttpFrontMsg{[h = http_server.get()](const std::string& identity, client::ServerEvent ev) {
                         h->deliver(identity, std::move(ev));
                       }});
        log->info("HTTP (OpenAI API) on http://{}:{} as model '{}'{}", http_server->host(), http_server->port(),
                  ho.served_model_name, api_key.empty() ? "" : " (API key required)");
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
    http_server.reset();  // its callbacks, too, hold the frontend's handle
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

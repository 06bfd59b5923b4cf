// `vela bench serve --server ENDPOINT --workload L1`: drives a running `vela serve`
// through the C++ ZeroMQ client (and/or, with --http URL, its OpenAI HTTP API: both
// fronts are then run on the same workload, one after the other, and reported side
// by side) on the workload's arrival schedule (Poisson for L1;
// --rate rescales it), greedy, ignore_eos, streaming, prompts as token ids. Reports
// TTFT, TPOT, ITL and end-to-end latency percentiles (perf/serve_metrics.h defines
// them), request and output-token throughput over the run's wall time, and every
// failed request; TTFT and TPOT sit next to their floors (perf::latency_bound) when
// the ceilings are known.
//
// One thread does everything: the client's socket belongs to the thread that uses
// it (client/client.h), so sends happen on schedule between receives, each receive
// waiting at most until the next send is due.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <unordered_map>

#include "apps/vela/bench_common.h"
#include "apps/vela/http_stream_client.h"
#include "client/client.h"
#include "perf/report.h"
#include "perf/roofline.h"
#include "perf/serve_metrics.h"
#include "perf/workloads.h"

namespace vela::cli {
namespace {

struct ServeBenchOpts {
  std::string server, workload = "L1", model, model_shape, results_dir = "bench/results";
  std::string http, api_key;        // --http URL: the OpenAI API front (with its key)
  std::string device;               // what the server runs on, for the report
  perf::WorkloadScale scale;
  double rate = 0;                  // requests/s; 0 = the workload's own
  double hbm_tbps = 0, gemm_tflops = 0;
  double request_timeout_s = 600;   // a request not finished this long after its send fails
  double connect_timeout_s = 30;
  bool save = false, no_progress = false;
};

using Clock = std::chrono::steady_clock;

void draw_progress(size_t done, size_t failed, size_t sent, size_t total, double elapsed_s) {
  const int width = 40;
  const int filled = total ? static_cast<int>(width * done / total) : width;
  std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu done, %zu failed, %zu sent, %.1f s ", filled,
               "========================================", width - filled, "", done, total, failed, sent, elapsed_s);
  std::fflush(stderr);
}

// Sends every request at its arrival offset and records what comes back, until each
// has its final, its error or its timeout. Returns the records and the wall time.
// C: client::Client or HttpStreamClient (submit, next_event, abort).
template <class C>
std::vector<perf::RequestRecord> drive(C& c, const perf::Workload& w, const ServeBenchOpts& o, double* wall_s) {
  const size_t n = w.requests.size();
  std::vector<perf::RequestRecord> records(n);
  std::unordered_map<std::string, size_t> live;  // request id -> index, until finished
  const bool show = !o.no_progress && isatty(STDERR_FILENO);
  const auto start = Clock::now();
  auto now_s = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  size_t next = 0, done = 0, failed = 0;
  double last_draw = -1, last_timeout_scan = 0;
  auto finish = [&](size_t i, double t, std::string failure) {
    auto& r = records[i];
    r.finished = true;
    r.end_s = t;
    if (!failure.empty()) {
      r.failure = std::move(failure);
      ++failed;
    }
    ++done;
  };
  while (next < n || !live.empty()) {
    // Send everything that is due.
    while (next < n && w.requests[next].arrival_offset_s <= now_s()) {
      const auto& req = w.requests[next];
      client::GenerateRequest g;
      g.request_id = w.name + "-" + std::to_string(next);
      g.prompt_token_ids = req.prompt_token_ids;
      g.params.temperature = 0.0f;
      g.params.ignore_eos = true;
      g.params.max_tokens = req.max_tokens;
      g.stream = true;
      auto& r = records[next];
      r.expected_tokens = req.max_tokens;
      r.send_s = now_s();
      if (auto sent = c.submit(g); !sent) finish(next, r.send_s, "send failed: " + sent.error().message);
      else live.emplace(g.request_id, next);
      ++next;
    }
    // Wait for an event, at most until the next send is due (and 100 ms, so
    // timeouts and the progress bar stay current).
    double wait_s = 0.1;
    if (next < n) wait_s = std::min(wait_s, w.requests[next].arrival_offset_s - now_s());
    const auto wait = std::chrono::milliseconds(std::max<int64_t>(0, static_cast<int64_t>(wait_s * 1e3)));
    for (auto ev = c.next_event(wait); ev; ev = c.next_event(std::chrono::milliseconds(0))) {
      const double t = now_s();
      auto it = live.find(ev->request_id);
      if (it == live.end()) continue;  // a request that already failed (timed out), or not ours
      const size_t i = it->second;
      using K = client::ServerEvent::Kind;
      if (!ev->token_ids.empty() && ev->kind != K::kError)
        records[i].arrivals.push_back({t, static_cast<int32_t>(ev->token_ids.size())});
      if (ev->kind == K::kDelta || ev->kind == K::kPong) continue;
      std::string failure;
      if (ev->kind == K::kError)
        failure = "error [" + ev->code + "]" + (ev->field.empty() ? "" : " " + ev->field) + ": " + ev->message;
      else if (ev->finish_reason == "error" || ev->finish_reason == "abort")
        failure = "final " + ev->finish_reason + (ev->message.empty() ? "" : ": " + ev->message);
      finish(i, t, std::move(failure));
      live.erase(it);
      if (next < n && w.requests[next].arrival_offset_s <= now_s()) break;  // a send is due
    }
    const double t = now_s();
    if (t - last_timeout_scan > 0.05) {
      last_timeout_scan = t;
      for (auto it = live.begin(); it != live.end();) {
        auto& r = records[it->second];
        if (t - r.send_s <= o.request_timeout_s) {
          ++it;
          continue;
        }
        (void)c.abort(it->first);  // frees its KV blocks; its "abort" final is ignored
        char why[128];
        std::snprintf(why, sizeof why, "timed out after %.0f s with %lld of %d tokens", o.request_timeout_s,
                      static_cast<long long>(r.output_tokens()), r.expected_tokens);
        finish(it->second, t, why);
        it = live.erase(it);
      }
    }
    if (show && t - last_draw > 0.2) {
      last_draw = t;
      draw_progress(done, failed, next, n, t);
    }
  }
  *wall_s = now_s();
  if (show) {
    draw_progress(done, failed, next, n, *wall_s);
    std::fputc('\n', stderr);
  }
  return records;
}

void add_percentile_figures(perf::Report& report, const std::string& name, const perf::Percentiles& p, double floor_s,
                            const std::string& floor_name) {
  const std::pair<const char*, double> rows[] = {{"mean", p.mean}, {"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}};
  for (const auto& [label, v] : rows) {
    perf::Figure f{name + " " + label, v * 1e3, "ms", std::nan(""), "", false};
    if (!std::isnan(floor_s)) {
      f.limit = floor_s * 1e3;
      f.limit_name = floor_name;
    }
    report.figures.push_back(f);
  }
}

// The per-request TTFT and TPOT floors (their median over the workload's requests),
// or NaN when no ceilings are known.
perf::LatencyBound floors(const perf::Workload& w, const ServeBenchOpts& o, std::string* ceiling_device) {
  perf::LatencyBound none{std::nan(""), std::nan("")};
  // A server on a GPU (its --device names cuda or NVIDIA) is held against the GPU's
  // ceilings, measured here: the client runs on the server's machine.
  const bool on_gpu = o.device.find("cuda") != std::string::npos || o.device.find("NVIDIA") != std::string::npos;
  auto ceilings = measure_or_take_ceilings(o.hbm_tbps, o.gemm_tflops, ceiling_device,
                                           on_gpu ? CeilingsOf::kGpu : CeilingsOf::kEngineDevice);
  if (!ceilings) {
    std::cerr << "note: no TTFT/TPOT floors: " << ceilings.error().message << "\n";
    return none;
  }
  std::string config_path;
  if (!o.model.empty()) {
    config_path = o.model + "/config.json";
  } else {
    const std::string name = o.model_shape.empty() ? w.model_shape : o.model_shape;
    config_path = model_shape_path(name);
    if (config_path.empty()) fail("--model-shape " + name + ": no perf/models/" + name + "/config.json");
  }
  auto shape = perf::read_model_shape(config_path, ceilings->bytes_per_param);
  if (!shape) fail(shape.error().message);
  std::vector<double> ttft, tpot;
  for (const auto& r : w.requests) {
    auto b = perf::latency_bound(r, *shape, *ceilings);
    ttft.push_back(b.ttft_s);
    tpot.push_back(b.tpot_s);
  }
  return {perf::percentiles(ttft).p50, perf::percentiles(tpot).p50};
}

void run(const ServeBenchOpts& o) {
  auto workload = perf::make_workload(o.workload, o.scale);
  if (!workload) fail(workload.error().message);
  perf::Workload& w = *workload;
  if (o.rate > 0) {
    if (w.request_rate <= 0) fail("--rate: workload " + w.name + " sends everything at t=0; only L1 has arrivals to rescale");
    // Poisson arrivals at rate r: offsets scale with 1/r.
    for (auto& r : w.requests) r.arrival_offset_s *= w.request_rate / o.rate;
    w.request_rate = o.rate;
  }
  if (o.server.empty() && o.http.empty()) fail("give --server ENDPOINT (ZeroMQ), --http URL, or both");
  const auto connect_deadline = Clock::now() + std::chrono::duration<double>(o.connect_timeout_s);
  std::unique_ptr<client::Client> zmq_client;
  if (!o.server.empty()) {
    auto client = client::Client::connect(o.server);
    if (!client) fail(client.error().message);
    zmq_client = std::move(client.value());
    while (!zmq_client->ping(std::chrono::milliseconds(500)))
      if (Clock::now() > connect_deadline)
        fail("no answer from a server at " + o.server + " within " + std::to_string(static_cast<int>(o.connect_timeout_s)) + " s");
  }
  std::unique_ptr<HttpStreamClient> http_client;
  if (!o.http.empty()) {
    auto client = HttpStreamClient::create(o.http, o.api_key);
    if (!client) fail(client.error().message);
    http_client = std::move(client.value());
    while (!http_client->healthy(std::chrono::milliseconds(500)))
      if (Clock::now() > connect_deadline)
        fail("no healthy HTTP server at " + o.http + " within " + std::to_string(static_cast<int>(o.connect_timeout_s)) + " s");
  }

  std::string ceiling_device;
  const auto floor = floors(w, o, &ceiling_device);  // before the load: measuring uses the device
  const std::string floor_name = "floor (" + ceiling_device + ")";
  size_t total_failed = 0, total_requests = 0;
  for (const bool over_http : {false, true}) {
    if (over_http ? !http_client : !zmq_client) continue;
    const std::string front = over_http ? o.http : o.server;
    if (zmq_client && http_client) std::cout << "== " << (over_http ? "HTTP (OpenAI API) " : "ZeroMQ ") << front << "\n";
    // "serve-http" keeps the HTTP run's saved report apart from the ZeroMQ one.
    perf::Report report{over_http ? "serve-http" : "serve", w.name, "", perf::utc_now_iso8601(), perf::build_commit(), "", {}};
    double wall_s = 0;
    const auto records = over_http ? drive(*http_client, w, o, &wall_s) : drive(*zmq_client, w, o, &wall_s);
    const auto s = perf::summarize(records, wall_s);
    const auto d = perf::digest(w);

    // The client cannot see the server's device: --device names it; else the device the
    // ceilings were measured on (the same machine); else the endpoint alone.
    if (!o.device.empty()) report.device = o.device;
    else if (!std::isnan(floor.ttft_s) && ceiling_device != "given ceilings") report.device = ceiling_device;
    else report.device = "server at " + front;
    report.device += " (client on " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " cores)";
    std::ostringstream config;
    config << "server: " << front << (over_http ? " (HTTP, OpenAI API)" : " (ZeroMQ)") << "\nmodel: "
           << (!o.model.empty() ? o.model : "perf/models/" + (o.model_shape.empty() ? w.model_shape : o.model_shape))
           << "\nworkload: " << w.name << "\nrequests: " << d.requests
           << "\nrequest_rate: " << w.request_rate << "\nlength_factor: " << o.scale.length_factor
           << "\nmax_token_id: " << o.scale.max_token_id << "\nprompt_tokens: " << d.prompt_tokens
           << "\noutput_tokens: " << d.output_tokens << "\nrequest_timeout_s: " << o.request_timeout_s
           << "\nsampling: greedy, ignore_eos, streaming\n";
    report.config = config.str();
    const double nan = std::nan("");
    report.figures.push_back({"requests", static_cast<double>(s.requests), "", nan, "", true});
    report.figures.push_back({"completed", static_cast<double>(s.completed), "", static_cast<double>(s.requests), "sent", true});
    report.figures.push_back({"failed", static_cast<double>(s.failed), "", nan, "", false});
    report.figures.push_back({"offered rate", w.request_rate, "req/s", nan, "", true});
    report.figures.push_back({"requests/s", s.request_throughput, "req/s", nan, "", true});
    report.figures.push_back({"output tokens/s", s.output_throughput, "tok/s", nan, "", true});
    report.figures.push_back({"wall time", s.wall_s, "s", nan, "", false});
    report.figures.push_back({"output tokens", static_cast<double>(s.output_tokens), "tok",
                              static_cast<double>(d.output_tokens), "requested", true});
    add_percentile_figures(report, "TTFT", s.ttft_s, floor.ttft_s, floor_name);
    add_percentile_figures(report, "TPOT", s.tpot_s, floor.tpot_s, floor_name);
    add_percentile_figures(report, "ITL", s.itl_s, nan, "");
    add_percentile_figures(report, "E2E", s.e2e_s, nan, "");
    std::cout << perf::format_table(report);
    for (const auto& f : s.failures) std::cout << "failed request " << f << "\n";
    if (o.save) {
      auto path = perf::save_report(report, o.results_dir);
      if (!path) fail(path.error().message);
      std::cout << "saved " << *path << "\n";
    }
    total_failed += s.failed;
    total_requests += s.requests;
  }
  if (total_failed > 0) fail(std::to_string(total_failed) + " of " + std::to_string(total_requests) + " requests failed");
}

}  // namespace

void add_bench_serve(CLI::App& bench) {
  auto o = std::make_shared<ServeBenchOpts>();
  auto* cmd = bench.add_subcommand("serve", "Drive a running `vela serve` on a workload's arrival schedule (L1); latency percentiles");
  cmd->add_option("--server", o->server, "the server's ZeroMQ frontend endpoint, e.g. ipc:///tmp/vela-frontend.sock");
  cmd->add_option("--http", o->http, "the server's HTTP front, e.g. http://127.0.0.1:8000 (with --server: both fronts, "
                                     "one after the other, on the same workload)");
  cmd->add_option("--api-key", o->api_key, "the HTTP API key (http.api_key), if the server needs one");
  cmd->add_option("--workload", o->workload, "L1 (Poisson arrivals) | W1 | W2 | S1 | P1 (all at t=0)")
      ->check(CLI::IsMember({"W1", "W2", "S1", "L1", "P1"}));
  cmd->add_option("--rate", o->rate, "requests/s: rescale the Poisson arrivals to this rate")->check(CLI::PositiveNumber);
  cmd->add_option("--num-requests", o->scale.num_requests, "run this many requests instead (CPU runs)")->check(CLI::PositiveNumber);
  cmd->add_option("--length-factor", o->scale.length_factor, "scale input and output lengths (CPU runs)")->check(CLI::Range(1e-4, 1.0));
  cmd->add_option("--max-token-id", o->scale.max_token_id, "prompts use ids below this (and below the served vocabulary)")
      ->check(CLI::Range(2, 1 << 30));
  cmd->add_option("--device", o->device,
                  "what the server runs on (e.g. \"cpu (2 cores)\", \"NVIDIA H200 (cuda:0)\"): the report's device; "
                  "a GPU here means the floors come from this machine's GPU ceilings");
  cmd->add_option("--model", o->model, "the served model's directory: its config.json gives the shape for the floors");
  cmd->add_option("--model-shape", o->model_shape, "perf/models/NAME for the floors (default: the workload's shape)");
  cmd->add_option("--hbm-tbps", o->hbm_tbps, "HBM bandwidth for the floors (else measured on a CUDA build)");
  cmd->add_option("--gemm-tflops", o->gemm_tflops, "bf16 GEMM rate for the floors (else measured on a CUDA build)");
  cmd->add_option("--request-timeout", o->request_timeout_s, "seconds after its send a request counts as failed")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--connect-timeout", o->connect_timeout_s, "seconds to wait for the server's first pong")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--results-dir", o->results_dir, "where --save writes the JSON");
  cmd->add_flag("--save", o->save, "save the JSON report");
  cmd->add_flag("--no-progress", o->no_progress, "no progress bar");
  cmd->callback([o]() { run(*o); });
}

}  // namespace vela::cli

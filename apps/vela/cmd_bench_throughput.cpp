// `vela bench throughput --workload W1|W2|S1|P1`: the workload generated from its
// seed, every request at t=0 with ignore_eos, run through the in-process engine;
// reports requests/s, output and total tokens/s, wall time, peak memory and the
// prefix-cache hit rate, each next to its roofline bound when ceilings are known.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include "apps/vela/bench_common.h"
#include "configs/config.h"
#include "llm/engine_setup.h"
#include "llm/llm_engine.h"
#include "perf/report.h"
#include "perf/roofline.h"
#include "perf/workloads.h"
#include "workers/model_runner.h"

namespace vela::cli {
namespace {

struct ThroughputOpts {
  std::string workload = "W1";
  std::string config_file, model, runner = "model", results_dir = "bench/results", device;
  std::vector<std::string> overrides;
  perf::WorkloadScale scale;
  double hbm_tbps = 0, gemm_tflops = 0;
  bool save = false, no_progress = false, enforce_eager = false;
};

double peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;
}

void progress(size_t done, size_t total, double elapsed_s) {
  const int width = 40;
  const int filled = total ? static_cast<int>(width * done / total) : width;
  std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu requests, %.1f s", filled, "========================================",
               width - filled, "", done, total, elapsed_s);
  std::fflush(stderr);
}

void run(const ThroughputOpts& o) {
  auto workload = perf::make_workload(o.workload, o.scale);
  if (!workload) fail(workload.error().message);
  if (workload->request_rate > 0)
    fail("workload " + o.workload + " has Poisson arrivals: run it with `vela bench serve` against a server");
  auto config = load_config(o.config_file, o.overrides);
  if (!config) fail(config.error().message);
  // Default model: random weights of the workload's real shape.
  config->model.path = !o.model.empty() ? o.model : find_project_file("perf/models/" + workload->model_shape);
  if (o.model.empty()) config->model.load_format = "dummy";
  if (!o.device.empty()) config->parallel.devices = {o.device};
  if (o.enforce_eager) config->model.enforce_eager = true;
  apply_logging(config->logging);
  auto resolved = resolve_model_paths(*config);
  if (!resolved) fail(resolved.error().message);
  const auto create_start = std::chrono::steady_clock::now();
  auto engine = LLMEngine::create(*resolved, o.runner);
  if (!engine) fail(engine.error().message);
  // Weights loaded, activations reserved, one profiling forward, KV cache allocated.
  const double startup_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - create_start).count();
  LLMEngine& e = **engine;
  if (workload->requests.front().prompt_token_ids.size() > 0 && o.scale.max_token_id > e.profile().vocab_size)
    fail("prompt ids go up to " + std::to_string(o.scale.max_token_id) + " but the vocabulary has " +
         std::to_string(e.profile().vocab_size) + " tokens: lower --max-token-id");

  const size_t n = workload->requests.size();
  for (size_t i = 0; i < n; ++i) {
    EngineCoreRequest r;
    r.request_id = o.workload + "-" + std::to_string(i);
    r.prompt_token_ids = workload->requests[i].prompt_token_ids;
    r.sampling_params.temperature = 0.0f;
    r.sampling_params.ignore_eos = true;
    r.sampling_params.max_tokens = workload->requests[i].max_tokens;
    if (auto rejected = e.add_request(std::move(r))) fail("request " + std::to_string(i) + ": " + rejected->error);
  }
  const bool show = !o.no_progress && isatty(STDERR_FILENO);
  size_t done = 0;
  int64_t output_tokens = 0;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  double last_draw = -1;
  while (e.has_unfinished_requests()) {
    auto outs = e.step();
    if (!outs) fail(outs.error().message);
    for (const auto& out : (*outs)->outputs) {
      output_tokens += static_cast<int64_t>(out.new_token_ids.size());
      if (out.finish_reason == FinishReason::kError) fail(out.request_id + ": " + out.error);
      if (out.finish_reason != FinishReason::kNone) ++done;
    }
    if (show && elapsed() - last_draw > 0.2) {
      last_draw = elapsed();
      progress(done, n, last_draw);
    }
  }
  const double wall = elapsed();
  if (show) {
    progress(done, n, wall);
    std::fputc('\n', stderr);
  }
  const auto d = perf::digest(*workload);
  const auto stats = e.scheduler().stats();

  perf::Report report{"throughput", o.workload, "cpu", perf::utc_now_iso8601(), perf::build_commit(),
                      dump_config(*resolved), {}};
  const std::string device = resolved->parallel.devices.empty() ? "cpu" : resolved->parallel.devices[0];
  std::string devices = device;
  for (size_t i = 1; i < resolved->parallel.devices.size(); ++i) devices += "+" + resolved->parallel.devices[i];
  report.device = device == "cpu" ? "cpu (" + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " cores), runner " + o.runner
                                  : devices + " (bf16, tp " + std::to_string(resolved->parallel.tensor_parallel_size) +
                                        "), runner " + o.runner;
  // The bound needs ceilings: measured on a GPU build, or given.
  perf::Ceilings ceilings{};
  std::string ceiling_device;
  bool have_bound = false;
  // The ceilings of the device the engine ran on (a GPU run is held against the GPU).
  const CeilingsOf of = device.rfind("cuda", 0) == 0 ? CeilingsOf::kGpu : CeilingsOf::kEngineDevice;
  if (auto c = measure_or_take_ceilings(o.hbm_tbps, o.gemm_tflops, &ceiling_device, of); c) {
    ceilings = *c;
    have_bound = true;
  } else {
    std::cerr << "note: no bounds: " << c.error().message << "\n";
  }
  // Tensor parallelism spreads the weights and the KV cache over tp GPUs: the bound
  // is that of their summed bandwidth and compute (the all-reduces cost extra: what
  // the figure misses of the bound includes them).
  const int32_t tp = resolved->parallel.tensor_parallel_size;
  if (have_bound && tp > 1 && of == CeilingsOf::kGpu) {
    ceilings.hbm_bytes_per_s *= tp;
    ceilings.gemm_flops_per_s *= tp;
    ceiling_device += " x " + std::to_string(tp) + " GPUs";
  }
  perf::WorkloadBound bound;
  if (have_bound) {
    auto shape = perf::read_model_shape(resolved->model.path, ceilings.bytes_per_param);
    if (shape) bound = perf::workload_bound(*workload, *shape, ceilings, resolved->scheduler.max_num_seqs);
    have_bound = shape.ok();
  }
  auto with_bound = [&](perf::Figure f, double limit) {
    if (have_bound) {
      f.limit = limit;
      f.limit_name = "roofline (" + ceiling_device + ")";
    }
    return f;
  };
  const double nan = std::nan("");
  report.figures.push_back({"requests", static_cast<double>(n), "", nan, "", true});
  report.figures.push_back({"requests/s", n / wall, "req/s", nan, "", true});
  report.figures.push_back(with_bound({"output tokens/s", output_tokens / wall, "tok/s", nan, "", true},
                                      bound.output_tokens / bound.total_s()));
  report.figures.push_back(with_bound({"total tokens/s", (output_tokens + d.prompt_tokens) / wall, "tok/s", nan, "", true},
                                      (bound.output_tokens + d.prompt_tokens) / bound.total_s()));
  report.figures.push_back(with_bound({"wall time", wall, "s", nan, "", false}, bound.total_s()));
  report.figures.push_back({"output tokens", static_cast<double>(output_tokens), "tok", static_cast<double>(d.output_tokens),
                            "requested", true});
  report.figures.push_back({"prompt tokens", static_cast<double>(d.prompt_tokens), "tok", nan, "", true});
  report.figures.push_back({"peak host memory", peak_rss_bytes() / (1 << 20), "MiB", nan, "", false});
  report.figures.push_back({"prefix-cache hit rate", 100.0 * stats.prefix_cache_hit_rate, "%", nan, "", true});
  report.figures.push_back({"preemptions", static_cast<double>(stats.num_preemptions), "", nan, "", false});
  report.figures.push_back({"engine steps", static_cast<double>(stats.num_steps), "", nan, "", false});
  report.figures.push_back({"KV blocks", static_cast<double>(e.num_blocks()), "", nan, "", true});
  report.figures.push_back({"engine startup", startup_s, "s", nan, "", false});
  // CUDA graphs (model.enforce_eager false): how many, their capture (inside the
  // startup above), and the share of steps that replayed one.
  if (auto rs = e.runner() != nullptr ? model_runner_stats(*e.runner()) : std::nullopt;
      rs && (rs->graph_steps + rs->eager_steps) > 0) {
    report.figures.push_back({"decode CUDA graphs", static_cast<double>(rs->graphs_captured), "", nan, "", false});
    if (rs->graphs_captured > 0) {
      report.figures.push_back({"graph capture", rs->capture_seconds, "s", nan, "", false});
      report.figures.push_back({"graph memory", double(rs->graph_bytes) / (1 << 20), "MiB", nan, "", false});
    }
    report.figures.push_back({"steps from graphs", 100.0 * double(rs->graph_steps) / double(rs->graph_steps + rs->eager_steps),
                              "%", nan, "", true});
    if (rs->cascade_graphs_captured > 0)
      report.figures.push_back({"steps from cascade graphs (shared prefix)",
                                100.0 * double(rs->cascade_graph_steps) / double(rs->graph_steps + rs->eager_steps), "%",
                                nan, "", true});
    // Where the wall time went, per engine step: the runner's host work (inputs,
    // launches), its wait for the device, and everything outside the runner (the
    // scheduler, output processing, detokenization in this process). The in-process
    // executor launches a step and lets the engine schedule the next one while it
    // runs, so much of prep and "outside" overlaps the device; the host share below is
    // the part that did not (issue 14: engine time < 3% of the step).
    const double steps = double(rs->graph_steps + rs->eager_steps);
    const double outside = std::max(0.0, wall - rs->execute_seconds);
    report.figures.push_back({"step: runner input prep", 1e3 * rs->prep_seconds / steps, "ms", nan, "", false});
    report.figures.push_back({"step: runner launches", 1e3 * rs->launch_seconds / steps, "ms", nan, "", false});
    report.figures.push_back({"step: runner waits on GPU", 1e3 * rs->wait_seconds / steps, "ms", nan, "", false});
    report.figures.push_back({"step: outside the runner", 1e3 * outside / steps, "ms", nan, "", false});
    // The device's span per kind of step (launch + wait): replayed decode steps and
    // eager ones (prefill, mixed, or decode past the largest graph), with the tokens
    // an eager step ran: which kind a workload's time goes to.
    if (rs->graph_steps > 0)
      report.figures.push_back({"graph step (launch + wait)", 1e3 * rs->graph_step_seconds / double(rs->graph_steps), "ms",
                                nan, "", false});
    if (rs->eager_steps > 0) {
      report.figures.push_back({"eager step (launch + wait)", 1e3 * rs->eager_step_seconds / double(rs->eager_steps), "ms",
                                nan, "", false});
      report.figures.push_back({"eager step tokens", double(rs->eager_tokens) / double(rs->eager_steps), "", nan, "", false});
      report.figures.push_back({"eager steps' share of the wall time", 100.0 * rs->eager_step_seconds / wall, "%", nan, "",
                                false});
    }
    // What the device waits for: the host between one step's end and the next one's
    // upload (the engine's work that overlapped a running step is not in it).
    if (rs->gaps > 0)
      report.figures.push_back({"step: host gap before the upload", 1e3 * rs->gap_seconds / double(rs->gaps), "ms", nan,
                                "", false});
    report.figures.push_back({"host share of the step", 100.0 * rs->gap_seconds / wall, "%", nan, "", false});
  }
  std::cout << perf::format_table(report);
  if (output_tokens != d.output_tokens) fail("produced " + std::to_string(output_tokens) + " output tokens, expected " +
                                             std::to_string(d.output_tokens));
  if (o.save) {
    auto path = perf::save_report(report, o.results_dir);
    if (!path) fail(path.error().message);
    std::cout << "saved " << *path << "\n";
  }
}

}  // namespace

void add_throughput(CLI::App& bench) {
  auto o = std::make_shared<ThroughputOpts>();
  auto* cmd = bench.add_subcommand("throughput", "In-process throughput on a standard workload (all requests at t=0)");
  cmd->add_option("--workload", o->workload, "W1 | W2 | S1 | P1")->check(CLI::IsMember({"W1", "W2", "S1", "P1"}));
  cmd->add_option("--config", o->config_file, "YAML engine config");
  cmd->add_option("--set", o->overrides, "override a config key: section.key=value");
  cmd->add_option("--model", o->model, "model directory (default: dummy weights of the workload's shape)");
  cmd->add_option("--device", o->device, "cpu | cuda:N (default: parallel.devices, else cpu)");
  cmd->add_option("--runner", o->runner, "model | noop (noop: the engine's own overhead)")->check(CLI::IsMember({"model", "noop"}));
  cmd->add_option("--num-requests", o->scale.num_requests, "run this many requests instead (CPU runs)")->check(CLI::PositiveNumber);
  cmd->add_option("--length-factor", o->scale.length_factor, "scale input and output lengths (CPU runs)")->check(CLI::Range(1e-4, 1.0));
  cmd->add_option("--max-token-id", o->scale.max_token_id, "prompts use ids below this")->check(CLI::Range(2, 1 << 30));
  cmd->add_option("--hbm-tbps", o->hbm_tbps, "HBM bandwidth for the bound (else measured on a GPU build)");
  cmd->add_option("--gemm-tflops", o->gemm_tflops, "bf16 GEMM rate for the bound (else measured on a GPU build)");
  cmd->add_option("--results-dir", o->results_dir, "where --save writes the JSON");
  cmd->add_flag("--save", o->save, "save the JSON report");
  cmd->add_flag("--no-progress", o->no_progress, "no progress bar");
  cmd->add_flag("--enforce-eager", o->enforce_eager,
                "CUDA: no decode graphs, every step op by op (= --set model.enforce_eager=true), to compare");
  cmd->callback([o]() { run(*o); });
}

}  // namespace vela::cli

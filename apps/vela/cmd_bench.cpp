// `vela bench`: every performance figure the project states comes from here.
//   roofline    measure the device's ceilings (CUDA build) or take them as flags,
//               and print each standard workload's lower bound.
//   throughput  in-process engine, every request at t=0 (cmd_bench_throughput.cpp).
//   serve       a running server through the ZeroMQ client, on L1's Poisson
//               arrivals: TTFT/TPOT/ITL/E2E percentiles (cmd_bench_serve.cpp).
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>

#include "apps/vela/bench_common.h"
#include "apps/vela/commands.h"
#include "perf/host_ceilings.h"
#include "perf/report.h"
#include "perf/roofline.h"
#include "perf/workloads.h"

#ifdef VELA_HAVE_CUDA
#include "kernels/roofline_probe.h"
#endif

namespace vela::cli {

std::string model_shape_path(const std::string& shape_name) {
  return find_project_file("perf/models/" + shape_name + "/config.json");
}

Result<perf::Ceilings> measure_or_take_ceilings(double hbm_tbps, double gemm_tflops, std::string* device,
                                                CeilingsOf of) {
  perf::Ceilings c{hbm_tbps * 1e12, gemm_tflops * 1e12};
  if (hbm_tbps > 0 && gemm_tflops > 0) {
    *device = "given ceilings";
    return c;
  }
#ifdef VELA_HAVE_CUDA
  if (of == CeilingsOf::kGpu) {
    VELA_TRY_ASSIGN(const auto info, cuda::device_info(0));
    *device = info.name;
    VELA_TRY_ASSIGN(const double bw, cuda::measure_copy_bandwidth(0, size_t{1} << 30, 20));
    VELA_TRY_ASSIGN(const double flops, cuda::measure_bf16_gemm(0, 8192, 8192, 8192, 20));
    if (hbm_tbps <= 0) c.hbm_bytes_per_s = bw;
    if (gemm_tflops <= 0) c.gemm_flops_per_s = flops;
    return c;
  }
#else
  (void)of;  // without CUDA everything runs on the CPU
#endif
  VELA_TRY_ASSIGN(perf::Ceilings host, perf::measure_host_ceilings());
  *device = "cpu (" + std::to_string(std::thread::hardware_concurrency()) + " threads, fp32)";
  if (hbm_tbps > 0) host.hbm_bytes_per_s = c.hbm_bytes_per_s;
  if (gemm_tflops > 0) host.gemm_flops_per_s = c.gemm_flops_per_s;
  return host;
}

std::vector<perf::Figure> bound_figures(const perf::Workload& w, const perf::ModelShape& shape,
                                        const perf::Ceilings& ceilings) {
  std::vector<perf::Figure> out;
  if (w.request_rate > 0) {  // latency workload: per-request floors
    auto lb = perf::latency_bound(w.requests.front(), shape, ceilings);
    out.push_back({w.name + " TTFT floor", lb.ttft_s * 1e3, "ms", std::nan(""), "", false});
    out.push_back({w.name + " TPOT floor", lb.tpot_s * 1e3, "ms", std::nan(""), "", false});
    return out;
  }
  const auto b = perf::workload_bound(w, shape, ceilings);
  out.push_back({w.name + " lower bound", b.total_s(), "s", std::nan(""), "", false});
  out.push_back({w.name + " output tok/s at the bound", b.output_tokens / b.total_s(), "tok/s", std::nan(""), "", true});
  if (w.requests.size() == 1)
    out.push_back({w.name + " ms/token at the bound", 1e3 * b.total_s() / b.output_tokens, "ms", std::nan(""), "", false});
  return out;
}

static void add_roofline(CLI::App& bench) {
  struct Opts {
    double hbm_tbps = 0, gemm_tflops = 0;
    std::string results_dir = "bench/results";
    bool save = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = bench.add_subcommand("roofline", "Measure HBM bandwidth and bf16 GEMM rate; print each workload's lower bound");
  cmd->add_option("--hbm-tbps", o->hbm_tbps, "Use this copy bandwidth (TB/s) instead of measuring");
  cmd->add_option("--gemm-tflops", o->gemm_tflops, "Use this bf16 GEMM rate (TFLOP/s) instead of measuring");
  cmd->add_option("--results-dir", o->results_dir, "Where --save writes the JSON report");
  cmd->add_flag("--save", o->save, "Save the JSON report under --results-dir");
  cmd->callback([o]() {
    perf::Report report{"roofline", "", "", perf::utc_now_iso8601(), perf::build_commit(), "", {}};
    auto ceilings = measure_or_take_ceilings(o->hbm_tbps, o->gemm_tflops, &report.device, CeilingsOf::kGpu);
    if (!ceilings) fail(ceilings.error().message);
    report.figures.push_back({ceilings->bytes_per_param == 4 ? "memory copy bandwidth" : "HBM copy bandwidth",
                              ceilings->hbm_bytes_per_s / 1e12, "TB/s", std::nan(""), "", true});
    report.figures.push_back({ceilings->bytes_per_param == 4 ? "fp32 GEMM rate" : "bf16 GEMM rate",
                              ceilings->gemm_flops_per_s / 1e12, "TFLOP/s", std::nan(""), "", true});
    for (const char* name : {"W1", "W2", "S1", "L1", "P1"}) {
      auto w = perf::make_workload(name);
      auto shape = perf::read_model_shape(model_shape_path(w->model_shape), ceilings->bytes_per_param);
      if (!shape) fail(shape.error().message);
      for (auto& f : bound_figures(*w, *shape, *ceilings)) report.figures.push_back(f);
    }
    std::cout << perf::format_table(report);
    if (o->save) {
      auto path = perf::save_report(report, o->results_dir);
      if (!path) fail(path.error().message);
      std::cout << "saved " << *path << "\n";
    }
  });
}

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks: roofline, throughput, serve");
  bench->require_subcommand(1);
  add_roofline(*bench);
  add_throughput(*bench);
  add_bench_serve(*bench);
}

}  // namespace vela::cli

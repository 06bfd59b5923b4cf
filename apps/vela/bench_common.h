#pragma once
// Pieces shared by the `vela bench` subcommands.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

#include "common/paths.h"
#include "common/result.h"
#include "perf/roofline.h"

namespace vela::cli {

// Prints "vela: MESSAGE" and ends the command with exit status 2.
[[noreturn]] inline void fail(const std::string& message) {
  std::cerr << "vela: " << message << "\n";
  throw CLI::RuntimeError(2);
}

void add_throughput(CLI::App& bench);
void add_bench_serve(CLI::App& bench);  // cmd_bench_serve.cpp

// perf/models/<name>/config.json, found next to the source tree or the binary.
std::string model_shape_path(const std::string& shape_name);

// Measures the device's ceilings, or takes them from the flags when both are > 0.
// Which device's ceilings: the roofline command measures the GPU (on a CUDA build);
// the engine's model runner is the CPU one for now, so throughput and serving
// figures are held against the CPU's ceilings until a CUDA runner exists.
enum class CeilingsOf { kGpu, kEngineDevice };
Result<perf::Ceilings> measure_or_take_ceilings(double hbm_tbps, double gemm_tflops, std::string* device,
                                                CeilingsOf of = CeilingsOf::kEngineDevice);

}  // namespace vela::cli

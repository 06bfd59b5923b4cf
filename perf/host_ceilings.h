#pragma once
// The CPU's two ceilings, measured the way `vela bench roofline` measures a GPU's:
// a large memory-to-memory copy (bytes read + written per second) and a large fp32
// GEMM through OpenBLAS (the CPU backend computes in fp32 from fp32 weights, so its
// bounds stream 4 bytes per parameter).
#include "common/result.h"
#include "perf/roofline.h"

namespace vela::perf {

Result<Ceilings> measure_host_ceilings();

}  // namespace vela::perf

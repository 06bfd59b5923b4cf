#include "perf/host_ceilings.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

namespace vela::perf {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Result<Ceilings> measure_host_ceilings() {
  Ceilings c;
  c.bytes_per_param = 4;
  {
    // 256 MiB each way: far beyond any cache. Best of several passes (others may be running).
    const size_t bytes = size_t{256} << 20;
    std::vector<char> a(bytes, 1), b(bytes, 2);
    double best = 0;
    for (int i = 0; i < 6; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      std::memcpy(i % 2 ? a.data() : b.data(), i % 2 ? b.data() : a.data(), bytes);
      best = std::max(best, 2.0 * bytes / seconds_since(t0));
    }
    if (a[bytes / 2] == 0) return make_error("probe", "copy probe read back zeros");
    c.hbm_bytes_per_s = best;
  }
  {
    const int n = 1024;
    std::vector<float> x(size_t(n) * n), y(size_t(n) * n), z(size_t(n) * n);
    for (size_t i = 0; i < x.size(); ++i) {
      x[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.0f;
      y[i] = static_cast<float>((i * 40503u) % 1000) / 1000.0f;
    }
    double best = 0;
    for (int i = 0; i < 4; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, x.data(), n, y.data(), n, 0.0f, z.data(), n);
      best = std::max(best, 2.0 * n * double(n) * n / seconds_since(t0));
    }
    c.gemm_flops_per_s = best;
  }
  return c;
}

}  // namespace vela::perf

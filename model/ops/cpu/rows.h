#pragma once
// Helpers shared by the CPU ops: addressing rows of row-strided views, and a
// parallel loop over both cores.
#include <algorithm>
#include <cassert>
#include <cstdint>
#include <thread>
#include <vector>

#include "model/tensor.h"

namespace vela::ops::cpu {

// Number of innermost rows of t (product of all dims but the last).
inline int64_t num_rows(const Tensor& t) {
  int64_t n = 1;
  for (int d = 0; d + 1 < t.ndim(); ++d) n *= t.size(d);
  return n;
}

// Pointer to innermost row r (row-major over the leading dims), honouring strides.
template <class T>
T* row_ptr(const Tensor& t, int64_t r) {
  assert(t.stride(-1) == 1 || t.size(-1) == 1);
  int64_t offset = 0;
  for (int d = t.ndim() - 2; d >= 0; --d) {
    int64_t idx = r % t.size(d);
    r /= t.size(d);
    offset += idx * t.stride(d);
  }
  return t.data<T>() + offset;
}

// Runs fn(begin, end) over [0, n) split across the cores when the work is large
// enough to pay for starting threads; otherwise inline on the caller's thread.
template <class F>
void parallel_for(int64_t n, int64_t work_per_item, F fn) {
  constexpr int64_t kMinWorkPerThread = 1 << 16;
  int64_t hw = std::max<int64_t>(1, std::thread::hardware_concurrency());
  int64_t threads = std::min<int64_t>({hw, n, std::max<int64_t>(1, n * work_per_item / kMinWorkPerThread)});
  if (threads <= 1) {
    fn(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(size_t(threads - 1));
  int64_t chunk = (n + threads - 1) / threads;
  for (int64_t t = 1; t < threads; ++t) {
    int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) pool.emplace_back([=] { fn(b, e); });
  }
  fn(int64_t{0}, std::min(n, chunk));
  for (auto& th : pool) th.join();
}

}  // namespace vela::ops::cpu

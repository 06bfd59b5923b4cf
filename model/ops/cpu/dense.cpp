// Embedding, linear (OpenBLAS sgemm), row gather.
#include <cblas.h>

#include <cstring>

#include "model/ops/cpu/cpu_ops.h"
#include "model/ops/cpu/rows.h"

namespace vela::ops::cpu {

void embedding(const Tensor& ids, const Tensor& table, int64_t vocab_start, Tensor& out) {
  int64_t num_tokens = ids.size(0), rows = table.size(0), hidden = table.size(1);
  assert(out.size(0) == num_tokens && out.size(1) == hidden);
  const int32_t* id = ids.data<int32_t>();
  for (int64_t t = 0; t < num_tokens; ++t) {
    float* dst = row_ptr<float>(out, t);
    int64_t local = int64_t(id[t]) - vocab_start;
    if (local >= 0 && local < rows) {
      std::memcpy(dst, table.data<float>() + local * hidden, size_t(hidden) * sizeof(float));
    } else {
      std::memset(dst, 0, size_t(hidden) * sizeof(float));
    }
  }
}

void linear(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) {
  int64_t m = x.size(0), k = x.size(1), n = w.size(0);
  assert(w.size(1) == k && out.size(0) == m && out.size(1) == n);
  assert(x.stride(1) == 1 && out.stride(1) == 1 && w.is_contiguous());
  if (m == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), 1.0f, x.data<float>(),
              int(x.stride(0)), w.data<float>(), int(k), 0.0f, out.data<float>(), int(out.stride(0)));
  if (bias != nullptr) {
    const float* b = bias->data<float>();
    for (int64_t r = 0; r < m; ++r) {
      float* row = out.data<float>() + r * out.stride(0);
      for (int64_t j = 0; j < n; ++j) row[j] += b[j];
    }
  }
}

void gather_rows(const Tensor& x, const Tensor& rows, Tensor& out) {
  int64_t count = rows.size(0), width = x.size(1);
  const int32_t* idx = rows.data<int32_t>();
  for (int64_t i = 0; i < count; ++i)
    std::memcpy(row_ptr<float>(out, i), row_ptr<float>(x, idx[i]), size_t(width) * sizeof(float));
}

}  // namespace vela::ops::cpu

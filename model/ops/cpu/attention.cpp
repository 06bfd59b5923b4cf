// Paged KV write and paged attention (prefill chunks and decodes in one pass).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "model/ops/cpu/cpu_ops.h"
#include "model/ops/cpu/rows.h"

namespace vela::ops::cpu {

void reshape_and_cache(const Tensor& k, const Tensor& v, LayerKVCache& cache, const ForwardBatch& batch) {
  int64_t tokens = k.size(0), heads = k.size(1), hd = k.size(2);
  int64_t num_slots = cache.k.size(0) * cache.k.size(1);
  assert(cache.k.size(2) == heads && cache.k.size(3) == hd);
  const int64_t* slots = batch.slot_mapping.data<int64_t>();
  size_t row_bytes = size_t(hd) * sizeof(float);
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t slot = slots[t];
    if (slot < 0) continue;
    assert(slot < num_slots);
    (void)num_slots;
    float* kdst = cache.k.data<float>() + slot * heads * hd;
    float* vdst = cache.v.data<float>() + slot * heads * hd;
    for (int64_t h = 0; h < heads; ++h) {
      std::memcpy(kdst + h * hd, row_ptr<float>(k, t * heads + h), row_bytes);
      std::memcpy(vdst + h * hd, row_ptr<float>(v, t * heads + h), row_bytes);
    }
  }
}

void paged_attention(const Tensor& q, const LayerKVCache& cache, const ForwardBatch& batch, float scale,
                     Tensor& out) {
  const int64_t nq = q.size(1), hd = q.size(2);
  const int64_t block_size = cache.k.size(1), nk = cache.k.size(2);
  const int64_t group = nq / nk;
  assert(nq % nk == 0 && cache.k.size(3) == hd);
  const int32_t* qsl = batch.query_start_loc.data<int32_t>();
  const int32_t* seq_lens = batch.seq_lens.data<int32_t>();
  const int32_t* tables = batch.block_tables.data<int32_t>();
  const int64_t max_blocks = batch.block_tables.size(1);
  const float* kc = cache.k.data<float>();
  const float* vc = cache.v.data<float>();

  // One work item per (sequence, kv head): its keys are gathered once for the group.
  int64_t items = int64_t(batch.num_seqs) * nk;
  int64_t avg_work = (int64_t(batch.num_tokens) / std::max(1, batch.num_seqs) + 1) * batch.max_seq_len * group * hd;
  parallel_for(items, avg_work, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(size_t(batch.max_seq_len));
    std::vector<const float*> krows(size_t(batch.max_seq_len)), vrows(size_t(batch.max_seq_len));
    std::vector<float> acc(static_cast<size_t>(hd));
    for (int64_t item = begin; item < end; ++item) {
      int64_t s = item / nk, kh = item % nk;
      int64_t q_begin = qsl[s], q_len = qsl[s + 1] - qsl[s];
      int64_t seq_len = seq_lens[s], context = seq_len - q_len;
      const int32_t* table = tables + s * max_blocks;
      for (int64_t j = 0; j < seq_len; ++j) {
        int64_t slot = int64_t(table[j / block_size]) * block_size + j % block_size;
        krows[size_t(j)] = kc + (slot * nk + kh) * hd;
        vrows[size_t(j)] = vc + (slot * nk + kh) * hd;
      }
      for (int64_t g = 0; g < group; ++g) {
        int64_t h = kh * group + g;
        for (int64_t i = 0; i < q_len; ++i) {
          int64_t t = q_begin + i;
          int64_t visible = context + i + 1;  // causal: keys [0, context + i]
          const float* qv = row_ptr<float>(q, t * nq + h);
          float max_score = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j < visible; ++j) {
            const float* kv = krows[size_t(j)];
            float dot = 0.0f;
            for (int64_t d = 0; d < hd; ++d) dot += qv[d] * kv[d];
            scores[size_t(j)] = dot * scale;
            max_score = std::max(max_score, scores[size_t(j)]);
          }
          float sum = 0.0f;
          for (int64_t j = 0; j < visible; ++j) {
            scores[size_t(j)] = std::exp(scores[size_t(j)] - max_score);
            sum += scores[size_t(j)];
          }
          float inv = 1.0f / sum;
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int64_t j = 0; j < visible; ++j) {
            float p = scores[size_t(j)] * inv;
            const float* vv = vrows[size_t(j)];
            for (int64_t d = 0; d < hd; ++d) acc[size_t(d)] += p * vv[d];
          }
          std::memcpy(row_ptr<float>(out, t * nq + h), acc.data(), size_t(hd) * sizeof(float));
        }
      }
    }
  });
}

}  // namespace vela::ops::cpu

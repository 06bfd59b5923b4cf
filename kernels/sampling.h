#pragma once
// GPU sampling over fp32 logits [rows, vocab], one CTA per row, reproducing
// workers/sampler.cpp (the CPU Sampler) token for token. Three launches:
//   sampling_prepare: greedy rows -> argmax (first index on ties); rows with
//     penalties get them applied to a copy of their logits; sampled rows get
//     e = exp((w - max) / T) as float (double exp rounded to float, matching glibc's
//     nearly correctly rounded expf), min-p and top-k (radix select, ties by index)
//     leave e on the kept candidates and 0 elsewhere, in work[r, :].
//   sampling_sort: rows with top-p: (e, id) sorted by e descending, stably, so
//     ties stay in index order (the CPU's by_prob order). cub segmented radix sort.
//   sampling_draw: top-p cutoff and the inverse-CDF draw, both as double prefix
//     sums: a parallel chunked scan whose answer is accepted only when the decision
//     is further from its threshold than the scan's rounding error bound, else one
//     thread repeats the CPU's sequential loop (so the double arithmetic agrees);
//     then the logprobs of the raw logits (sampled token and top N) if asked.
#include "kernels/common.h"

namespace vela::kernels {

enum SampleRowFlags : uint32_t {
  kSampleGreedy = 1u << 0,       // temperature < 1e-5
  kSampleRepetition = 1u << 1,   // repetition_penalty != 1
  kSamplePresenceFreq = 1u << 2, // presence or frequency penalty != 0
  kSampleTopP = 1u << 3,         // top_p < 1 (row is sorted; not for greedy rows)
};

// One row's sampling parameters, prepared on the host.
struct SampleRowParams {
  uint32_t flags = 0;
  float inv_temperature = 1.0f;   // 1.0f / temperature, computed on the host as the CPU does
  float min_keep = 0.0f;          // min_p > 0 ? min_p : 0 (relative to the best token's e = 1)
  float top_p = 1.0f;
  int32_t top_k = 0;              // 0: off
  float repetition_penalty = 1.0f, presence_penalty = 0.0f, frequency_penalty = 0.0f;
  double uniform = 0.0;           // Sampler::uniform(seed, num output tokens), in [0, 1)
  int64_t history_begin = 0;      // prompt ids, then output ids, in SampleBatchParams::history
  int32_t num_prompt = 0, num_output = 0;  // 0 unless the row has penalties
  int64_t table_begin = 0;        // count-table slots (int2) for presence/frequency
  int32_t table_capacity = 0;     // a power of two >= 2 * num_output, or 0
};

struct SampleBatchParams {
  const float* logits = nullptr;  // [rows, vocab], row stride logits_row_stride
  int64_t logits_row_stride = 0;
  int32_t rows = 0, vocab = 0;
  const SampleRowParams* row_params = nullptr;  // [rows]
  const int32_t* history = nullptr;             // token ids of rows with penalties
  float* work = nullptr;           // [rows, vocab] scratch: penalised logits, then e or 0
  uint32_t* seen_bits = nullptr;   // [rows, (vocab + 31) / 32] scratch for the repetition penalty
  int2* count_table = nullptr;     // scratch hash tables (token, count)
  int32_t* num_candidates = nullptr;  // [rows] scratch: kept candidates after min-p / top-k
  const float* sorted_e = nullptr;    // [rows, vocab] sampling_sort's output (top-p rows)
  const int32_t* sorted_ids = nullptr;
  bool force_sequential = false;   // tests: always take the one-thread exact path
  // Outputs (device).
  int32_t* tokens = nullptr;       // [rows]
  int32_t* fallbacks = nullptr;    // [rows] 1 when the draw took the sequential path
  int32_t num_top = -1;            // -1: no logprobs; else sampled logprob + num_top (<= 20) top entries
  float* sampled_logprobs = nullptr;  // [rows]
  int32_t* top_ids = nullptr;         // [rows, num_top]
  float* top_logprobs = nullptr;      // [rows, num_top]
};

constexpr int kMaxSampleTopLogprobs = 20;

cudaError_t sampling_prepare(const SampleBatchParams& p, cudaStream_t stream);
cudaError_t sampling_draw(const SampleBatchParams& p, cudaStream_t stream);

// ids[r * vocab + i] = i for r < rows: the values sampling_sort carries along.
cudaError_t sampling_fill_ids(int32_t* ids, int32_t rows, int32_t vocab, cudaStream_t stream);

// Sorts work[r, :] (with ids_in) into sorted_e / sorted_ids descending, stably, for each
// r with segment_end[r] > segment_begin[r] (row offsets r * vocab, or empty).
// temp_bytes == nullptr-style query: call with temp = nullptr to get temp_bytes.
cudaError_t sampling_sort(void* temp, size_t& temp_bytes, const float* work, float* sorted_e, const int32_t* ids_in,
                          int32_t* sorted_ids, const int32_t* segment_begin, const int32_t* segment_end, int32_t rows,
                          int32_t vocab, cudaStream_t stream);

}  // namespace vela::kernels

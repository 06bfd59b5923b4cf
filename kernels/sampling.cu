// GPU sampling: see sampling.h. Arithmetic that decides a token mirrors
// workers/sampler.cpp operation for operation: float ops are written with __f*_rn
// so nvcc cannot fuse them (the CPU build has no FMA), double sums are checked
// against their error bound or redone sequentially.
#include "kernels/sampling.h"

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include <climits>
#include <cmath>

namespace vela::kernels {

namespace {

constexpr int kThreads = 512;

struct ArgMax {
  float v;
  int32_t i;
};

// torch.argmax / the CPU: the larger value, the first index on ties.
struct ArgMaxOp {
  __device__ ArgMax operator()(const ArgMax& a, const ArgMax& b) const {
    return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
  }
};

struct MaxOp {
  __device__ float operator()(float a, float b) const { return b > a ? b : a; }
};

struct MinIntOp {
  __device__ int operator()(int a, int b) const { return b < a ? b : a; }
};

using ArgMaxReduce = cub::BlockReduce<ArgMax, kThreads>;
using FloatReduce = cub::BlockReduce<float, kThreads>;
using DoubleReduce = cub::BlockReduce<double, kThreads>;
using IntReduce = cub::BlockReduce<int, kThreads>;
using DoubleScan = cub::BlockScan<double, kThreads>;
using IntScan = cub::BlockScan<int, kThreads>;

union TempStorage {
  typename ArgMaxReduce::TempStorage argmax;
  typename FloatReduce::TempStorage fmax;
  typename DoubleReduce::TempStorage dsum;
  typename IntReduce::TempStorage isum;
  typename DoubleScan::TempStorage dscan;
  typename IntScan::TempStorage iscan;
};

// First index of the maximum of x[0, n). Every thread gets the answer.
__device__ int32_t block_argmax(const float* x, int32_t n, TempStorage& tmp) {
  __shared__ int32_t s_best;
  ArgMax best{-INFINITY, INT_MAX};
  for (int32_t i = threadIdx.x; i < n; i += kThreads) best = ArgMaxOp()(best, ArgMax{x[i], i});
  ArgMax r = ArgMaxReduce(tmp.argmax).Reduce(best, ArgMaxOp());
  if (threadIdx.x == 0) s_best = r.i == INT_MAX ? 0 : r.i;
  __syncthreads();
  const int32_t out = s_best;
  __syncthreads();
  return out;
}

__device__ float block_max(const float* x, int32_t n, TempStorage& tmp) {
  __shared__ float s_max;
  float m = -INFINITY;
  for (int32_t i = threadIdx.x; i < n; i += kThreads) m = MaxOp()(m, x[i]);
  float r = FloatReduce(tmp.fmax).Reduce(m, MaxOp());
  if (threadIdx.x == 0) s_max = r;
  __syncthreads();
  const float out = s_max;
  __syncthreads();
  return out;
}

// HF repetition penalty over prompt + output (each distinct token once), then the
// OpenAI presence/frequency penalties over the output (once per distinct token).
__device__ void apply_penalties(float* w, int32_t vocab, const SampleRowParams& rp, const SampleBatchParams& p,
                                int32_t row) {
  const int32_t* hist = p.history + rp.history_begin;
  if (rp.flags & kSampleRepetition) {
    const int32_t words = (vocab + 31) / 32;
    uint32_t* seen = p.seen_bits + int64_t(row) * words;
    for (int32_t i = threadIdx.x; i < words; i += kThreads) seen[i] = 0;
    __syncthreads();
    const float pen = rp.repetition_penalty;
    for (int32_t j = threadIdx.x; j < rp.num_prompt + rp.num_output; j += kThreads) {
      const int32_t t = hist[j];
      if (t < 0 || t >= vocab) continue;
      const uint32_t bit = 1u << (t & 31);
      if (atomicOr(&seen[t >> 5], bit) & bit) continue;  // another thread owns this token
      const float v = w[t];
      w[t] = v > 0.0f ? __fdiv_rn(v, pen) : __fmul_rn(v, pen);
    }
    __syncthreads();
  }
  if ((rp.flags & kSamplePresenceFreq) && rp.num_output > 0) {
    const int32_t* out = hist + rp.num_prompt;
    int2* table = p.count_table + rp.table_begin;
    const uint32_t mask = uint32_t(rp.table_capacity - 1);
    for (int32_t s = threadIdx.x; s < rp.table_capacity; s += kThreads) table[s] = make_int2(-1, 0);
    __syncthreads();
    for (int32_t j = threadIdx.x; j < rp.num_output; j += kThreads) {
      const int32_t t = out[j];
      if (t < 0 || t >= vocab) continue;
      uint32_t h = (uint32_t(t) * 2654435761u) & mask;
      for (;;) {
        const int prev = atomicCAS(&table[h].x, -1, t);
        if (prev == -1 || prev == t) {
          atomicAdd(&table[h].y, 1);
          break;
        }
        h = (h + 1) & mask;
      }
    }
    __syncthreads();
    for (int32_t s = threadIdx.x; s < rp.table_capacity; s += kThreads) {
      const int2 e = table[s];
      if (e.x < 0) continue;
      // CPU: w[t] -= frequency * float(count) + presence (no FMA).
      const float d = __fadd_rn(__fmul_rn(rp.frequency_penalty, float(e.y)), rp.presence_penalty);
      w[e.x] = __fsub_rn(w[e.x], d);
    }
    __syncthreads();
  }
}

// Keeps the top_k largest keys (ties: lower index first), zeroing the rest.
// keys are non-negative floats, so their bit patterns order like the values.
__device__ void keep_top_k(float* key, int32_t vocab, int32_t k, TempStorage& tmp) {
  __shared__ int32_t hist[256];
  __shared__ uint32_t s_digit;
  __shared__ int32_t s_remaining;
  const uint32_t* bits = reinterpret_cast<const uint32_t*>(key);
  uint32_t prefix = 0, mask = 0;
  int32_t remaining = k;  // rank of the threshold among keys matching the prefix
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += kThreads) hist[i] = 0;
    __syncthreads();
    for (int32_t i = threadIdx.x; i < vocab; i += kThreads) {
      const uint32_t b = bits[i];
      if ((b & mask) == prefix) atomicAdd(&hist[(b >> shift) & 255u], 1);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int32_t cum = 0;
      for (int d = 255; d >= 0; --d) {
        if (cum + hist[d] >= remaining) {
          s_digit = uint32_t(d);
          s_remaining = remaining - cum;
          break;
        }
        cum += hist[d];
      }
    }
    __syncthreads();
    prefix |= s_digit << shift;
    mask |= 255u << shift;
    remaining = s_remaining;
    __syncthreads();
  }
  // prefix = the k-th largest key; keep every key above it and the first `remaining`
  // (in index order) equal to it. Contiguous chunks give each thread an index range.
  const int32_t chunk = (vocab + kThreads - 1) / kThreads;
  const int32_t b = min(int32_t(threadIdx.x) * chunk, vocab), e = min(b + chunk, vocab);
  int32_t eq = 0;
  for (int32_t i = b; i < e; ++i) eq += bits[i] == prefix;
  int32_t rank = 0;
  IntScan(tmp.iscan).ExclusiveSum(eq, rank);
  __syncthreads();
  for (int32_t i = b; i < e; ++i) {
    const uint32_t v = bits[i];
    if (v < prefix || (v == prefix && rank++ >= remaining)) key[i] = 0.0f;
  }
  __syncthreads();
}

__global__ void __launch_bounds__(kThreads) prepare_kernel(SampleBatchParams p) {
  __shared__ TempStorage tmp;
  const int32_t row = blockIdx.x;
  const SampleRowParams rp = p.row_params[row];
  const int32_t vocab = p.vocab;
  const float* raw = p.logits + int64_t(row) * p.logits_row_stride;
  const bool penalties = rp.flags & (kSampleRepetition | kSamplePresenceFreq);
  if ((rp.flags & kSampleGreedy) && !penalties) {
    const int32_t t = block_argmax(raw, vocab, tmp);
    if (threadIdx.x == 0) p.tokens[row] = t;
    return;
  }
  float* w = p.work + int64_t(row) * vocab;
  for (int32_t i = threadIdx.x; i < vocab; i += kThreads) w[i] = raw[i];
  __syncthreads();
  if (penalties) apply_penalties(w, vocab, rp, p, row);
  if (rp.flags & kSampleGreedy) {
    const int32_t t = block_argmax(w, vocab, tmp);
    if (threadIdx.x == 0) p.tokens[row] = t;
    return;
  }
  // e = exp((w - max) * inv_t) in float (the CPU's std::exp(float), nearly correctly
  // rounded; the double exp rounded once to float is correctly rounded), then min-p.
  const float max_w = block_max(w, vocab, tmp);
  int32_t kept = 0;
  for (int32_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float x = __fmul_rn(__fsub_rn(w[i], max_w), rp.inv_temperature);
    const float e = float(exp(double(x)));
    const bool keep = e >= rp.min_keep && e > 0.0f;
    w[i] = keep ? e : 0.0f;
    kept += keep;
  }
  __shared__ int32_t s_kept;
  const int32_t total_kept = IntReduce(tmp.isum).Sum(kept);
  if (threadIdx.x == 0) s_kept = total_kept;
  __syncthreads();
  const int32_t num_kept = s_kept;
  __syncthreads();
  if (rp.top_k > 0 && rp.top_k < num_kept) {
    keep_top_k(w, vocab, rp.top_k, tmp);
    if (threadIdx.x == 0) p.num_candidates[row] = rp.top_k;
  } else if (threadIdx.x == 0) {
    p.num_candidates[row] = num_kept;
  }
}

// The CPU's loops, run by one thread: top-p cutoff over v[0, n) (descending order),
// then the draw. v may hold zeros (non-candidates in index order): adding 0.0 to a
// double changes nothing and a zero is never the first prefix above the target.
__device__ int32_t sequential_draw(const float* v, int32_t n, bool top_p_on, float top_p, double u) {
  if (top_p_on) {
    double total = 0.0;
    for (int32_t i = 0; i < n; ++i) total += v[i];
    double kept = 0.0;
    int32_t m = 0;
    while (m < n) {
      kept += v[m++];
      if (kept >= double(top_p) * total) break;
    }
    n = m;
  }
  double total = 0.0;
  for (int32_t i = 0; i < n; ++i) total += v[i];
  const double target = u * total;
  double acc = 0.0;
  int32_t last = 0;
  for (int32_t i = 0; i < n; ++i) {
    if (v[i] == 0.0f) continue;
    acc += v[i];
    last = i;
    if (acc > target) return i;
  }
  return last;  // rounding left the target at the very end
}

// Parallel version of "the first j whose prefix sum (double) of v[0..j] is >= (or >)
// scale * total(v[0, n))". Each thread sums a contiguous chunk; a block scan gives
// the chunk bases. The answer is returned only if it is robust: the prefixes before
// and at j are further from the threshold than twice the bound on how far any
// summation order's result can be from the exact sum (n·2^-53·total per prefix);
// then the CPU's sequential sum makes the same decision. Else returns -1.
__device__ int32_t robust_crossing(const float* v, int32_t n, double scale, bool strict, TempStorage& tmp,
                                   double* total_out) {
  __shared__ double s_total;
  __shared__ int32_t s_j;
  __shared__ double s_prev, s_at;
  const int32_t chunk = (n + kThreads - 1) / kThreads;
  const int32_t b = min(int32_t(threadIdx.x) * chunk, n), e = min(b + chunk, n);
  double local = 0.0;
  for (int32_t i = b; i < e; ++i) local += v[i];
  double base = 0.0, total = 0.0;
  DoubleScan(tmp.dscan).ExclusiveSum(local, base, total);
  __syncthreads();
  const double x = scale * total;
  int32_t my_j = INT_MAX;
  double prev = 0.0, at = 0.0;
  double acc = base;
  for (int32_t i = b; i < e; ++i) {
    const double next = acc + v[i];
    if (strict ? next > x : next >= x) {
      my_j = i;
      prev = acc;
      at = next;
      break;
    }
    acc = next;
  }
  const int32_t j = IntReduce(tmp.isum).Reduce(my_j, MinIntOp());
  if (threadIdx.x == 0) s_j = j;
  __syncthreads();
  if (my_j == s_j && my_j != INT_MAX) {
    s_prev = prev;
    s_at = at;
  }
  if (threadIdx.x == 0) s_total = total;
  __syncthreads();
  const int32_t found = s_j;
  const double tol = 2.0 * double(n + 8) * 0x1p-50 * s_total;  // 16x the per-prefix bound, twice
  const bool robust = found != INT_MAX && x - s_prev > tol && s_at - x > tol;
  *total_out = s_total;
  __syncthreads();
  return robust ? found : -1;
}

__device__ void row_logprobs(const float* raw, int32_t vocab, int32_t token, const SampleBatchParams& p,
                             int32_t row, TempStorage& tmp) {
  __shared__ float s_lse;
  __shared__ int32_t s_winner;
  const float max_raw = block_max(raw, vocab, tmp);
  double sum = 0.0;
  for (int32_t i = threadIdx.x; i < vocab; i += kThreads) sum += exp(double(__fsub_rn(raw[i], max_raw)));
  const double total = DoubleReduce(tmp.dsum).Sum(sum);
  if (threadIdx.x == 0) s_lse = __fadd_rn(max_raw, float(log(total)));
  __syncthreads();
  const float lse = s_lse;
  if (threadIdx.x == 0) p.sampled_logprobs[row] = __fsub_rn(raw[token], lse);
  const int32_t num_top = p.num_top;
  if (num_top <= 0) return;
  // Each thread's best num_top in (logit desc, index asc) order, then num_top rounds of
  // a block argmax over the threads' heads.
  float tv[kMaxSampleTopLogprobs];
  int32_t ti[kMaxSampleTopLogprobs];
  int32_t count = 0;
  for (int32_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float x = raw[i];
    if (count == num_top && !(x > tv[count - 1])) continue;  // indices rise: a tie loses
    int32_t pos = count < num_top ? count++ : num_top - 1;
    while (pos > 0 && x > tv[pos - 1]) {
      tv[pos] = tv[pos - 1];
      ti[pos] = ti[pos - 1];
      --pos;
    }
    tv[pos] = x;
    ti[pos] = i;
  }
  int32_t head = 0;
  for (int32_t j = 0; j < num_top; ++j) {
    const ArgMax mine = head < count ? ArgMax{tv[head], ti[head]} : ArgMax{-INFINITY, INT_MAX};
    const ArgMax best = ArgMaxReduce(tmp.argmax).Reduce(mine, ArgMaxOp());
    if (threadIdx.x == 0) {  // num_top > vocab leaves -1 / -inf (the host never asks for it)
      const bool real = best.i != INT_MAX;
      s_winner = best.i;
      p.top_ids[int64_t(row) * num_top + j] = real ? best.i : -1;
      p.top_logprobs[int64_t(row) * num_top + j] = real ? __fsub_rn(raw[best.i], lse) : -INFINITY;
    }
    __syncthreads();
    if (head < count && ti[head] == s_winner) ++head;
    __syncthreads();
  }
}

__global__ void __launch_bounds__(kThreads) draw_kernel(SampleBatchParams p) {
  __shared__ TempStorage tmp;
  __shared__ int32_t s_token;
  const int32_t row = blockIdx.x;
  const SampleRowParams rp = p.row_params[row];
  const int32_t vocab = p.vocab;
  int32_t token;
  if (rp.flags & kSampleGreedy) {
    token = p.tokens[row];  // written by prepare_kernel
    if (threadIdx.x == 0) p.fallbacks[row] = 0;
  } else {
    const bool top_p_on = rp.flags & kSampleTopP;
    // Candidates in the CPU's order: by e descending (sorted) with top-p, else by index.
    const float* v = top_p_on ? p.sorted_e + int64_t(row) * vocab : p.work + int64_t(row) * vocab;
    const int32_t n_all = top_p_on ? p.num_candidates[row] : vocab;
    int32_t pos = -1;
    if (!p.force_sequential) {
      int32_t n = n_all;
      bool ok = true;
      double total = 0.0;
      if (top_p_on) {
        const int32_t cut = robust_crossing(v, n_all, double(rp.top_p), false, tmp, &total);
        ok = cut >= 0;
        n = cut + 1;
      }
      if (ok) pos = robust_crossing(v, n, rp.uniform, true, tmp, &total);
    }
    if (threadIdx.x == 0) {
      p.fallbacks[row] = pos < 0;
      if (pos < 0) pos = sequential_draw(v, n_all, top_p_on, rp.top_p, rp.uniform);
      s_token = top_p_on ? p.sorted_ids[int64_t(row) * vocab + pos] : pos;
      p.tokens[row] = s_token;
    }
    __syncthreads();
    token = s_token;
  }
  if (p.num_top >= 0) row_logprobs(p.logits + int64_t(row) * p.logits_row_stride, vocab, token, p, row, tmp);
}

__global__ void fill_ids_kernel(int32_t* ids, int64_t count, int32_t vocab) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    ids[i] = int32_t(i % vocab);
}

}  // namespace

cudaError_t sampling_prepare(const SampleBatchParams& p, cudaStream_t stream) {
  if (p.rows <= 0) return cudaSuccess;
  prepare_kernel<<<p.rows, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t sampling_draw(const SampleBatchParams& p, cudaStream_t stream) {
  if (p.rows <= 0) return cudaSuccess;
  draw_kernel<<<p.rows, kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t sampling_fill_ids(int32_t* ids, int32_t rows, int32_t vocab, cudaStream_t stream) {
  const int64_t count = int64_t(rows) * vocab;
  if (count == 0) return cudaSuccess;
  fill_ids_kernel<<<1024, 256, 0, stream>>>(ids, count, vocab);
  return cudaGetLastError();
}

cudaError_t sampling_sort(void* temp, size_t& temp_bytes, const float* work, float* sorted_e, const int32_t* ids_in,
                          int32_t* sorted_ids, const int32_t* segment_begin, const int32_t* segment_end, int32_t rows,
                          int32_t vocab, cudaStream_t stream) {
  // Radix sort is stable, also descending: equal e keep index order, the CPU's by_prob.
  return cub::DeviceSegmentedRadixSort::SortPairsDescending(temp, temp_bytes, work, sorted_e, ids_in, sorted_ids,
                                                            int(int64_t(rows) * vocab), rows, segment_begin,
                                                            segment_end, 0, 32, stream);
}

}  // namespace vela::kernels

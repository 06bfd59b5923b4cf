#include "workers/cuda_sampler.h"

#include <cstring>
#include <string>

#include "kernels/sampling.h"

namespace vela {

namespace {

using kernels::SampleRowParams;
constexpr int kMaxTop = kernels::kMaxSampleTopLogprobs;

size_t align16(size_t n) { return (n + 15) & ~size_t(15); }

// Packed inputs: row params [rows] | segment begin [rows] | segment end [rows] | history ids.
struct InLayout {
  size_t params, seg_begin, seg_end, history, total;
  InLayout(int64_t rows, int64_t history_ids) {
    params = 0;
    seg_begin = align16(params + size_t(rows) * sizeof(SampleRowParams));
    seg_end = align16(seg_begin + size_t(rows) * 4);
    history = align16(seg_end + size_t(rows) * 4);
    total = align16(history + size_t(history_ids) * 4);
  }
};

// Outputs: tokens [rows] | fallbacks [rows] | sampled logprobs [rows] | top ids [rows, n] | top logprobs [rows, n].
struct OutLayout {
  size_t tokens, fallbacks, sampled, top_ids, top_logprobs, total;
  OutLayout(int64_t rows, int64_t num_top) {
    tokens = 0;
    fallbacks = tokens + size_t(rows) * 4;
    sampled = fallbacks + size_t(rows) * 4;
    top_ids = sampled + size_t(rows) * 4;
    top_logprobs = top_ids + size_t(rows * num_top) * 4;
    total = top_logprobs + size_t(rows * num_top) * 4;
  }
};

Error cuda_error(const std::string& what, cudaError_t e) {
  return make_error("cuda", what + " failed: " + cudaGetErrorString(e));
}

int32_t next_pow2(int64_t n) {
  int64_t p = 2;
  while (p < n) p *= 2;
  return int32_t(p);
}

bool has_repetition(const SamplingParams& p) { return p.repetition_penalty != 1.0f; }
bool has_presence_freq(const SamplingParams& p) { return p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f; }

}  // namespace

#define VELA_CUDA_TRY(expr)                                       \
  do {                                                            \
    cudaError_t e_ = (expr);                                      \
    if (e_ != cudaSuccess) return cuda_error(#expr, e_);          \
  } while (0)

CudaSampler::CudaSampler(int32_t max_rows, int32_t vocab, cudaStream_t stream)
    : max_rows_(max_rows), vocab_(vocab), stream_(stream) {}

CudaSampler::~CudaSampler() {
  for (void* p : {static_cast<void*>(work_), static_cast<void*>(sorted_e_), static_cast<void*>(ids_),
                  static_cast<void*>(sorted_ids_), static_cast<void*>(seen_bits_),
                  static_cast<void*>(num_candidates_), sort_temp_, in_, static_cast<void*>(table_), out_})
    if (p) cudaFree(p);
  if (in_host_) cudaFreeHost(in_host_);
  if (out_host_) cudaFreeHost(out_host_);
}

Result<std::unique_ptr<CudaSampler>> CudaSampler::create(int32_t max_rows, int32_t vocab_size, cudaStream_t stream) {
  if (max_rows <= 0 || vocab_size <= 0 || int64_t(max_rows) * vocab_size > INT32_MAX)
    return make_error("bad_sampler", "CudaSampler needs 0 < max_rows * vocab <= 2^31 - 1 (max_rows " +
                                         std::to_string(max_rows) + ", vocab " + std::to_string(vocab_size) + ")");
  std::unique_ptr<CudaSampler> s(new CudaSampler(max_rows, vocab_size, stream));
  VELA_TRY(s->init());
  return s;
}

Status CudaSampler::init() {
  const size_t cells = size_t(max_rows_) * size_t(vocab_);
  VELA_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(&work_), cells * 4));
  VELA_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(&sorted_e_), cells * 4));
  VELA_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(&ids_), cells * 4));
  VELA_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(&sorted_ids_), cells * 4));
  VELA_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(&seen_bits_), size_t(max_rows_) * size_t((vocab_ + 31) / 32) * 4));
  VELA_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(&num_candidates_), size_t(max_rows_) * 4));
  VELA_CUDA_TRY(kernels::sampling_fill_ids(ids_, max_rows_, vocab_, stream_));
  size_t temp = 0;
  VELA_CUDA_TRY(kernels::sampling_sort(nullptr, temp, work_, sorted_e_, ids_, sorted_ids_, nullptr, nullptr, max_rows_,
                                       vocab_, stream_));
  sort_temp_bytes_ = temp;
  VELA_CUDA_TRY(cudaMalloc(&sort_temp_, sort_temp_bytes_));
  out_bytes_ = OutLayout(max_rows_, kMaxTop).total;
  VELA_CUDA_TRY(cudaMalloc(&out_, out_bytes_));
  VELA_CUDA_TRY(cudaMallocHost(&out_host_, out_bytes_));
  auto r = ensure_history(4096, 0);
  if (!r.ok()) return r;
  VELA_CUDA_TRY(cudaStreamSynchronize(stream_));
  return ok_status();
}

Status CudaSampler::ensure_history(int64_t num_ids, int64_t num_table_slots) {
  const size_t need = InLayout(max_rows_, num_ids).total;
  if (need > in_bytes_) {
    const size_t bytes = need + need / 2;  // grow geometrically
    if (in_) VELA_CUDA_TRY(cudaFree(in_));
    if (in_host_) VELA_CUDA_TRY(cudaFreeHost(in_host_));
    in_ = in_host_ = nullptr;
    in_bytes_ = 0;
    VELA_CUDA_TRY(cudaMalloc(&in_, bytes));
    VELA_CUDA_TRY(cudaMallocHost(&in_host_, bytes));
    in_bytes_ = bytes;
  }
  if (num_table_slots > table_slots_) {
    const int64_t slots = num_table_slots + num_table_slots / 2;
    if (table_) VELA_CUDA_TRY(cudaFree(table_));
    table_ = nullptr;
    table_slots_ = 0;
    VELA_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(&table_), size_t(slots) * sizeof(int2)));
    table_slots_ = slots;
  }
  return ok_status();
}

Status CudaSampler::sample(const Tensor& logits, std::span<const SampleRow> rows, int32_t num_top,
                                 std::vector<int32_t>& tokens, StepLogprobs* logprobs) {
  VELA_TRY(enqueue(logits, rows, num_top, logprobs != nullptr));
  return collect(tokens, logprobs);
}

Status CudaSampler::enqueue(const Tensor& logits, std::span<const SampleRow> rows, int32_t num_top,
                                  bool want_logprobs) {
  const int64_t num_rows = int64_t(rows.size());
  if (pending_rows_ >= 0) return make_error("sampler_busy", "CudaSampler: enqueue before the last draw was collected");
  last_sequential_rows_ = 0;
  pending_top_ = -1;
  if (num_rows == 0) {
    pending_rows_ = 0;
    return ok_status();
  }
  if (logits.device().type != DeviceType::kCUDA || logits.dtype() != DType::kF32 || logits.ndim() != 2 ||
      logits.size(0) != num_rows || logits.size(1) != vocab_ || logits.stride(1) != 1)
    return make_error("bad_logits", "CudaSampler wants f32 CUDA logits [" + std::to_string(num_rows) + ", " +
                                        std::to_string(vocab_) + "] with unit column stride, got " +
                                        logits.shape_string());
  if (num_rows > max_rows_)
    return make_error("bad_logits", "CudaSampler: " + std::to_string(num_rows) + " rows > max_rows " +
                                        std::to_string(max_rows_));
  const int32_t top = (want_logprobs && num_top >= 0) ? num_top : -1;
  if (top > kMaxTop || top > vocab_)
    return make_error("bad_num_top", "CudaSampler: num_top " + std::to_string(top) + " > " +
                                         std::to_string(kMaxTop) + " or > vocab");

  // Sizes of the histories and count tables of rows with penalties.
  int64_t history_ids = 0, table_slots = 0;
  for (const SampleRow& row : rows) {
    const SamplingParams& p = *row.params;
    if (has_repetition(p)) history_ids += int64_t(row.prompt_ids.size());
    if (has_repetition(p) || has_presence_freq(p)) history_ids += int64_t(row.output_ids.size());
    if (has_presence_freq(p) && !row.output_ids.empty()) table_slots += next_pow2(2 * int64_t(row.output_ids.size()));
  }
  auto grown = ensure_history(history_ids, table_slots);
  if (!grown.ok()) return grown;

  const InLayout in(max_rows_, history_ids);
  char* host = static_cast<char*>(in_host_);
  auto* params = reinterpret_cast<SampleRowParams*>(host + in.params);
  auto* seg_begin = reinterpret_cast<int32_t*>(host + in.seg_begin);
  auto* seg_end = reinterpret_cast<int32_t*>(host + in.seg_end);
  auto* history = reinterpret_cast<int32_t*>(host + in.history);
  int64_t hist_at = 0, table_at = 0;
  bool any_sort = false;
  for (int64_t r = 0; r < num_rows; ++r) {
    const SampleRow& row = rows[size_t(r)];
    const SamplingParams& p = *row.params;
    SampleRowParams rp;
    const bool greedy = p.temperature < 1e-5f;  // Sampler's is_greedy
    if (greedy) rp.flags |= kernels::kSampleGreedy;
    if (has_repetition(p)) rp.flags |= kernels::kSampleRepetition;
    if (has_presence_freq(p)) rp.flags |= kernels::kSamplePresenceFreq;
    if (!greedy && p.top_p < 1.0f) rp.flags |= kernels::kSampleTopP;
    if (!greedy) {
      rp.inv_temperature = 1.0f / p.temperature;
      rp.uniform = Sampler::uniform(row.seed, uint64_t(row.output_ids.size()));
    }
    rp.min_keep = p.min_p > 0.0f ? p.min_p : 0.0f;
    rp.top_p = p.top_p;
    rp.top_k = p.top_k;
    rp.repetition_penalty = p.repetition_penalty;
    rp.presence_penalty = p.presence_penalty;
    rp.frequency_penalty = p.frequency_penalty;
    rp.history_begin = hist_at;
    if (has_repetition(p)) {
      std::memcpy(history + hist_at, row.prompt_ids.data(), row.prompt_ids.size() * 4);
      hist_at += int64_t(row.prompt_ids.size());
      rp.num_prompt = int32_t(row.prompt_ids.size());
    }
    if (has_repetition(p) || has_presence_freq(p)) {
      std::memcpy(history + hist_at, row.output_ids.data(), row.output_ids.size() * 4);
      hist_at += int64_t(row.output_ids.size());
      rp.num_output = int32_t(row.output_ids.size());
    }
    if (has_presence_freq(p) && !row.output_ids.empty()) {
      rp.table_begin = table_at;
      rp.table_capacity = next_pow2(2 * int64_t(row.output_ids.size()));
      table_at += rp.table_capacity;
    }
    params[r] = rp;
    const bool sort = rp.flags & kernels::kSampleTopP;
    any_sort = any_sort || sort;
    seg_begin[r] = int32_t(r * vocab_);
    seg_end[r] = int32_t(r * vocab_ + (sort ? vocab_ : 0));
  }
  VELA_CUDA_TRY(cudaMemcpyAsync(in_, in_host_, in.history + size_t(history_ids) * 4, cudaMemcpyHostToDevice, stream_));

  char* dev_in = static_cast<char*>(in_);
  char* dev_out = static_cast<char*>(out_);
  const OutLayout out(num_rows, top > 0 ? top : 0);
  kernels::SampleBatchParams bp;
  bp.logits = logits.data<float>();
  bp.logits_row_stride = logits.stride(0);
  bp.rows = int32_t(num_rows);
  bp.vocab = vocab_;
  bp.row_params = reinterpret_cast<const SampleRowParams*>(dev_in + in.params);
  bp.history = reinterpret_cast<const int32_t*>(dev_in + in.history);
  bp.work = work_;
  bp.seen_bits = seen_bits_;
  bp.count_table = table_;
  bp.num_candidates = num_candidates_;
  bp.sorted_e = sorted_e_;
  bp.sorted_ids = sorted_ids_;
  bp.force_sequential = force_sequential_;
  bp.tokens = reinterpret_cast<int32_t*>(dev_out + out.tokens);
  bp.fallbacks = reinterpret_cast<int32_t*>(dev_out + out.fallbacks);
  bp.num_top = top;
  bp.sampled_logprobs = reinterpret_cast<float*>(dev_out + out.sampled);
  bp.top_ids = reinterpret_cast<int32_t*>(dev_out + out.top_ids);
  bp.top_logprobs = reinterpret_cast<float*>(dev_out + out.top_logprobs);

  VELA_CUDA_TRY(kernels::sampling_prepare(bp, stream_));
  if (any_sort) {
    size_t temp = 0;
    VELA_CUDA_TRY(kernels::sampling_sort(nullptr, temp, work_, sorted_e_, ids_, sorted_ids_, nullptr, nullptr,
                                         int32_t(num_rows), vocab_, stream_));
    if (temp > sort_temp_bytes_)
      return make_error("cuda", "CudaSampler: sort needs " + std::to_string(temp) + " temp bytes, has " +
                                    std::to_string(sort_temp_bytes_));
    temp = sort_temp_bytes_;
    VELA_CUDA_TRY(kernels::sampling_sort(sort_temp_, temp, work_, sorted_e_, ids_, sorted_ids_,
                                         reinterpret_cast<const int32_t*>(dev_in + in.seg_begin),
                                         reinterpret_cast<const int32_t*>(dev_in + in.seg_end), int32_t(num_rows),
                                         vocab_, stream_));
  }
  VELA_CUDA_TRY(kernels::sampling_draw(bp, stream_));
  VELA_CUDA_TRY(cudaMemcpyAsync(out_host_, out_, out.total, cudaMemcpyDeviceToHost, stream_));
  pending_rows_ = num_rows;
  pending_top_ = top;
  return ok_status();
}

Status CudaSampler::collect(std::vector<int32_t>& tokens, StepLogprobs* logprobs) {
  if (pending_rows_ < 0) return make_error("sampler_idle", "CudaSampler: collect without an enqueued draw");
  const int64_t num_rows = pending_rows_;
  const int32_t top = pending_top_;
  pending_rows_ = -1;
  tokens.resize(size_t(num_rows));
  if (num_rows == 0) return ok_status();
  VELA_CUDA_TRY(cudaStreamSynchronize(stream_));
  const OutLayout out(num_rows, top > 0 ? top : 0);
  const char* oh = static_cast<const char*>(out_host_);
  std::memcpy(tokens.data(), oh + out.tokens, size_t(num_rows) * 4);
  const auto* fallbacks = reinterpret_cast<const int32_t*>(oh + out.fallbacks);
  for (int64_t r = 0; r < num_rows; ++r) last_sequential_rows_ += fallbacks[r] != 0;
  if (top >= 0 && logprobs != nullptr) {
    const auto* sampled = reinterpret_cast<const float*>(oh + out.sampled);
    logprobs->sampled_logprobs.insert(logprobs->sampled_logprobs.end(), sampled, sampled + num_rows);
    if (top > 0) {
      const auto* ids = reinterpret_cast<const int32_t*>(oh + out.top_ids);
      const auto* lps = reinterpret_cast<const float*>(oh + out.top_logprobs);
      logprobs->top_ids.insert(logprobs->top_ids.end(), ids, ids + num_rows * top);
      logprobs->top_logprobs.insert(logprobs->top_logprobs.end(), lps, lps + num_rows * top);
    }
  }
  return ok_status();
}

}  // namespace vela

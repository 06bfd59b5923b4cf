// Paged attention: the host plan (validation, decode vs prefill, split-KV sizing) and
// the one place where runtime sizes become template parameters.
//
// The plan reads Params only (no device memory, no allocation, no sync), so the
// launches it makes are the same every time for the same Params and a CUDA graph can
// capture them. Graphs replayed across steps (workers/decode_graphs.h) set
// max_seq_len_is_bound with max_seq_len = max_model_len: num_splits then follows
// that bound and num_seqs only, and each sequence divides its own keys over those
// splits (split_len_of its seq_len, read on the device), so one capture serves every
// context length without idling SMs on long ones. Without the flag the kernels are
// still correct for any max_seq_len (the last split takes every remaining key).
// A graph of cascade steps (shared_prefix_len_device) fixes the shared pass's
// splits by a bound in the same way; the kernels read the step's prefix length and
// spread it over them (prefix_keys), and the combine counts what they wrote.
#include <algorithm>
#include <climits>
#include <cstdlib>

#include "kernels/launch.cuh"
#include "kernels/paged_attention_impl.cuh"

namespace vela::kernels {
namespace attn {
namespace {

inline constexpr int32_t kMaxSplits = 256;
inline constexpr int32_t kMaxGroup = 8;  // GQA ratios 1..8 are compiled

bool is_pow2(int32_t x) { return x > 0 && (x & (x - 1)) == 0; }

// Checks what the kernels assume; fills the plan.
cudaError_t make_plan(const PagedAttentionParams<bf16>& p, Plan& plan) {
  if (p.num_seqs < 0 || p.num_tokens < 0) return cudaErrorInvalidValue;
  if (p.head_dim != 64 && p.head_dim != 128) return cudaErrorInvalidValue;
  if (p.num_kv_heads <= 0 || p.num_q_heads % p.num_kv_heads != 0) return cudaErrorInvalidValue;
  const int32_t group = p.num_q_heads / p.num_kv_heads;
  if (group < 1 || group > kMaxGroup) return cudaErrorInvalidValue;
  if (!is_pow2(p.block_size)) return cudaErrorInvalidValue;
  if (p.num_seqs > 65535 || p.num_kv_heads > 65535) return cudaErrorInvalidValue;  // grid y/z limits
  // 16-byte loads of q/k/v/out rows.
  if (p.q_token_stride % 8 != 0 || p.out_token_stride % 2 != 0) return cudaErrorInvalidValue;
  if ((reinterpret_cast<uintptr_t>(p.q) | reinterpret_cast<uintptr_t>(p.k_cache) |
       reinterpret_cast<uintptr_t>(p.v_cache)) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(p.out) % 4 != 0)
    return cudaErrorInvalidValue;
  if (p.num_seqs == 0 || p.num_tokens == 0) return cudaSuccess;
  if (p.max_query_len < 1) return cudaErrorInvalidValue;
  if (!p.q || !p.k_cache || !p.v_cache || !p.out || !p.block_tables || !p.query_start_loc || !p.seq_lens)
    return cudaErrorInvalidValue;

  plan = Plan{};
  plan.block_shift = __builtin_ctz(uint32_t(p.block_size));
  plan.decode = p.max_query_len == 1;
  plan.num_splits = 1;
  plan.split_len = INT_MAX;
  plan.decode_rows_apart = !plan.decode && p.num_seqs > 1;
  if (!plan.decode) return cudaSuccess;

  const int64_t sms = sm_count();
  // Cascade: the shared prefix in one pass for the batch (its own splits, about two
  // CTAs per SM), the decode splits over each sequence's keys after it. The caller
  // judges when it pays (workers/persistent_batch.h); declined here (every key per
  // sequence) for partials that do not fit the workspace, and for a graph's launch
  // unless the length is read on the device (the prefix is a per-step fact; the
  // splits are then sized by shared_prefix_len as a bound).
  const int64_t max_rows = p.workspace == nullptr ? 0 : kMaxPartialRows / p.num_tokens;  // splits that fit
  const bool prefix_on_device = p.max_seq_len_is_bound && p.shared_prefix_len_device != nullptr;
  if (p.shared_prefix_len > 0 && (!p.max_seq_len_is_bound || prefix_on_device) &&
      p.shared_prefix_len < p.max_seq_len && max_rows >= 2 &&
      partial_bytes(2 * int64_t(p.num_tokens), p.num_q_heads, p.head_dim) <= p.workspace_bytes) {
    const int64_t row_tiles = (int64_t(p.num_tokens) * group + 63) / 64;
    // At most: the splits for about two CTAs an SM, and what the workspace holds.
    int64_t max_splits = (2 * sms + row_tiles * p.num_kv_heads - 1) / (row_tiles * p.num_kv_heads);
    max_splits = std::max<int64_t>(std::min<int64_t>(max_splits, max_rows - 1), 1);
    while (max_splits > 1 &&
           partial_bytes((max_splits + 1) * p.num_tokens, p.num_q_heads, p.head_dim) > p.workspace_bytes)
      --max_splits;
    const int64_t split_len = prefix_split_len(p.shared_prefix_len, int32_t(max_splits));
    plan.prefix_len = p.shared_prefix_len;
    plan.prefix_split_len = int32_t(split_len);
    plan.prefix_splits = int32_t((p.shared_prefix_len + split_len - 1) / split_len);
    if (prefix_on_device) plan.prefix_len_device = p.shared_prefix_len_device;
  }

  // Split-KV when (sequence, kv head) CTAs alone would leave SMs idle: aim at about
  // four CTAs per SM, splits of at least min_split_len keys, and never more partial
  // rows than the workspace holds. VELA_ATTN_MIN_SPLIT=N forces that length (A/B runs).
  // Per sequence, after the shared ones (a graph's prefix is unknown here: all of them).
  const int64_t own_keys = int64_t(p.max_seq_len) - (plan.prefix_len_device != nullptr ? 0 : plan.prefix_len);
  const int64_t ctas = int64_t(p.num_seqs) * p.num_kv_heads;
  static const int32_t forced_min_split = [] {
    const char* e = std::getenv("VELA_ATTN_MIN_SPLIT");
    const int v = e == nullptr ? 0 : std::atoi(e);
    return v >= 64 ? int32_t(v / 64 * 64) : 0;
  }();
  plan.min_split_len = forced_min_split > 0 ? forced_min_split
                       : 4 * ctas <= sms    ? kMinKeysPerSplitFewCtas
                                            : kMinKeysPerSplit;
  int64_t splits = 1;
  if (ctas < 2 * sms && own_keys >= 2 * plan.min_split_len && max_rows > plan.prefix_splits + 1) {
    splits = (4 * sms + ctas - 1) / ctas;
    splits = std::min<int64_t>(splits, own_keys / plan.min_split_len);
    splits = std::min<int64_t>(splits, kMaxSplits);
    splits = std::min<int64_t>(splits, max_rows - plan.prefix_splits);
    while (splits > 1 &&
           partial_bytes((splits + plan.prefix_splits) * p.num_tokens, p.num_q_heads, p.head_dim) > p.workspace_bytes)
      --splits;
  }
  if (splits > 1) {
    plan.per_seq_split = p.max_seq_len_is_bound;
    int64_t split_len = (own_keys + splits - 1) / splits;
    split_len = (split_len + 63) / 64 * 64;
    plan.split_len = int32_t(split_len);
    plan.num_splits = int32_t((own_keys + split_len - 1) / split_len);
  }
  if (plan.num_splits <= 1) {
    plan.num_splits = 1;
    plan.split_len = INT_MAX;
    plan.per_seq_split = false;
    if (plan.prefix_splits == 0) return cudaSuccess;  // one split, no partials
  }
  const int64_t rows = int64_t(plan.num_splits + plan.prefix_splits) * p.num_tokens;
  const size_t acc_bytes = (size_t(rows) * p.num_q_heads * p.head_dim * sizeof(float) + 255) / 256 * 256;
  plan.partial_acc = static_cast<float*>(p.workspace);
  plan.partial_lse = reinterpret_cast<float*>(static_cast<char*>(p.workspace) + acc_bytes);
  return cudaSuccess;
}

template <int HD, int G>
cudaError_t run(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream) {
  const bool mma = p.decode_kernel == DecodeKernel::kTensorCores ||
                   (p.decode_kernel == DecodeKernel::kAuto && (G >= kMmaDecodeMinGroup || p.num_seqs >= kMmaDecodeMinSeqs));
  if (!plan.decode) {
    cudaError_t e = launch_prefill<HD, G>(p, plan, stream);
    // The one-token sequences of a mixed batch (one split each: direct output).
    if (e == cudaSuccess && plan.decode_rows_apart)
      e = mma ? launch_decode_mma<HD, G>(p, plan, stream) : launch_decode<HD, G>(p, plan, stream);
    return e;
  }
  // Cascade with a side stream: the shared pass forks there (after what the stream
  // has so far: the step's q and cache writes) and joins before the combine; the
  // own-key pass goes first on the stream, so its CTAs (kept resident early by PDL)
  // fill the SMs and the shared pass's higher-priority CTAs take each slot they free.
  // The two write disjoint partial rows.
  const bool side = plan.prefix_splits > 0 && p.side_stream != nullptr && p.side_fork != nullptr &&
                    p.side_join != nullptr;
  cudaError_t e = cudaSuccess;
  if (side) {
    e = cudaEventRecord(p.side_fork, stream);
    if (e == cudaSuccess) e = cudaStreamWaitEvent(p.side_stream, p.side_fork, 0);
    if (e != cudaSuccess) return e;
  }
  e = mma ? launch_decode_mma<HD, G>(p, plan, stream, side) : launch_decode<HD, G>(p, plan, stream);
  if (e == cudaSuccess && plan.prefix_splits > 0)
    e = launch_shared_prefix<HD, G>(p, plan, side ? p.side_stream : stream, side);
  if (e == cudaSuccess && side) {
    e = cudaEventRecord(p.side_join, p.side_stream);
    if (e == cudaSuccess) e = cudaStreamWaitEvent(stream, p.side_join, 0);
  }
  if (e != cudaSuccess) return e;
  if (plan.num_splits > 1 || plan.prefix_splits > 0) return launch_combine<HD>(p, plan, stream);
  return cudaSuccess;
}

template <int HD>
cudaError_t run_group(const PagedAttentionParams<bf16>& p, const Plan& plan, cudaStream_t stream) {
  switch (p.num_q_heads / p.num_kv_heads) {
    case 1: return run<HD, 1>(p, plan, stream);
    case 2: return run<HD, 2>(p, plan, stream);
    case 3: return run<HD, 3>(p, plan, stream);
    case 4: return run<HD, 4>(p, plan, stream);
    case 5: return run<HD, 5>(p, plan, stream);
    case 6: return run<HD, 6>(p, plan, stream);
    case 7: return run<HD, 7>(p, plan, stream);
    case 8: return run<HD, 8>(p, plan, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace
}  // namespace attn

size_t paged_attention_workspace_bytes(int64_t max_tokens, int32_t num_q_heads, int32_t head_dim) {
  const int64_t rows = std::min<int64_t>(attn::kMaxPartialRows, std::max<int64_t>(1, max_tokens) * attn::kMaxSplits);
  return attn::partial_bytes(rows, num_q_heads, head_dim);
}

PagedAttentionPlanInfo paged_attention_plan_info(const PagedAttentionParams<bf16>& p) {
  attn::Plan plan;
  if (attn::make_plan(p, plan) != cudaSuccess) return {};
  return {plan.decode, plan.num_splits, plan.prefix_splits};
}

// fp32 (model.dtype float32) is for precision, not speed: the generic kernel serves it.
cudaError_t paged_attention(const PagedAttentionParams<float>& p, cudaStream_t stream) {
  return paged_attention_generic(p, stream);
}

cudaError_t paged_attention(const PagedAttentionParams<bf16>& p, cudaStream_t stream) {
  // A mixed batch led by decodes over a shared prefix: those as a decode batch of
  // their own (tokens 0 .. d-1, so the cascade applies), then the rest, whose
  // sequence-indexed inputs start d entries later (token rows stay absolute).
  if (const int32_t d = p.shared_prefix_seqs;
      p.max_query_len > 1 && p.shared_prefix_len > 0 && d > 0 && d < p.num_seqs && d <= p.num_tokens) {
    PagedAttentionParams<bf16> dec = p;
    dec.num_seqs = dec.num_tokens = d;
    dec.max_query_len = 1;
    dec.shared_prefix_seqs = 0;
    if (auto e = paged_attention(dec, stream); e != cudaSuccess) return e;
    PagedAttentionParams<bf16> rest = p;
    rest.num_seqs = p.num_seqs - d;
    rest.query_start_loc += d;
    rest.seq_lens += d;
    rest.block_tables += int64_t(d) * p.block_table_stride;
    rest.shared_prefix_len = 0;
    rest.shared_prefix_seqs = 0;
    return paged_attention(rest, stream);
  }
  attn::Plan plan;
  if (auto e = attn::make_plan(p, plan); e != cudaSuccess) {
    // Shapes outside the tuned kernels (e.g. head_dim 8..32 of small models).
    if (paged_attention_generic_supports(p)) return paged_attention_generic(p, stream);
    return e;
  }
  if (p.num_seqs == 0 || p.num_tokens == 0) return cudaSuccess;
  switch (p.head_dim) {
    case 64: return attn::run_group<64>(p, plan, stream);
    case 128: return attn::run_group<128>(p, plan, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace vela::kernels

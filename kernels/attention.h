#pragma once
// Paged attention over a flat batch of sequences (prefill chunks and decodes mixed).
// Sequence s owns query rows [query_start_loc[s], query_start_loc[s+1]) and has
// seq_lens[s] tokens in the cache after this step (its new ones included, already
// written by reshape_and_cache); query i of a chunk of q_len attends keys
// [0, seq_len - q_len + i] (bottom-right causal). Token j of sequence s lives in
// block block_tables[s * block_table_stride + j / block_size], row j % block_size.
// GQA: query head h reads kv head h / (num_q_heads / num_kv_heads).
// Element type T of q, the caches and out: bf16 (the tuned kernels, or the generic
// one) or float (model.dtype float32: the generic kernel, fp32 end to end).
#include <cstddef>
#include <cstdint>

#include "kernels/common.h"

namespace vela::kernels {

// Which decode kernel runs a pure-decode batch. Engines leave kAuto (tensor cores for
// GQA groups of 4 and more, and for any group from 16 sequences on; CUDA cores for
// small batches of small groups: paged_attention_impl.cuh says why); tests and
// bench_attention_gpu pin one to check or time both on the same inputs.
enum class DecodeKernel : uint8_t {
  kAuto,
  kCudaCores,   // decode_kernel: FMA dot products, one key per HD/8 threads
  kTensorCores, // decode_mma_kernel: the G heads as rows of an mma.sync tile
};

// Which instructions the prefill / mixed-batch kernel (and the cascade's shared pass)
// multiply with. kAuto: on sm_90 at head dim 128 the warp-specialized kernel for
// prefill (unless VELA_PREFILL_WS=0) and the one-warpgroup wgmma kernel for the
// shared pass (VELA_SHARED_WS=1: the warp-specialized one); with VELA_PREFILL_WS=0
// wgmma for both unless VELA_PREFILL_WGMMA=0; else mma.sync. Tests and
// bench_attention_gpu pin one to check or time each.
enum class PrefillKernel : uint8_t {
  kAuto,
  kMmaSync,  // mma.sync m16n8k16 per warp, K / V fragments through ldmatrix
  kWgmma,    // warpgroup MMA (sm_90 only; elsewhere mma.sync)
  // Warp-specialized wgmma (sm_90, head dim 128, num_blocks set, blocks of >= 16 keys;
  // elsewhere kWgmma's choice): a TMA producer warpgroup and two consumer warpgroups
  // sharing each K / V tile.
  kWarpSpecialized,
};

template <class T>
struct PagedAttentionParams {
  const T* q = nullptr;  // [T, nq, hd] token-major head view
  int64_t q_token_stride = 0;
  const T* k_cache = nullptr;  // [num_blocks, block_size, nk, hd]
  const T* v_cache = nullptr;
  int64_t num_blocks = 0;  // blocks in k_cache / v_cache (0: unknown; the TMA kernel needs it)
  const int32_t* block_tables = nullptr;  // [num_seqs, block_table_stride]
  int32_t block_table_stride = 0;
  const int32_t* query_start_loc = nullptr;  // [num_seqs + 1]
  const int32_t* seq_lens = nullptr;         // [num_seqs]
  T* out = nullptr;  // [T, nq, hd] token-major head view
  int64_t out_token_stride = 0;
  int32_t num_seqs = 0, num_tokens = 0;
  int32_t num_q_heads = 0, num_kv_heads = 0, head_dim = 0, block_size = 0;
  int32_t max_query_len = 0;  // largest q_len in the batch (host-known)
  int32_t max_seq_len = 0;    // largest seq_len in the batch (host-known)
  // For a CUDA graph replayed across steps: max_seq_len is only an upper bound
  // (max_model_len), fixed at capture. The decode grid is sized from it, and each
  // sequence splits its own keys by its seq_len read on the device, so the launch
  // depends on nothing that changes per step (blocks past a sequence's keys exit).
  bool max_seq_len_is_bound = false;
  float scale = 1.0f;
  // Scratch for split-KV partial results; at least paged_attention_workspace_bytes(...).
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  DecodeKernel decode_kernel = DecodeKernel::kAuto;
  PrefillKernel prefill_kernel = PrefillKernel::kAuto;
  // Decode batches (max_query_len 1): the first shared_prefix_len keys of every
  // sequence are the same cache blocks (their block-table entries agree: a prefix
  // cache hit shared by the whole batch). Those keys can then be read once for the batch (cascade attention: one tensor-core pass of every
  // sequence's query heads over the shared keys, the decode kernel over each
  // sequence's own keys after them, the two merged by log-sum-exp) instead of once
  // per sequence. The caller judges when that pays (workers/persistent_batch.h); the
  // plan declines it for a graph-bounded launch or a workspace too small. A hint
  // only: 0, or a declined batch, reads every key per sequence, same result.
  int32_t shared_prefix_len = 0;
  // A graph-bounded launch (max_seq_len_is_bound) may still take the cascade: the
  // shared prefix's length is then a per-step value the kernels read from here (one
  // int on the device, <= shared_prefix_len, which becomes the bound the plan sizes
  // the shared pass by; 0 reads no shared keys, every sequence's keys its own). The
  // splits of the shared pass and the combine's count follow the value read.
  const int32_t* shared_prefix_len_device = nullptr;
  // A mixed batch (max_query_len > 1): its first shared_prefix_seqs sequences are
  // one-token decodes (token rows 0 .. shared_prefix_seqs - 1) whose first
  // shared_prefix_len keys are the same blocks. They are attended as a decode batch
  // of their own (the cascade above), the rest as a mixed batch, so the decode rows
  // of a prefill step read the shared keys once, not once each. Ignored for a
  // decode batch (every sequence shares them).
  int32_t shared_prefix_seqs = 0;
  // The cascade's shared pass beside the own-key pass: when side_stream is set (with
  // both events), the launcher forks it there (recording side_fork on the stream of
  // the call, joining through side_join before the combine) and launches the shared
  // pass at side_priority, so its tensor-core work takes the SM slots the own-key
  // pass (bound by HBM bandwidth) frees instead of waiting for that pass to end.
  // Captured into a graph, the fork and join are edges and the priority a node
  // attribute (instantiate with cudaGraphInstantiateFlagUseNodePriority). Null: the
  // two passes one after the other on the stream of the call.
  cudaStream_t side_stream = nullptr;
  cudaEvent_t side_fork = nullptr;
  cudaEvent_t side_join = nullptr;
  int side_priority = 0;
};

// What paged_attention would launch for p (host only, nothing runs): for tests and
// benchmarks to know which path they exercise.
struct PagedAttentionPlanInfo {
  bool decode = false;
  int32_t num_splits = 0;     // decode splits per sequence
  int32_t prefix_splits = 0;  // > 0: the cascade's shared pass runs, in this many splits
};
PagedAttentionPlanInfo paged_attention_plan_info(const PagedAttentionParams<bf16>& p);

// Scratch the launcher may need for a batch of up to max_tokens query rows.
size_t paged_attention_workspace_bytes(int64_t max_tokens, int32_t num_q_heads, int32_t head_dim);

// bf16: the tuned kernels (head_dim 64/128, GQA 1..8, power-of-two blocks, aligned
// rows) when they apply, otherwise the generic one. float: the generic one.
cudaError_t paged_attention(const PagedAttentionParams<bf16>& p, cudaStream_t stream);
cudaError_t paged_attention(const PagedAttentionParams<float>& p, cudaStream_t stream);

// The generic kernel alone (any head_dim <= 256, any GQA ratio and block size):
// small and test models, fp32, and a second opinion in tests. T: bf16 or float.
template <class T>
bool paged_attention_generic_supports(const PagedAttentionParams<T>& p);
template <class T>
cudaError_t paged_attention_generic(const PagedAttentionParams<T>& p, cudaStream_t stream);

}  // namespace vela::kernels

#pragma once
// ForwardBatch: the inputs of one forward pass over a flat batch of tokens from
// several sequences (prefill chunks and decodes mixed), in the model's device
// memory. Sequence s owns token rows [query_start_loc[s], query_start_loc[s+1]);
// its queries sit at the end of its seq_lens[s] tokens, so query i of a chunk of
// q_len attends keys [0, seq_len - q_len + i] (causal over cached and new tokens).
#include <cstdint>

#include "model/tensor.h"

namespace vela {

struct ForwardBatch {
  Tensor input_ids;        // [num_tokens] i32
  Tensor positions;        // [num_tokens] i32
  Tensor slot_mapping;     // [num_tokens] i64: block_id * block_size + offset; < 0 skips the write
  Tensor block_tables;     // [num_seqs, max_blocks_per_seq] i32
  Tensor query_start_loc;  // [num_seqs + 1] i32
  Tensor seq_lens;         // [num_seqs] i32: tokens in the KV cache after this step
  int32_t num_tokens = 0;
  int32_t num_seqs = 0;
  int32_t max_seq_len = 0;   // largest seq_lens entry (sizes scratch space)
  int32_t max_query_len = 0; // largest query length (1: a pure decode step)
  // A decode batch captured into a CUDA graph and replayed across steps: num_tokens
  // and num_seqs are the padded bucket, max_seq_len only an upper bound (max_model_len);
  // kernels take every per-step length from the tensors above.
  bool max_seq_len_is_bound = false;
  // A pure decode step whose sequences all start with the same cached blocks: their
  // length in tokens (attention may read them once for the batch); 0 otherwise.
  // A mixed step: the same for its first shared_prefix_seqs sequences, one-token
  // decodes (StepInputs::shared_prefix_seqs).
  int32_t shared_prefix_len = 0;
  int32_t shared_prefix_seqs = 0;
  // A graph of such steps (max_seq_len_is_bound): [1] i32 holding the step's length,
  // read by the kernels; shared_prefix_len is then only its bound. Undefined otherwise.
  Tensor shared_prefix_len_device;
};

// One layer's paged KV cache: [num_blocks, block_size, num_kv_heads, head_dim] each.
struct LayerKVCache {
  Tensor k;
  Tensor v;
};

}  // namespace vela

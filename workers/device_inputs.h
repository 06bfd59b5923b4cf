#pragma once
// The step's flat inputs where the model reads them. On the CPU the ForwardBatch
// views the host vectors of StepInputs. On a GPU every input lives at a fixed
// place in one device buffer sized once from the engine's limits (max tokens,
// max sequences, max blocks per sequence): each step packs the host vectors into
// one pinned staging buffer and sends them with two async copies (the flat arrays;
// the block tables' rows up to the longest sequence's blocks, not the whole fixed
// stride, which max_model_len makes wide), and the
// ForwardBatch's tensors never change address (what CUDA graphs need).
//
// A pure decode step replayed from a CUDA graph (workers/decode_graphs.h) is padded
// to the graph's batch size: the padded sequences are harmless (see pack_step_inputs).
#include <cstdint>

#include "common/result.h"
#include "model/device.h"
#include "model/forward_batch.h"
#include "workers/persistent_batch.h"

namespace vela {

// Where each input lives in the buffer, in int32 words; slot_mapping (i64) first so
// it stays 8-byte aligned.
struct InputLayout {
  int64_t slot_mapping = 0, input_ids = 0, positions = 0, query_start_loc = 0, seq_lens = 0, sample_rows = 0,
          shared_prefix_len = 0, block_tables = 0, total = 0;
  int64_t stride = 0;  // block-table row stride (max blocks per sequence)
  static InputLayout of(int64_t max_tokens, int64_t max_seqs, int64_t max_blocks_per_seq);
};

// Packs `in` into `words` (laid out as `l`) and returns how many block-table columns
// of each row must travel (at least 1). pad_to > num_seqs pads a pure decode step
// (one token per sequence) to pad_to sequences, and each padded sequence s is
// harmless: token 0 at position 0, slot_mapping -1 (no KV write), seq_len 1 over a
// block-table row whose column 0 is the null block 0 (reads one key nobody owns),
// query_start_loc s, and sample row 0 for every sample slot past the real ones (its
// logits are computed and ignored). Exposed for tests.
int64_t pack_step_inputs(const StepInputs& in, int32_t pad_to, int32_t block_size, const InputLayout& l,
                         int32_t* words);

class DeviceInputs {
 public:
  // max_blocks_per_seq is also the block tables' row stride on the device.
  Status init(const DeviceContext& ctx, int32_t max_tokens, int32_t max_seqs, int32_t max_blocks_per_seq,
                    int32_t block_size);
  // The batch for `in` (and its sample rows in sample_rows()); enqueues the copy
  // on ctx's stream. The staging buffer is reused: the caller synchronises the
  // stream before the next upload (the runner does when it reads the samples).
  //
  // pad_to > 0 (CUDA only): `in` is a pure decode step of at most pad_to sequences,
  // padded to pad_to for a CUDA graph captured at that size. The batch then has
  // num_tokens = num_seqs = pad_to, sample_rows() has pad_to rows (the real ones
  // first), and max_seq_len is the bound max_blocks_per_seq x block_size with
  // max_seq_len_is_bound set: every launch it leads to is the same at each step.
  // cascade (with pad_to): the batch is for a graph of cascade steps: its
  // shared_prefix_len is the bound max_seq_len - 1 and shared_prefix_len_device the
  // step's value (in.shared_prefix_len: 0 reads no shared keys).
  Result<ForwardBatch> upload(const StepInputs& in, int32_t pad_to = 0, bool cascade = false);
  // [num sampled rows] i32, where the model reads it; valid after upload().
  const Tensor& sample_rows() const { return sample_rows_; }

 private:
  DeviceContext ctx_;
  int32_t max_tokens_ = 0, max_seqs_ = 0, stride_ = 0, block_size_ = 16;
  Tensor staging_;  // pinned host, int32 words
  Tensor device_;   // the same layout on the device
  Tensor sample_rows_;
};

}  // namespace vela

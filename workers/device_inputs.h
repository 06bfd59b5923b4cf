#pragma once
// The step's flat inputs where the model reads them. On the CPU the ForwardBatch
// views the host vectors of StepInputs. On a GPU every input lives at a fixed
// place in one device buffer sized once from the engine's limits (max tokens,
// max sequences, max blocks per sequence): each step packs the host vectors into
// one pinned staging buffer and sends them with two async copies (the flat arrays;
// the block tables' rows up to the longest sequence's blocks, not the whole fixed
// stride, which max_model_len makes wide), and the
// ForwardBatch's tensors never change address (what CUDA graphs need).
#include <cstdint>

#include "common/result.h"
#include "model/device.h"
#include "model/forward_batch.h"
#include "workers/persistent_batch.h"

namespace vela {

class DeviceInputs {
 public:
  // max_blocks_per_seq is also the block tables' row stride on the device.
  Result<bool> init(const DeviceContext& ctx, int32_t max_tokens, int32_t max_seqs, int32_t max_blocks_per_seq,
                    int32_t block_size);
  // The batch for `in` (and its sample rows in sample_rows()); enqueues the copy
  // on ctx's stream. The staging buffer is reused: the caller synchronises the
  // stream before the next upload (the runner does when it reads the samples).
  Result<ForwardBatch> upload(const StepInputs& in);
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

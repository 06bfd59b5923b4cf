#pragma once
// CUDA graphs of the decode step. The launch cost of a decode step (~30 kernels and
// GEMMs per layer, each a few microseconds of host time and a gap on the GPU) is
// paid once at startup: the runner captures the forward pass + logits of a pure
// decode batch at a few padded batch sizes and, per step, replays the smallest one
// that holds the batch. What makes a capture valid for every later step:
//  - every tensor the forward reads or writes stays at one address (DeviceInputs'
//    buffer, the model's reserved workspace, the KV cache);
//  - every per-step value is read by the kernels from device memory (ids, positions,
//    slots, query starts, seq_lens, block tables, sample rows); the host-side
//    sizes baked into the launches are the bucket's (num_seqs = num_tokens = the
//    padded size, max_seq_len = max_model_len as a bound, see ForwardBatch);
//  - nothing inside allocates or synchronises (cuBLASLt's workspace is preallocated;
//    a warm-up run at the same size plans each GEMM shape and loads each kernel
//    before the capture).
// Mixed prefill/decode steps and batches larger than the largest size run eagerly.
// Decode steps over a cached prefix every sequence shares (cascade attention) replay
// a second set the runner captures when prefix caching is on: the same forward with
// the shared pass sized by a bound and the step's prefix length read on the device.
#include <cstdint>
#include <functional>
#include <vector>

#include "common/result.h"
#include "model/tensor.h"

struct CUstream_st;  // cudaStream_t without the CUDA headers

namespace vela {

// The batch sizes graphs are captured at, for decode steps of up to max_batch
// sequences: 1, 2, 4, 8, then every multiple of 8 (max_batch itself last when it
// is not one); max_batch is capped at kMaxDecodeGraphBatch. Empty when max_batch < 1.
inline constexpr int32_t kMaxDecodeGraphBatch = 512;
std::vector<int32_t> decode_graph_sizes(int32_t max_batch);

class DecodeGraphs {
 public:
  DecodeGraphs() = default;
  ~DecodeGraphs() { clear(); }
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // The captured batch size that serves a decode step of num_seqs sequences: the
  // smallest one >= num_seqs, or 0 (none: run eagerly).
  int32_t bucket_for(int32_t num_seqs) const;
  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  int32_t largest() const { return entries_.empty() ? 0 : entries_.back().batch; }

  // Captures what `body` enqueues on `stream` as the graph of `batch` (sizes in any
  // order; one graph per size). body returns the output tensor (the logits), whose
  // address replay() hands back. node_priority: instantiate with per-node priorities
  // (work forked onto DeviceContext::side_stream runs at that stream's). Errors name
  // the size and CUDA's reason.
  Status capture(int32_t batch, CUstream_st* stream, const std::function<Tensor()>& body, bool node_priority = false);
  // Enqueues the graph of `batch` (a size from bucket_for) on stream; returns the
  // output tensor captured with it, valid once the stream reaches this point.
  Result<Tensor> replay(int32_t batch, CUstream_st* stream);
  // Destroys every graph (before the memory they point into is freed).
  void clear();

 private:
  struct Entry {
    int32_t batch = 0;
    void* exec = nullptr;  // cudaGraphExec_t
    Tensor out;
  };
  std::vector<Entry> entries_;  // ascending batch
};

}  // namespace vela

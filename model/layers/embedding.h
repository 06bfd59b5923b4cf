#pragma once
// Vocab-parallel embedding and LM head. Rank r keeps vocab rows
// [r * V_r, (r + 1) * V_r) with V_r = ceil(vocab / tp) (the last shard is padded
// with zero rows). Lookup: each rank embeds the ids it owns, zeros elsewhere,
// and an all-reduce sums them. Logits: each rank scores its rows and an
// all-gather assembles the full vocabulary.
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "model/device.h"
#include "model/tensor.h"
#include "model/weights.h"

namespace vela {

class Communicator;

class VocabParallelEmbedding {
 public:
  static Result<VocabParallelEmbedding> load(WeightSource& src, const std::string& name, int64_t vocab_size,
                                             int64_t hidden_size, int tp_rank, int tp_size);
  // out [T, H] for ids [T] i32.
  void forward(const DeviceContext& ctx, const Tensor& ids, Tensor& out, Communicator* comm) const;
  // logits [S, vocab] for hidden [S, H]; shard_scratch holds [S, V_r] and
  // gather_scratch [tp, S, V_r] (both ignored when tp == 1).
  void logits(const DeviceContext& ctx, const Tensor& hidden, Tensor& logits, Tensor& shard_scratch, Tensor& gather_scratch,
              Communicator* comm) const;

  int64_t rows_per_rank() const { return weight_.size(0); }
  int64_t vocab_size() const { return vocab_size_; }
  size_t nbytes() const { return weight_.nbytes(); }

 private:
  Tensor weight_;  // [V_r, H]
  int64_t vocab_size_ = 0;
  int64_t vocab_start_ = 0;
  int tp_size_ = 1;
};

}  // namespace vela

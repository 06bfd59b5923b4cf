#include "model/layers/embedding.h"

#include <algorithm>

#include "model/communicator.h"
#include "model/device.h"
#include "model/ops/ops.h"

namespace vela {

Result<VocabParallelEmbedding> VocabParallelEmbedding::load(WeightSource& src, const std::string& name,
                                                            int64_t vocab_size, int64_t hidden_size, int tp_rank,
                                                            int tp_size) {
  int64_t per_rank = (vocab_size + tp_size - 1) / tp_size;
  VocabParallelEmbedding e;
  VELA_TRY_ASSIGN(e.weight_,
                  src.load(name, {vocab_size, hidden_size}, Slice::along(0, int64_t(tp_rank) * per_rank, per_rank)));
  e.vocab_size_ = vocab_size;
  e.vocab_start_ = int64_t(tp_rank) * per_rank;
  e.tp_size_ = tp_size;
  return e;
}

void VocabParallelEmbedding::forward(const DeviceContext& ctx, const Tensor& ids, Tensor& out,
                                     Communicator* comm) const {
  ops::embedding(ctx, ids, weight_, vocab_start_, out);
  if (tp_size_ > 1) comm->all_reduce_sum(out.raw_data(), size_t(out.numel()), out.dtype(), ctx.stream);
}

void VocabParallelEmbedding::logits(const DeviceContext& ctx, const Tensor& hidden, Tensor& logits, Tensor& shard_scratch,
                                    Tensor& gather_scratch, Communicator* comm) const {
  if (tp_size_ == 1) {
    ops::linear(ctx, hidden, weight_, nullptr, logits);
    return;
  }
  int64_t rows = hidden.size(0), per_rank = weight_.size(0);
  ops::linear(ctx, hidden, weight_, nullptr, shard_scratch);
  // gathered [tp, S, V_r] -> logits [S, vocab], dropping the padded tail: one
  // strided copy per rank (on the compute stream on CUDA).
  comm->all_gather(shard_scratch.raw_data(), size_t(rows * per_rank), gather_scratch.raw_data(), DType::kF32,
                   ctx.stream);
  const size_t f = sizeof(float);
  for (int r = 0; r < tp_size_; ++r) {
    int64_t begin = r * per_rank;
    int64_t count = std::min(per_rank, vocab_size_ - begin);
    if (count <= 0) continue;
    // Device-side failures surface at the step's synchronisation.
    (void)copy_rows_async(static_cast<char*>(logits.raw_data()) + size_t(begin) * f, size_t(logits.stride(0)) * f,
                          static_cast<const char*>(gather_scratch.raw_data()) + size_t(r) * size_t(rows * per_rank) * f,
                          size_t(per_rank) * f, size_t(count) * f, size_t(rows), ctx);
  }
}

}  // namespace vela

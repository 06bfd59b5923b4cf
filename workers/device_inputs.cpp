#include "workers/device_inputs.h"

#include <algorithm>
#include <cstring>

namespace vela {

InputLayout InputLayout::of(int64_t T, int64_t S, int64_t stride) {
  InputLayout l;
  l.stride = stride;
  l.slot_mapping = 0;
  l.input_ids = 2 * T;
  l.positions = l.input_ids + T;
  l.query_start_loc = l.positions + T;
  l.seq_lens = l.query_start_loc + S + 1;
  l.sample_rows = l.seq_lens + S;
  l.shared_prefix_len = l.sample_rows + S;
  l.block_tables = l.shared_prefix_len + 1;
  l.total = l.block_tables + S * stride;
  return l;
}

int64_t pack_step_inputs(const StepInputs& in, int32_t pad_to, int32_t block_size, const InputLayout& l,
                         int32_t* h) {
  const int64_t T = in.num_tokens(), S = int64_t(in.requests.size()), R = int64_t(in.sample_rows.size());
  // (An all-padding batch has empty vectors, whose data() may be null.)
  auto put = [h](int64_t at, const void* src, int64_t bytes) {
    if (bytes > 0) std::memcpy(h + at, src, size_t(bytes));
  };
  put(l.slot_mapping, in.slot_mapping.data(), T * int64_t(sizeof(int64_t)));
  put(l.input_ids, in.input_ids.data(), T * int64_t(sizeof(int32_t)));
  put(l.positions, in.positions.data(), T * int64_t(sizeof(int32_t)));
  put(l.query_start_loc, in.query_start_loc.data(), (S + 1) * int64_t(sizeof(int32_t)));
  put(l.seq_lens, in.seq_lens.data(), S * int64_t(sizeof(int32_t)));
  put(l.sample_rows, in.sample_rows.data(), R * int64_t(sizeof(int32_t)));
  h[l.shared_prefix_len] = in.shared_prefix_len;
  // Row r holds the blocks of sequence r; entries past its seq_len are never read,
  // so only the columns up to the longest sequence's blocks travel (at least one:
  // a padded row's column 0 must reach the device).
  const int64_t used_blocks =
      std::clamp<int64_t>((int64_t(in.max_seq_len) + block_size - 1) / block_size, 1, l.stride);
  const size_t row_bytes = size_t(used_blocks) * sizeof(int32_t);
  for (int64_t r = 0; r < S; ++r)
    std::memcpy(h + l.block_tables + r * l.stride, in.block_tables.data() + r * in.max_blocks_per_seq, row_bytes);
  // Padding of a decode step (T == S): sequence s >= S is token s.
  int64_t* slots = reinterpret_cast<int64_t*>(h + l.slot_mapping);
  for (int64_t s = S; s < pad_to; ++s) {
    slots[s] = -1;
    h[l.input_ids + s] = 0;
    h[l.positions + s] = 0;
    h[l.query_start_loc + s + 1] = int32_t(s + 1);
    h[l.seq_lens + s] = 1;
    std::memset(h + l.block_tables + s * l.stride, 0, row_bytes);
  }
  for (int64_t r = R; r < pad_to; ++r) h[l.sample_rows + r] = 0;
  return used_blocks;
}

Status DeviceInputs::init(const DeviceContext& ctx, int32_t max_tokens, int32_t max_seqs,
                                int32_t max_blocks_per_seq, int32_t block_size) {
  ctx_ = ctx;
  block_size_ = block_size;
  max_tokens_ = max_tokens;
  max_seqs_ = max_seqs;
  stride_ = max_blocks_per_seq;
  if (!ctx.is_cuda()) return ok_status();
  const InputLayout l = InputLayout::of(max_tokens, max_seqs, max_blocks_per_seq);
  VELA_TRY_ASSIGN(staging_, host_staging_tensor(l.total, DType::kI32, ctx));
  try {
    device_ = Tensor::zeros({l.total}, DType::kI32, ctx.device);
  } catch (const std::bad_alloc& e) {
    return make_error("out_of_memory", std::string("step inputs: ") + e.what());
  }
  return ok_status();
}

Result<ForwardBatch> DeviceInputs::upload(const StepInputs& in, int32_t pad_to, bool cascade) {
  const int64_t T = in.num_tokens(), S = int64_t(in.requests.size()), R = int64_t(in.sample_rows.size());
  ForwardBatch b;
  b.num_tokens = int32_t(T);
  b.num_seqs = int32_t(S);
  b.max_seq_len = in.max_seq_len;
  b.max_query_len = in.num_scheduled.empty() ? 0 : *std::max_element(in.num_scheduled.begin(), in.num_scheduled.end());
  b.shared_prefix_len = pad_to > 0 ? 0 : in.shared_prefix_len;  // a replayed graph fixed its launches at capture
  b.shared_prefix_seqs = pad_to > 0 ? 0 : in.shared_prefix_seqs;
  if (!ctx_.is_cuda()) {  // the CPU backend reads the host vectors in place
    if (pad_to > 0) return make_error("bad_step", "padded decode batches (CUDA graphs) exist only on CUDA");
    auto view = [](const auto& v, DType dt, std::initializer_list<int64_t> shape) {
      return Tensor::from_blob(const_cast<void*>(static_cast<const void*>(v.data())), shape, dt);
    };
    b.input_ids = view(in.input_ids, DType::kI32, {T});
    b.positions = view(in.positions, DType::kI32, {T});
    b.slot_mapping = view(in.slot_mapping, DType::kI64, {T});
    b.block_tables = view(in.block_tables, DType::kI32, {S, in.max_blocks_per_seq});
    b.query_start_loc = view(in.query_start_loc, DType::kI32, {S + 1});
    b.seq_lens = view(in.seq_lens, DType::kI32, {S});
    sample_rows_ = view(in.sample_rows, DType::kI32, {R});
    return b;
  }
  if (T > max_tokens_ || S > max_seqs_ || in.max_blocks_per_seq != stride_)
    return make_error("bad_step", "a step of " + std::to_string(T) + " tokens, " + std::to_string(S) +
                                      " sequences and block-table stride " + std::to_string(in.max_blocks_per_seq) +
                                      " exceeds the reserved " + std::to_string(max_tokens_) + " / " +
                                      std::to_string(max_seqs_) + " / " + std::to_string(stride_));
  if (cascade && pad_to <= 0) return make_error("bad_step", "a cascade graph's batch needs its padded size");
  const InputLayout l = InputLayout::of(max_tokens_, max_seqs_, stride_);
  int64_t rows = S, sampled = R;
  if (pad_to > 0) {
    if (T != S || pad_to < S || pad_to > max_seqs_ || pad_to > max_tokens_ || R > S)
      return make_error("bad_step", "padding a step of " + std::to_string(T) + " tokens, " + std::to_string(S) +
                                        " sequences to a decode batch of " + std::to_string(pad_to) +
                                        " (needs one token per sequence and at most " +
                                        std::to_string(std::min(max_seqs_, max_tokens_)) + ")");
    rows = sampled = pad_to;
    b.num_tokens = b.num_seqs = pad_to;
    b.max_query_len = 1;
    b.max_seq_len = stride_ * block_size_;
    b.max_seq_len_is_bound = true;
    if (cascade) {
      b.shared_prefix_len = b.max_seq_len - 1;
      b.shared_prefix_len_device = device_.narrow(0, l.shared_prefix_len, 1);
    }
  }
  int32_t* h = staging_.data<int32_t>();
  const int64_t used_blocks = pack_step_inputs(in, pad_to, block_size_, l, h);
  const size_t row_bytes = size_t(used_blocks) * sizeof(int32_t);
  VELA_TRY(copy_async(device_.raw_data(), h, size_t(l.block_tables) * sizeof(int32_t), ctx_));
  VELA_TRY(copy_rows_async(device_.data<int32_t>() + l.block_tables, size_t(stride_) * sizeof(int32_t),
                           h + l.block_tables, size_t(stride_) * sizeof(int32_t), row_bytes, size_t(rows), ctx_));
  auto at = [&](int64_t offset, int64_t n) { return device_.narrow(0, offset, n); };
  const int64_t tokens = b.num_tokens;
  b.slot_mapping = Tensor::from_blob(device_.data<int32_t>() + l.slot_mapping, {tokens}, DType::kI64, ctx_.device);
  b.input_ids = at(l.input_ids, tokens);
  b.positions = at(l.positions, tokens);
  b.query_start_loc = at(l.query_start_loc, rows + 1);
  b.seq_lens = at(l.seq_lens, rows);
  b.block_tables = at(l.block_tables, rows * stride_).view({rows, stride_});
  sample_rows_ = at(l.sample_rows, sampled);
  return b;
}

}  // namespace vela

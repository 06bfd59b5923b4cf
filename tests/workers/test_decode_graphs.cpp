// The host side of decode CUDA graphs, testable without a GPU: the capture sizes,
// the bucket a step replays, and the padding DeviceInputs packs for it (the rows a
// graph computes beyond the real ones must be harmless).
#include <catch2/catch.hpp>

#include <vector>

#include "workers/decode_graphs.h"
#include "workers/device_inputs.h"

using namespace vela;

TEST_CASE("decode graphs are captured at 1, 2, 4, 8 and every multiple of 8, capped at 512", "[graphs]") {
  CHECK(decode_graph_sizes(0).empty());
  CHECK(decode_graph_sizes(1) == std::vector<int32_t>{1});
  CHECK(decode_graph_sizes(3) == std::vector<int32_t>{1, 2, 3});
  CHECK(decode_graph_sizes(5) == std::vector<int32_t>{1, 2, 4, 5});
  CHECK(decode_graph_sizes(16) == std::vector<int32_t>{1, 2, 4, 8, 16});
  CHECK(decode_graph_sizes(20) == std::vector<int32_t>{1, 2, 4, 8, 16, 20});
  const auto all = decode_graph_sizes(100000);
  CHECK(all.size() == 3 + 512 / 8);
  CHECK(all.back() == kMaxDecodeGraphBatch);
  CHECK(decode_graph_sizes(256).back() == 256);
}

TEST_CASE("without captured graphs every step runs eagerly", "[graphs]") {
  DecodeGraphs graphs;
  CHECK(graphs.empty());
  CHECK(graphs.bucket_for(1) == 0);
  CHECK(graphs.largest() == 0);
  CHECK_FALSE(graphs.replay(1, nullptr).ok());
}

namespace {
// A pure decode step of `lens.size()` sequences (one token each, the last of lens[s]).
StepInputs decode_step(const std::vector<int32_t>& lens, int32_t stride, int32_t block_size) {
  StepInputs in;
  in.max_blocks_per_seq = stride;
  in.query_start_loc = {0};
  for (size_t s = 0; s < lens.size(); ++s) {
    in.requests.push_back(nullptr);
    in.num_scheduled.push_back(1);
    in.input_ids.push_back(100 + int32_t(s));
    in.positions.push_back(lens[s] - 1);
    const int32_t blocks = (lens[s] + block_size - 1) / block_size;
    for (int32_t b = 0; b < stride; ++b) in.block_tables.push_back(b < blocks ? 10 * int32_t(s + 1) + b : 0);
    in.slot_mapping.push_back(int64_t(in.block_tables[s * size_t(stride) + size_t(blocks - 1)]) * block_size +
                              (lens[s] - 1) % block_size);
    in.query_start_loc.push_back(int32_t(s) + 1);
    in.seq_lens.push_back(lens[s]);
    in.max_seq_len = std::max(in.max_seq_len, lens[s]);
  }
  // Sequence 1 is not sampled (say, the last token of a chunk that is not the prompt's end).
  for (size_t s = 0; s < lens.size(); ++s)
    if (s != 1) {
      in.sampled_request_index.push_back(int32_t(s));
      in.sample_rows.push_back(int32_t(s));
    }
  return in;
}
}  // namespace

TEST_CASE("a decode step padded for a graph: real rows as they are, padded rows harmless", "[graphs]") {
  const int32_t block_size = 4, stride = 8, max_tokens = 16, max_seqs = 12;
  const InputLayout l = InputLayout::of(max_tokens, max_seqs, stride);
  std::vector<int32_t> words(size_t(l.total), 7777);  // poison
  const StepInputs in = decode_step({5, 9, 2}, stride, block_size);
  const int32_t pad_to = 8;
  const int64_t used = pack_step_inputs(in, pad_to, block_size, l, words.data());
  CHECK(used == 3);  // the longest sequence's blocks: ceil(9 / 4)
  const int32_t* w = words.data();
  const auto* slots = reinterpret_cast<const int64_t*>(w + l.slot_mapping);
  for (int32_t s = 0; s < 3; ++s) {
    INFO("real sequence " << s);
    CHECK(slots[s] == in.slot_mapping[size_t(s)]);
    CHECK(w[l.input_ids + s] == in.input_ids[size_t(s)]);
    CHECK(w[l.positions + s] == in.positions[size_t(s)]);
    CHECK(w[l.seq_lens + s] == in.seq_lens[size_t(s)]);
    for (int32_t b = 0; b < used; ++b) CHECK(w[l.block_tables + s * stride + b] == in.block_tables[size_t(s * stride + b)]);
  }
  for (int32_t s = 3; s < pad_to; ++s) {
    INFO("padded sequence " << s);
    CHECK(slots[s] == -1);                   // no KV write
    CHECK(w[l.input_ids + s] == 0);
    CHECK(w[l.positions + s] == 0);
    CHECK(w[l.seq_lens + s] == 1);           // one key ...
    for (int32_t b = 0; b < used; ++b)       // ... from the null block
      CHECK(w[l.block_tables + s * stride + b] == 0);
  }
  for (int32_t s = 0; s <= pad_to; ++s) CHECK(w[l.query_start_loc + s] == s);  // one token each
  // Sampled rows first (sequence 1 is not sampled), then row 0 for the padding.
  CHECK(w[l.sample_rows + 0] == 0);
  CHECK(w[l.sample_rows + 1] == 2);
  for (int32_t r = 2; r < pad_to; ++r) CHECK(w[l.sample_rows + r] == 0);
  // Nothing past the padded size is touched.
  CHECK(w[l.seq_lens + pad_to] == 7777);
  CHECK(w[l.input_ids + pad_to] == 7777);
}

TEST_CASE("an all-padding batch (what the capture runs) reads one null-block key per row", "[graphs]") {
  const InputLayout l = InputLayout::of(8, 8, 4);
  std::vector<int32_t> words(size_t(l.total), -5);
  StepInputs none;
  none.max_blocks_per_seq = 4;
  none.query_start_loc = {0};
  CHECK(pack_step_inputs(none, 8, 16, l, words.data()) == 1);
  for (int32_t s = 0; s < 8; ++s) {
    CHECK(reinterpret_cast<const int64_t*>(words.data() + l.slot_mapping)[s] == -1);
    CHECK(words[size_t(l.seq_lens + s)] == 1);
    CHECK(words[size_t(l.block_tables + s * 4)] == 0);
    CHECK(words[size_t(l.query_start_loc + s + 1)] == s + 1);
  }
}

TEST_CASE("an unpadded step packs exactly as before (no padding rows written)", "[graphs]") {
  const InputLayout l = InputLayout::of(16, 12, 8);
  std::vector<int32_t> words(size_t(l.total), 7777);
  const StepInputs in = decode_step({5, 9, 2}, 8, 4);
  pack_step_inputs(in, 0, 4, l, words.data());
  CHECK(words[size_t(l.seq_lens + 3)] == 7777);
  CHECK(words[size_t(l.query_start_loc + 4)] == 7777);
  CHECK(words[size_t(l.sample_rows + 2)] == 7777);
}

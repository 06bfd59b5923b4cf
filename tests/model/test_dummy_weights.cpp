// The dummy load format: seeded random weights of the config's shapes.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>

#include "model/hf_config.h"
#include "model/models/causal_lm.h"
#include "model/models/registry.h"
#include "model/weights.h"
#include "tests/model/golden.h"

using namespace vela;

namespace {
std::vector<float> dummy_logits(uint64_t seed) {
  auto config = load_hf_config(testing::model_dir("llama3-tiny"));
  REQUIRE(config.ok());
  auto model = create_model(config.value(), ParallelInfo{}, nullptr, DeviceContext::cpu());
  REQUIRE(model.ok());
  auto weights = make_dummy_weights(seed, config->initializer_range);
  REQUIRE(model.value()->load_weights(*weights).ok());
  const ModelShape& s = model.value()->shape();
  std::vector<LayerKVCache> kv;
  for (int64_t l = 0; l < s.num_layers; ++l)
    kv.push_back({Tensor::zeros({2, 16, s.num_kv_heads, s.head_dim}, DType::kF32),
                  Tensor::zeros({2, 16, s.num_kv_heads, s.head_dim}, DType::kF32)});
  std::vector<int32_t> ids{1, 2, 3}, pos{0, 1, 2}, table{1}, qsl{0, 3}, lens{3}, rows{2};
  std::vector<int64_t> slots{16, 17, 18};
  ForwardBatch b;
  b.input_ids = Tensor::from_blob(ids.data(), {3}, DType::kI32);
  b.positions = Tensor::from_blob(pos.data(), {3}, DType::kI32);
  b.slot_mapping = Tensor::from_blob(slots.data(), {3}, DType::kI64);
  b.block_tables = Tensor::from_blob(table.data(), {1, 1}, DType::kI32);
  b.query_start_loc = Tensor::from_blob(qsl.data(), {2}, DType::kI32);
  b.seq_lens = Tensor::from_blob(lens.data(), {1}, DType::kI32);
  b.num_tokens = 3;
  b.num_seqs = 1;
  b.max_seq_len = 3;
  Tensor hidden = model.value()->forward(b, kv);
  Tensor logits = model.value()->compute_logits(hidden, Tensor::from_blob(rows.data(), {1}, DType::kI32));
  return std::vector<float>(logits.data<float>(), logits.data<float>() + logits.size(1));
}
}  // namespace

TEST_CASE("dummy weights are deterministic per seed and give finite logits", "[dummy]") {
  auto a = dummy_logits(7), b = dummy_logits(7), c = dummy_logits(8);
  REQUIRE(a.size() == 128256);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(std::all_of(a.begin(), a.end(), [](float v) { return std::isfinite(v); }));
  float spread = *std::max_element(a.begin(), a.end()) - *std::min_element(a.begin(), a.end());
  CHECK(spread > 0.0f);
}

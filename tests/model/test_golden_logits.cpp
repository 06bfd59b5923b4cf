// Teacher-forced logits of the reference models against HF transformers' fp32
// numbers: prompt + generated fed as one prefill through the paged path.
#include <catch2/catch.hpp>
#include <cmath>

#include "model/communicator.h"
#include "model/hf_config.h"
#include "model/models/causal_lm.h"
#include "model/models/registry.h"
#include "model/weights.h"
#include "tests/model/golden.h"

using namespace vela;

namespace {

constexpr int64_t kBlockSize = 16;

struct Loaded {
  HFConfig config;
  std::unique_ptr<CausalLM> model;
  std::vector<LayerKVCache> kv;
};

Loaded load_reference(const std::string& name, int64_t num_blocks) {
  Loaded l;
  auto config = load_hf_config(testing::model_dir(name));
  REQUIRE(config.ok());
  l.config = config.value();
  auto model = create_model(l.config, ParallelInfo{}, nullptr, DeviceContext::cpu());
  REQUIRE(model.ok());
  l.model = std::move(model.value());
  auto weights = open_safetensors_weights(testing::model_dir(name));
  REQUIRE(weights.ok());
  auto loaded = l.model->load_weights(*weights.value());
  if (!loaded) FAIL(loaded.error().message);
  const ModelShape& s = l.model->shape();
  for (int64_t i = 0; i < s.num_layers; ++i)
    l.kv.push_back({Tensor::zeros({num_blocks, kBlockSize, s.num_kv_heads, s.head_dim}, DType::kF32),
                    Tensor::zeros({num_blocks, kBlockSize, s.num_kv_heads, s.head_dim}, DType::kF32)});
  return l;
}

void check_model(const std::string& name) {
  auto cases = testing::load_golden(name);
  REQUIRE(!cases.empty());
  const int64_t num_blocks = 64;
  Loaded l = load_reference(name, num_blocks);
  float worst = 0.0f;
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const auto& gc = cases[ci];
    std::vector<int32_t> ids = gc.prompt;
    ids.insert(ids.end(), gc.generated.begin(), gc.generated.end() - 1);
    const int32_t T = int32_t(ids.size());
    const int64_t blocks_needed = (T + kBlockSize - 1) / kBlockSize;
    REQUIRE(blocks_needed <= num_blocks);
    // Blocks taken from the end of the pool, so the table is not the identity.
    std::vector<int32_t> table(static_cast<size_t>(blocks_needed));
    for (int64_t b = 0; b < blocks_needed; ++b) table[size_t(b)] = int32_t(num_blocks - 1 - b);
    std::vector<int32_t> positions(static_cast<size_t>(T));
    std::vector<int64_t> slots(static_cast<size_t>(T));
    for (int32_t t = 0; t < T; ++t) {
      positions[size_t(t)] = t;
      slots[size_t(t)] = int64_t(table[size_t(t / kBlockSize)]) * kBlockSize + t % kBlockSize;
    }
    std::vector<int32_t> qsl{0, T}, seq_lens{T};
    ForwardBatch batch;
    batch.input_ids = Tensor::from_blob(ids.data(), {T}, DType::kI32);
    batch.positions = Tensor::from_blob(positions.data(), {T}, DType::kI32);
    batch.slot_mapping = Tensor::from_blob(slots.data(), {T}, DType::kI64);
    batch.block_tables = Tensor::from_blob(table.data(), {1, blocks_needed}, DType::kI32);
    batch.query_start_loc = Tensor::from_blob(qsl.data(), {2}, DType::kI32);
    batch.seq_lens = Tensor::from_blob(seq_lens.data(), {1}, DType::kI32);
    batch.num_tokens = T;
    batch.num_seqs = 1;
    batch.max_seq_len = T;
    Tensor hidden = l.model->forward(batch, l.kv);
    std::vector<int32_t> rows;
    for (size_t i = 0; i < gc.steps.size(); ++i) rows.push_back(int32_t(gc.prompt.size() - 1 + i));
    Tensor logits = l.model->compute_logits(hidden, Tensor::from_blob(rows.data(), {int64_t(rows.size())}, DType::kI32));
    REQUIRE(logits.size(1) == l.config.vocab_size);
    for (size_t i = 0; i < gc.steps.size(); ++i) {
      const auto& st = gc.steps[i];
      const float* row = logits.data<float>() + int64_t(i) * logits.stride(0);
      INFO(name << " case " << ci << " step " << i);
      for (size_t j = 0; j < st.top_ids.size(); ++j) {
        float diff = std::fabs(row[st.top_ids[j]] - st.top_logits[j]);
        worst = std::max(worst, diff);
        CHECK(diff <= 1e-3f);
      }
      CHECK(std::fabs(row[st.token] - st.logit) <= 1e-3f);
    }
  }
  WARN(name << ": largest |logit - HF| over the top-8 of every step: " << worst);
}

}  // namespace

TEST_CASE("qwen3-tiny teacher-forced logits match HF transformers", "[golden]") { check_model("qwen3-tiny"); }
TEST_CASE("llama3-tiny teacher-forced logits match HF transformers", "[golden]") { check_model("llama3-tiny"); }
TEST_CASE("qwen2-tiny teacher-forced logits match HF transformers", "[golden]") { check_model("qwen2-tiny"); }

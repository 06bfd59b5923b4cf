// Tensor parallelism within one process: two ranks as threads sharing a barrier
// communicator must compute the same logits as one rank (within 1e-4) and the
// runner the same greedy tokens.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "model/hf_config.h"
#include "model/models/causal_lm.h"
#include "model/models/registry.h"
#include "model/weights.h"
#include "tests/model/golden.h"
#include "tests/workers/mini_scheduler.h"
#include "tests/workers/runner_fixture.h"
#include "tests/workers/thread_communicator.h"

using namespace vela;

namespace {

// All-token logits [T, vocab] of one sequence through rank `rank` of `tp`.
std::vector<float> sequence_logits(const HFConfig& config, WeightSource& weights, int rank, int tp,
                                   Communicator* comm, const std::vector<int32_t>& ids) {
  auto model = create_model(config, ParallelInfo{rank, tp}, comm, DeviceContext::cpu());
  REQUIRE(model.ok());
  auto loaded = model.value()->load_weights(weights);
  if (!loaded) FAIL(loaded.error().message);
  const ModelShape& s = model.value()->shape();
  const int32_t T = int32_t(ids.size());
  const int64_t blocks = (T + 15) / 16;
  std::vector<LayerKVCache> kv;
  for (int64_t l = 0; l < s.num_layers; ++l)
    kv.push_back({Tensor::zeros({blocks, 16, s.num_kv_heads, s.head_dim}, DType::kF32),
                  Tensor::zeros({blocks, 16, s.num_kv_heads, s.head_dim}, DType::kF32)});
  std::vector<int32_t> input = ids, pos, table, qsl{0, T}, lens{T}, rows;
  std::vector<int64_t> slots;
  for (int32_t t = 0; t < T; ++t) {
    pos.push_back(t);
    slots.push_back(t);
    rows.push_back(t);
  }
  for (int64_t b = 0; b < blocks; ++b) table.push_back(int32_t(b));
  ForwardBatch batch;
  batch.input_ids = Tensor::from_blob(input.data(), {T}, DType::kI32);
  batch.positions = Tensor::from_blob(pos.data(), {T}, DType::kI32);
  batch.slot_mapping = Tensor::from_blob(slots.data(), {T}, DType::kI64);
  batch.block_tables = Tensor::from_blob(table.data(), {1, blocks}, DType::kI32);
  batch.query_start_loc = Tensor::from_blob(qsl.data(), {2}, DType::kI32);
  batch.seq_lens = Tensor::from_blob(lens.data(), {1}, DType::kI32);
  batch.num_tokens = T;
  batch.num_seqs = 1;
  batch.max_seq_len = T;
  Tensor hidden = model.value()->forward(batch, kv);
  Tensor logits = model.value()->compute_logits(hidden, Tensor::from_blob(rows.data(), {T}, DType::kI32));
  return std::vector<float>(logits.data<float>(), logits.data<float>() + logits.numel());
}

void compare_tp2(const HFConfig& config, const std::function<std::unique_ptr<WeightSource>()>& weights) {
  std::vector<int32_t> ids{9707, 11, 847, 5562, 374, 18838, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
  auto w1 = weights();
  SingleRankCommunicator single;
  std::vector<float> tp1 = sequence_logits(config, *w1, 0, 1, &single, ids);

  testing::ThreadGroup group(2);
  std::vector<float> tp2[2];
  std::thread rank1([&] {
    testing::ThreadCommunicator comm(group, 1);
    auto w = weights();
    tp2[1] = sequence_logits(config, *w, 1, 2, &comm, ids);
  });
  {
    testing::ThreadCommunicator comm(group, 0);
    auto w = weights();
    tp2[0] = sequence_logits(config, *w, 0, 2, &comm, ids);
  }
  rank1.join();
  REQUIRE(tp2[0].size() == tp1.size());
  CHECK(tp2[1] == tp2[0]);  // every rank holds the gathered logits
  float worst = 0.0f;
  for (size_t i = 0; i < tp1.size(); ++i) worst = std::max(worst, std::fabs(tp1[i] - tp2[0][i]));
  INFO(config.architecture << ": largest |TP2 - TP1| = " << worst);
  CHECK(worst <= 1e-4f);
}

}  // namespace

TEST_CASE("TP=2 logits equal TP=1 for the reference models", "[tp]") {
  // qwen3-tiny has one KV head: both ranks keep a replica of it.
  for (const char* name : {"qwen3-tiny", "llama3-tiny", "qwen2-tiny"}) {
    auto config = load_hf_config(testing::model_dir(name));
    REQUIRE(config.ok());
    compare_tp2(config.value(), [&] {
      auto w = open_safetensors_weights(testing::model_dir(name));
      REQUIRE(w.ok());
      return std::move(w.value());
    });
  }
}

TEST_CASE("TP=2 with an odd vocabulary pads the last shard", "[tp]") {
  auto j = nlohmann::json::parse(std::ifstream(testing::model_dir("llama3-tiny") + "/config.json"));
  j["vocab_size"] = 1001;
  j["tie_word_embeddings"] = false;  // a separate lm_head shard too
  auto config = parse_hf_config(j.dump(), "odd-vocab/config.json");
  REQUIRE(config.ok());
  compare_tp2(config.value(), [] { return make_dummy_weights(5, 0.02); });
}

TEST_CASE("TP=2 runners generate HF's greedy tokens", "[tp][golden]") {
  const std::string model = "llama3-tiny";
  auto cases = testing::load_golden(model);
  testing::ThreadGroup group(2);
  testing::ThreadCommunicator comm0(group, 0), comm1(group, 1);
  std::unique_ptr<Runner> runners[2];
  std::thread loader([&] { runners[1] = testing::loaded_runner(model, 1024, &comm1, 1, 2); });
  runners[0] = testing::loaded_runner(model, 1024, &comm0, 0, 2);
  loader.join();

  testing::MiniScheduler sched({.block_size = 16, .max_chunk_tokens = 8, .token_budget = 32});
  for (size_t i = 0; i < cases.size(); ++i)
    sched.add("r" + std::to_string(i), cases[i].prompt, testing::greedy(), int32_t(cases[i].generated.size()));
  while (!sched.done()) {
    SchedulerOutput step = sched.schedule();
    Result<ModelRunnerOutput> rank1_out = ModelRunnerOutput{};
    std::thread rank1([&] { rank1_out = runners[1]->execute(step); });
    auto out = runners[0]->execute(step);
    rank1.join();
    REQUIRE(out.ok());
    REQUIRE(rank1_out.ok());
    sched.update(step, out.value());
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    size_t n = cases[i].num_reliable_tokens();
    const auto& got = sched.request("r" + std::to_string(i)).outputs;
    CHECK(std::vector<int32_t>(got.begin(), got.begin() + ptrdiff_t(n)) ==
          std::vector<int32_t>(cases[i].generated.begin(), cases[i].generated.begin() + ptrdiff_t(n)));
  }
}

// The demo model shipped in models/demo (trained by scripts/train_demo/train.py)
// computes on Vela's CPU path what torch computed when it was made
// (models/demo/golden.json): the same tokenization, the held-out perplexity within
// 1%, and the same greedy continuations up to the first step whose top-1/top-2
// margin is under 1e-2. Exits 77 (skipped) while models/demo does not exist.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "model/communicator.h"
#include "model/hf_config.h"
#include "model/models/causal_lm.h"
#include "model/models/registry.h"
#include "model/weights.h"
#include "tests/model/golden.h"
#include "tests/workers/mini_scheduler.h"
#include "tests/workers/runner_fixture.h"
#include "tokenizer/tokenizer.h"
#include "workers/model_runner.h"

using namespace vela;
using json = nlohmann::json;

namespace {

// VELA_DEMO_MODEL, else <source>/models/demo; "" when there is no config.json there.
std::string demo_dir() {
  namespace fs = std::filesystem;
  const char* env = std::getenv("VELA_DEMO_MODEL");
  fs::path dir = env != nullptr && *env ? fs::path(env) : fs::path(VELA_SOURCE_DIR) / "models" / "demo";
  std::error_code ec;
  return fs::exists(dir / "config.json", ec) ? dir.string() : "";
}

const json& golden() {
  static const json j = [] {
    std::ifstream in(demo_dir() + "/golden.json");
    REQUIRE(in.good());
    return json::parse(in);
  }();
  return j;
}

std::vector<testing::GoldenCase> greedy_cases() {
  std::vector<testing::GoldenCase> cases;
  for (const auto& c : golden()["cases"]) {
    testing::GoldenCase gc;
    gc.prompt = c["prompt"].get<std::vector<int32_t>>();
    gc.generated = c["generated"].get<std::vector<int32_t>>();
    for (const auto& s : c["steps"]) {
      testing::GoldenStep st;
      st.token = s["token"];
      st.logit = s["logit"];
      st.margin = s["margin"];
      st.top_ids = s["top_ids"].get<std::vector<int32_t>>();
      st.top_logits = s["top_logits"].get<std::vector<float>>();
      gc.steps.push_back(std::move(st));
    }
    cases.push_back(std::move(gc));
  }
  return cases;
}

constexpr int64_t kBlockSize = 16;

struct Loaded {
  HFConfig config;
  std::unique_ptr<CausalLM> model;
};

Loaded load_model() {
  Loaded l;
  auto config = load_hf_config(demo_dir());
  REQUIRE(config.ok());
  l.config = config.value();
  auto model = create_model(l.config, ParallelInfo{}, nullptr, DeviceContext::cpu());
  REQUIRE(model.ok());
  l.model = std::move(model.value());
  auto weights = open_safetensors_weights(demo_dir());
  REQUIRE(weights.ok());
  auto loaded = l.model->load_weights(*weights.value());
  if (!loaded) FAIL(loaded.error().message);
  return l;
}

// fp32 logits of every position of `ids`, one prefill through the paged path.
std::vector<std::vector<float>> all_logits(Loaded& l, const std::vector<int32_t>& ids) {
  const ModelShape& s = l.model->shape();
  const int32_t T = int32_t(ids.size());
  const int64_t blocks = (T + kBlockSize - 1) / kBlockSize;
  std::vector<LayerKVCache> kv;
  for (int64_t i = 0; i < s.num_layers; ++i)
    kv.push_back({Tensor::zeros({blocks, kBlockSize, s.num_kv_heads, s.head_dim}, DType::kF32),
                  Tensor::zeros({blocks, kBlockSize, s.num_kv_heads, s.head_dim}, DType::kF32)});
  std::vector<int32_t> table(static_cast<size_t>(blocks)), positions(static_cast<size_t>(T)), rows(static_cast<size_t>(T));
  std::vector<int64_t> slots(static_cast<size_t>(T));
  for (int64_t b = 0; b < blocks; ++b) table[size_t(b)] = int32_t(blocks - 1 - b);  // not the identity
  for (int32_t t = 0; t < T; ++t) {
    positions[size_t(t)] = rows[size_t(t)] = t;
    slots[size_t(t)] = int64_t(table[size_t(t / kBlockSize)]) * kBlockSize + t % kBlockSize;
  }
  std::vector<int32_t> qsl{0, T}, seq_lens{T};
  std::vector<int32_t> input = ids;
  ForwardBatch batch;
  batch.input_ids = Tensor::from_blob(input.data(), {T}, DType::kI32);
  batch.positions = Tensor::from_blob(positions.data(), {T}, DType::kI32);
  batch.slot_mapping = Tensor::from_blob(slots.data(), {T}, DType::kI64);
  batch.block_tables = Tensor::from_blob(table.data(), {1, blocks}, DType::kI32);
  batch.query_start_loc = Tensor::from_blob(qsl.data(), {2}, DType::kI32);
  batch.seq_lens = Tensor::from_blob(seq_lens.data(), {1}, DType::kI32);
  batch.num_tokens = T;
  batch.num_seqs = 1;
  batch.max_seq_len = T;
  Tensor hidden = l.model->forward(batch, kv);
  Tensor logits = l.model->compute_logits(hidden, Tensor::from_blob(rows.data(), {T}, DType::kI32));
  REQUIRE(logits.size(0) == T);
  const int64_t V = logits.size(1);
  std::vector<std::vector<float>> out(static_cast<size_t>(T));
  for (int32_t t = 0; t < T; ++t) {
    const float* row = logits.data<float>() + int64_t(t) * logits.stride(0);
    out[size_t(t)].assign(row, row + V);
  }
  return out;
}

double nll_of(const std::vector<float>& logits, int32_t target) {
  double max = logits[0];
  for (float v : logits) max = std::max(max, double(v));
  double sum = 0;
  for (float v : logits) sum += std::exp(double(v) - max);
  return max + std::log(sum) - double(logits[size_t(target)]);
}

}  // namespace

TEST_CASE("the demo tokenizer encodes and decodes as HF tokenizers did", "[demo]") {
  auto tok = Tokenizer::from_file(demo_dir() + "/tokenizer.json");
  if (!tok) FAIL(tok.error().message);
  const auto& t = **tok;
  for (const auto& c : golden()["tokenizer_cases"]) {
    const std::string text = c["text"];
    INFO("text: " << text.substr(0, 80));
    CHECK(t.encode(text) == c["ids"].get<std::vector<int32_t>>());
    CHECK(t.decode(c["ids"].get<std::vector<int32_t>>()) == c["decoded"].get<std::string>());
  }
  for (const auto& c : golden()["cases"]) CHECK(t.encode(c["prompt_text"].get<std::string>()) == c["prompt"].get<std::vector<int32_t>>());
  REQUIRE(t.eos_token_id().has_value());
  CHECK(*t.eos_token_id() == *t.token_to_id("<|endoftext|>"));
  REQUIRE(t.chat_template() != nullptr);
  CHECK(t.chat_template()->family() == ChatFamily::kChatML);
  auto rendered = t.apply_chat_template({{"user", "Hi", std::nullopt}});
  REQUIRE(rendered.ok());
  CHECK(*rendered == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  // The model's config agrees with the tokenizer on the end of text.
  auto config = load_hf_config(demo_dir());
  REQUIRE(config.ok());
  REQUIRE(!config->eos_token_ids.empty());
  CHECK(config->eos_token_ids[0] == *t.eos_token_id());
  CHECK(config->vocab_size >= t.vocab_size());
}

TEST_CASE("the demo model's held-out perplexity is torch's within 1%", "[demo]") {
  const json& p = golden()["perplexity"];
  Loaded l = load_model();
  double total = 0;
  int64_t count = 0;
  size_t i = 0;
  for (const auto& s : p["sequences"]) {
    auto ids = s.get<std::vector<int32_t>>();
    auto logits = all_logits(l, ids);
    double seq_nll = 0;
    for (size_t t = 0; t + 1 < ids.size(); ++t) seq_nll += nll_of(logits[t], ids[t + 1]);
    const double torch_mean = p["per_sequence_mean_nll"][i++].get<double>();
    INFO("sequence " << i - 1 << ": mean NLL " << seq_nll / double(ids.size() - 1) << ", torch " << torch_mean);
    CHECK(std::fabs(seq_nll / double(ids.size() - 1) - torch_mean) < 0.01);
    total += seq_nll;
    count += int64_t(ids.size()) - 1;
  }
  REQUIRE(count == p["num_predicted_tokens"].get<int64_t>());
  const double ppl = std::exp(total / double(count));
  const double torch_ppl = p["perplexity"].get<double>();
  WARN("demo held-out perplexity: Vela " << ppl << ", torch " << torch_ppl << " (" << count << " tokens)");
  CHECK(std::fabs(ppl / torch_ppl - 1.0) < 0.01);
}

TEST_CASE("the demo model's teacher-forced logits are torch's", "[demo]") {
  Loaded l = load_model();
  float worst = 0;
  for (const auto& gc : greedy_cases()) {
    std::vector<int32_t> ids = gc.prompt;
    ids.insert(ids.end(), gc.generated.begin(), gc.generated.end() - 1);
    auto logits = all_logits(l, ids);
    for (size_t i = 0; i < gc.steps.size(); ++i) {
      const auto& row = logits[gc.prompt.size() - 1 + i];
      const auto& st = gc.steps[i];
      for (size_t j = 0; j < st.top_ids.size(); ++j) {
        const float diff = std::fabs(row[size_t(st.top_ids[j])] - st.top_logits[j]);
        worst = std::max(worst, diff);
        CHECK(diff <= 2e-2f);
      }
    }
  }
  WARN("demo: largest |logit - torch| over the top-8 of every step: " << worst);
}

TEST_CASE("greedy generation on the demo model reproduces torch's continuations", "[demo]") {
  auto cases = greedy_cases();
  REQUIRE(!cases.empty());
  auto runner = make_model_runner(nullptr, ModelRunnerOptions{64ull << 20});
  LoadModel req;
  req.model_path = demo_dir();
  req.block_size_tokens = 16;
  req.max_num_batched_tokens = 2048;
  req.max_num_seqs = 64;
  req.seed = 1234;
  auto profile = runner->load(req);
  if (!profile) FAIL(profile.error().message);
  REQUIRE(runner->init_kv_cache(InitKVCache{256}).ok());
  testing::MiniScheduler sched({});
  for (size_t i = 0; i < cases.size(); ++i)
    sched.add("r" + std::to_string(i), cases[i].prompt, testing::greedy(), int32_t(cases[i].generated.size()));
  sched.run(*runner);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& out = sched.request("r" + std::to_string(i)).outputs;
    const size_t n = cases[i].num_reliable_tokens();
    INFO("case " << i << " (" << golden()["cases"][i]["prompt_text"].get<std::string>() << "): " << n
                 << " tokens before the first margin < 1e-2");
    REQUIRE(out.size() == cases[i].generated.size());
    CHECK(std::vector<int32_t>(out.begin(), out.begin() + ptrdiff_t(n)) ==
          std::vector<int32_t>(cases[i].generated.begin(), cases[i].generated.begin() + ptrdiff_t(n)));
  }
}

int main(int argc, char** argv) {
  if (demo_dir().empty()) {
    std::cout << "test_demo_model: SKIPPED: no models/demo/config.json (the demo model is made by "
                 "scripts/train_demo/train.py on the GPU machine; VELA_DEMO_MODEL=DIR names another)\n";
    return 77;
  }
  return Catch::Session().run(argc, argv);
}

// The CUDA backend end to end on the reference models against HF transformers' fp32
// goldens, in bf16 (the default: bf16 weights as stored, bf16 activations and KV, fp32
// residual and logits) and in fp32 (model.dtype float32: the bf16 weights widened on
// the GPU, fp32 activations, KV cache and true-fp32 GEMMs, as the goldens compute):
//  - teacher-forced logits of every golden case within 0.15, and the argmax right
//    wherever the golden top-1/top-2 margin is >= 0.1;
//  - the in-process engine on cuda:0 (real scheduler, paged KV on the GPU) gives the
//    golden greedy tokens under whole prompts, chunked prefill mixed with decodes,
//    prefix-cache hits and preemption.
// Tolerance: the goldens are fp32 math on the same bf16 weights; a bf16 engine
// rounds every activation to bf16 (relative 2^-9) between ops, and on these tiny
// random models (hidden 32..64, logits up to |9|) that moves logits by up to ~0.1.
// Measured on an H200 (2026-12-01, scripts/gpu/compare_hf.py, same goldens): HF
// transformers itself in bf16 lands 0.105 (qwen3), 0.152 (llama3), 0.227 (qwen2)
// from the fp32 goldens; Vela's CUDA path 0.065, 0.124, 0.106. The bound, 0.15, is
// that bf16 floor: a real bug (a wrong head, mask, rotation or norm) moves logits by
// O(1). Greedy tokens are compared before the first golden step whose top-1/top-2
// margin is < 0.1; the teacher-forced argmax is checked at every step with a margin
// of at least 0.1 (all of them matched in that run).
// fp32: the goldens' own arithmetic on the same weights, so only summation order,
// libm vs CUDA exp / rsqrt and cuBLAS's blocking differ (~1e-4 expected on these
// logits); the bound is the 5e-2 and the measured error is printed. Greedy
// tokens are compared up to the first golden step with a margin under 1e-2 (the CPU
// engine's rule, whose error is ~1e-5), argmaxes from that margin on.
#include <catch2/catch.hpp>
#include <cuda_runtime_api.h>

#include <cmath>
#include <map>

#include "common/paths.h"

#include "model/device.h"
#include "model/hf_config.h"
#include "model/models/causal_lm.h"
#include "model/models/registry.h"
#include "model/weights.h"
#include "tests/llm/engine_scenarios.h"
#include "tests/model/golden.h"

using namespace vela;

namespace {

constexpr int32_t kBlockSize = 16;
constexpr float kLogitTolerance = 0.15f;
constexpr float kMinMargin = 0.1f;
constexpr float kF32LogitTolerance = 5e-2f;  // issue 12's bound for the fp32 path
constexpr float kF32MinMargin = 1e-2f;

Tensor upload(const DeviceContext& ctx, void* data, std::initializer_list<int64_t> shape, DType dtype) {
  auto t = to_device(Tensor::from_blob(data, shape, dtype), dtype, ctx);
  REQUIRE(t.ok());
  return t.value();
}

// One reference model on cuda:0 with a paged KV cache of num_blocks blocks.
struct OpenModel {
  std::unique_ptr<DeviceRuntime> runtime;
  HFConfig config;
  std::unique_ptr<CausalLM> model;
  std::vector<LayerKVCache> kv;
  const DeviceContext& ctx() const { return runtime->context(); }
};

OpenModel open_model(const std::string& name, const std::string& dtype, int64_t num_blocks) {
  OpenModel m;
  auto runtime = DeviceRuntime::open(Device{DeviceType::kCUDA, 0}, dtype);
  if (!runtime) FAIL(runtime.error().message);
  m.runtime = std::move(*runtime);
  const DeviceContext& ctx = m.runtime->context();
  REQUIRE(ctx.dtype == (dtype == "float32" ? DType::kF32 : DType::kBF16));
  auto config = load_hf_config(testing::model_dir(name));
  REQUIRE(config.ok());
  m.config = *config;
  auto model = create_model(m.config, ParallelInfo{}, nullptr, ctx);
  if (!model) FAIL(model.error().message);
  m.model = std::move(*model);
  auto weights = open_safetensors_weights(testing::model_dir(name), ctx);
  REQUIRE(weights.ok());
  auto loaded = m.model->load_weights(**weights);
  if (!loaded) FAIL(loaded.error().message);
  const ModelShape& s = m.model->shape();
  for (int64_t i = 0; i < s.num_layers; ++i)
    m.kv.push_back({Tensor::zeros({num_blocks, kBlockSize, s.num_kv_heads, s.head_dim}, ctx.dtype, ctx.device),
                    Tensor::zeros({num_blocks, kBlockSize, s.num_kv_heads, s.head_dim}, ctx.dtype, ctx.device)});
  return m;
}

// Compares one step's logits row with a golden step; returns whether the argmax was checked.
bool check_step(const float* row, int64_t vocab, const testing::GoldenStep& st, float tolerance, float min_margin,
                float& worst) {
  for (size_t j = 0; j < st.top_ids.size(); ++j) {
    float diff = std::fabs(row[st.top_ids[j]] - st.top_logits[j]);
    worst = std::max(worst, diff);
    CHECK(diff <= tolerance);
  }
  CHECK(std::fabs(row[st.token] - st.logit) <= tolerance);
  if (st.margin < min_margin) return false;
  int64_t best = 0;
  for (int64_t v = 1; v < vocab; ++v)
    if (row[v] > row[best]) best = v;
  CHECK(best == st.token);
  return true;
}

// dtype: model.dtype ("auto" = bf16, or "float32"); tolerance and min_margin as above.
void check_teacher_forced(const std::string& name, const std::string& dtype = "auto",
                          float tolerance = kLogitTolerance, float min_margin = kMinMargin) {
  const int64_t num_blocks = 64;
  OpenModel om = open_model(name, dtype, num_blocks);
  const DeviceContext& ctx = om.ctx();
  auto& runtime = om.runtime;
  auto& model = om.model;
  auto& kv = om.kv;
  const HFConfig* config = &om.config;
  auto cases = testing::load_golden(name);
  REQUIRE(!cases.empty());
  float worst = 0.0f;
  size_t argmax_checked = 0;
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const auto& gc = cases[ci];
    std::vector<int32_t> ids = gc.prompt;
    ids.insert(ids.end(), gc.generated.begin(), gc.generated.end() - 1);
    const int32_t T = int32_t(ids.size());
    const int64_t blocks_needed = (T + kBlockSize - 1) / kBlockSize;
    REQUIRE(blocks_needed <= num_blocks);
    std::vector<int32_t> table(static_cast<size_t>(blocks_needed));  // from the end: not the identity
    for (int64_t b = 0; b < blocks_needed; ++b) table[size_t(b)] = int32_t(num_blocks - 1 - b);
    std::vector<int32_t> positions(static_cast<size_t>(T));
    std::vector<int64_t> slots(static_cast<size_t>(T));
    for (int32_t t = 0; t < T; ++t) {
      positions[size_t(t)] = t;
      slots[size_t(t)] = int64_t(table[size_t(t / kBlockSize)]) * kBlockSize + t % kBlockSize;
    }
    std::vector<int32_t> qsl{0, T}, seq_lens{T};
    ForwardBatch batch;
    batch.input_ids = upload(ctx, ids.data(), {T}, DType::kI32);
    batch.positions = upload(ctx, positions.data(), {T}, DType::kI32);
    batch.slot_mapping = upload(ctx, slots.data(), {T}, DType::kI64);
    batch.block_tables = upload(ctx, table.data(), {1, blocks_needed}, DType::kI32);
    batch.query_start_loc = upload(ctx, qsl.data(), {2}, DType::kI32);
    batch.seq_lens = upload(ctx, seq_lens.data(), {1}, DType::kI32);
    batch.num_tokens = T;
    batch.num_seqs = 1;
    batch.max_seq_len = T;
    batch.max_query_len = T;
    Tensor hidden = model->forward(batch, kv);
    std::vector<int32_t> rows;
    for (size_t i = 0; i < gc.steps.size(); ++i) rows.push_back(int32_t(gc.prompt.size() - 1 + i));
    Tensor rows_dev = upload(ctx, rows.data(), {int64_t(rows.size())}, DType::kI32);
    auto logits = to_host_f32(model->compute_logits(hidden, rows_dev), ctx);
    if (!logits) FAIL(logits.error().message);
    auto synced = runtime->synchronize();
    if (!synced) FAIL(synced.error().message);
    REQUIRE(logits->size(1) == config->vocab_size);
    for (size_t i = 0; i < gc.steps.size(); ++i) {
      const float* row = logits->data<float>() + int64_t(i) * logits->stride(0);
      INFO(name << " case " << ci << " step " << i);
      if (check_step(row, logits->size(1), gc.steps[i], tolerance, min_margin, worst)) ++argmax_checked;
    }
  }
  CHECK(argmax_checked > 0);
  WARN(name << " on " << runtime->description() << ": largest |logit - HF fp32| over the top-8 of every step: "
            << worst << " (bound " << tolerance << "), " << argmax_checked << " argmaxes checked");
}

// Decode steps of one and two sequences, as S1 and small batches run them (and, in
// bf16 at TP 1, through DecoderModel's fused norms: the residual add in the o / down
// GEMV, the RMSNorm in the qkv / gate_up GEMV): every case's prompt but its last
// token as one prefill batch per pair of cases, then one token per sequence per
// step, two cases a step while both run, each step's logits against HF's.
void check_decode_steps(const std::string& name) {
  auto cases = testing::load_golden(name);
  REQUIRE(!cases.empty());
  const int64_t per_case = 16;  // blocks per case: 256 tokens (the longest case is 150 + 24)
  OpenModel om = open_model(name, "auto", per_case * int64_t(cases.size()));
  const DeviceContext& ctx = om.ctx();
  struct Piece {
    size_t c;        // golden case (its KV blocks: the case's own range, from its end)
    int32_t pos;     // position of ids[0]
    std::vector<int32_t> ids;
  };
  // One forward over the pieces; the logits of each piece's last token.
  auto run = [&](const std::vector<Piece>& pieces) {
    std::vector<int32_t> ids, positions, table, qsl{0}, seq_lens;
    std::vector<int64_t> slots;
    int32_t max_seq = 0, max_query = 0;
    for (const Piece& p : pieces) {
      for (int64_t b = 0; b < per_case; ++b) table.push_back(int32_t((int64_t(p.c) + 1) * per_case - 1 - b));
      const int32_t* t = table.data() + table.size() - size_t(per_case);
      for (size_t i = 0; i < p.ids.size(); ++i) {
        const int32_t pos = p.pos + int32_t(i);
        ids.push_back(p.ids[i]);
        positions.push_back(pos);
        slots.push_back(int64_t(t[pos / kBlockSize]) * kBlockSize + pos % kBlockSize);
      }
      qsl.push_back(int32_t(ids.size()));
      seq_lens.push_back(p.pos + int32_t(p.ids.size()));
      max_seq = std::max(max_seq, seq_lens.back());
      max_query = std::max(max_query, int32_t(p.ids.size()));
    }
    const int64_t T = int64_t(ids.size()), S = int64_t(pieces.size());
    ForwardBatch batch;
    batch.input_ids = upload(ctx, ids.data(), {T}, DType::kI32);
    batch.positions = upload(ctx, positions.data(), {T}, DType::kI32);
    batch.slot_mapping = upload(ctx, slots.data(), {T}, DType::kI64);
    batch.block_tables = upload(ctx, table.data(), {S, per_case}, DType::kI32);
    batch.query_start_loc = upload(ctx, qsl.data(), {S + 1}, DType::kI32);
    batch.seq_lens = upload(ctx, seq_lens.data(), {S}, DType::kI32);
    batch.num_tokens = T;
    batch.num_seqs = int32_t(S);
    batch.max_seq_len = max_seq;
    batch.max_query_len = max_query;
    Tensor hidden = om.model->forward(batch, om.kv);
    std::vector<int32_t> rows;
    for (int64_t i = 0; i < S; ++i) rows.push_back(qsl[size_t(i + 1)] - 1);
    Tensor rows_dev = upload(ctx, rows.data(), {S}, DType::kI32);
    auto logits = to_host_f32(om.model->compute_logits(hidden, rows_dev), ctx);
    if (!logits) FAIL(logits.error().message);
    auto synced = om.runtime->synchronize();
    if (!synced) FAIL(synced.error().message);
    return std::move(*logits);
  };
  float worst = 0.0f;
  size_t argmax_checked = 0, two_row_steps = 0;
  for (size_t c0 = 0; c0 < cases.size(); c0 += 2) {
    std::vector<size_t> group{c0};
    if (c0 + 1 < cases.size()) group.push_back(c0 + 1);
    std::vector<Piece> prefill;
    for (size_t c : group)
      if (cases[c].prompt.size() > 1)
        prefill.push_back({c, 0, std::vector<int32_t>(cases[c].prompt.begin(), cases[c].prompt.end() - 1)});
    if (!prefill.empty()) run(prefill);
    for (size_t i = 0;; ++i) {
      std::vector<Piece> step;
      for (size_t c : group) {
        const auto& gc = cases[c];
        if (i >= gc.steps.size()) continue;
        step.push_back({c, int32_t(gc.prompt.size() - 1 + i), {i == 0 ? gc.prompt.back() : gc.generated[i - 1]}});
      }
      if (step.empty()) break;
      if (step.size() == 2) ++two_row_steps;
      Tensor logits = run(step);
      REQUIRE(logits.size(1) == om.config.vocab_size);
      for (size_t r = 0; r < step.size(); ++r) {
        INFO(name << " case " << step[r].c << " decode step " << i << " (" << step.size() << " rows)");
        const float* row = logits.data<float>() + int64_t(r) * logits.stride(0);
        if (check_step(row, logits.size(1), cases[step[r].c].steps[i], kLogitTolerance, kMinMargin, worst))
          ++argmax_checked;
      }
    }
  }
  CHECK(argmax_checked > 0);
  CHECK(two_row_steps > 0);
  WARN(name << " decode steps of 1-2 rows on " << om.runtime->description() << ": largest |logit - HF fp32| "
            << worst << " (bound " << kLogitTolerance << "), " << argmax_checked << " argmaxes checked");
}

}  // namespace

TEST_CASE("CUDA: qwen3-tiny teacher-forced logits match HF transformers", "[gpu][golden]") {
  check_teacher_forced("qwen3-tiny");
}
TEST_CASE("CUDA: llama3-tiny teacher-forced logits match HF transformers", "[gpu][golden]") {
  check_teacher_forced("llama3-tiny");
}
TEST_CASE("CUDA: qwen2-tiny teacher-forced logits match HF transformers", "[gpu][golden]") {
  check_teacher_forced("qwen2-tiny");
}

TEST_CASE("CUDA: decode steps of one and two sequences match HF transformers", "[gpu][golden][decode]") {
  for (const char* model : {"qwen3-tiny", "llama3-tiny", "qwen2-tiny"})
    DYNAMIC_SECTION(model) { check_decode_steps(model); }
}

TEST_CASE("CUDA fp32: qwen3-tiny teacher-forced logits within 5e-2 of HF fp32", "[gpu][golden][fp32]") {
  check_teacher_forced("qwen3-tiny", "float32", kF32LogitTolerance, kF32MinMargin);
}
TEST_CASE("CUDA fp32: llama3-tiny teacher-forced logits within 5e-2 of HF fp32", "[gpu][golden][fp32]") {
  check_teacher_forced("llama3-tiny", "float32", kF32LogitTolerance, kF32MinMargin);
}
TEST_CASE("CUDA fp32: qwen2-tiny teacher-forced logits within 5e-2 of HF fp32", "[gpu][golden][fp32]") {
  check_teacher_forced("qwen2-tiny", "float32", kF32LogitTolerance, kF32MinMargin);
}

TEST_CASE("CUDA: the in-process engine reproduces HF greedy tokens", "[gpu][golden]") {
  const testing::Scenario scenarios[] = {
      {"whole prompts", 2048, 0, true, 1},
      {"chunked prefill (budget 7) mixed with decodes", 7, 0, true, 1},
      {"prefix-cache hits (every case twice)", 64, 0, true, 2},
      {"preemption in a pool of 24 blocks", 48, 24, false, 2},
  };
  // A few GiB of the card: the KV pool of a tiny model stays a sane number of blocks.
  const testing::EngineTarget target{"cuda:0", 0.2, kMinMargin};
  for (const char* model : {"qwen3-tiny", "llama3-tiny", "qwen2-tiny"})
    for (const auto& s : scenarios) {
      DYNAMIC_SECTION(model << ": " << s.name) { testing::run_scenario(model, s, target); }
    }
}

// The same scenarios in fp32 (model.dtype float32): fp32 KV blocks sized by the
// memory profile, the generic attention kernel and unfused prologue, decode steps
// replayed from CUDA graphs (run_scenario checks that graphs were captured and
// replayed), and once more eagerly.
TEST_CASE("CUDA fp32: the in-process engine reproduces HF greedy tokens", "[gpu][golden][fp32]") {
  const testing::Scenario scenarios[] = {
      {"whole prompts", 2048, 0, true, 1},
      {"chunked prefill (budget 7) mixed with decodes", 7, 0, true, 1},
      {"prefix-cache hits (every case twice)", 64, 0, true, 2},
      {"preemption in a pool of 24 blocks", 48, 24, false, 2},
  };
  testing::EngineTarget target{"cuda:0", 0.2, kF32MinMargin};
  target.dtype = "float32";
  testing::EngineTarget eager = target;
  eager.enforce_eager = true;
  for (const char* model : {"qwen3-tiny", "llama3-tiny", "qwen2-tiny"}) {
    for (const auto& s : scenarios) {
      DYNAMIC_SECTION(model << ": " << s.name) { testing::run_scenario(model, s, target); }
    }
    DYNAMIC_SECTION(model << ": chunked prefill, enforce_eager") { testing::run_scenario(model, scenarios[1], eager); }
  }
}

// Tensor parallelism over NCCL: the engine drives two worker processes, rank i on
// cuda:i; the goldens hold as at TP=1 (skipped with one GPU).
TEST_CASE("CUDA: TP=2 over NCCL reproduces HF greedy tokens", "[gpu][golden][tp]") {
  int gpus = 0;
  cudaGetDeviceCount(&gpus);
  if (gpus < 2) {
    WARN("fewer than two GPUs: TP=2 skipped");
    return;
  }
  const testing::Scenario scenarios[] = {
      {"chunked prefill (budget 7) mixed with decodes", 7, 0, true, 1},
      {"preemption in a pool of 24 blocks", 48, 24, false, 2},
  };
  testing::EngineTarget target{"cuda:0", 0.2, kMinMargin};
  target.tensor_parallel_size = 2;
  target.async_scheduling = true;
  testing::EngineTarget f32 = target;  // fp32 all-reduces and all-gathers
  f32.dtype = "float32";
  f32.min_margin = kF32MinMargin;
  for (const char* model : {"qwen3-tiny", "llama3-tiny", "qwen2-tiny"}) {
    for (const auto& s : scenarios) {
      DYNAMIC_SECTION(model << ": " << s.name) { testing::run_scenario(model, s, target); }
    }
    DYNAMIC_SECTION(model << ": fp32, " << scenarios[0].name) { testing::run_scenario(model, scenarios[0], f32); }
  }
}

TEST_CASE("CUDA: bad device and dtype are refused by name; float32 and bfloat16 open", "[gpu]") {
  auto missing = DeviceRuntime::open(Device{DeviceType::kCUDA, 99}, "auto");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("cuda:99") != std::string::npos);
  auto f16 = DeviceRuntime::open(Device{DeviceType::kCUDA, 0}, "float16");
  REQUIRE_FALSE(f16.ok());
  CHECK(f16.error().message.find("model.dtype") != std::string::npos);
  CHECK(f16.error().message.find("float16") != std::string::npos);
  for (const auto& [name, dtype] : {std::pair{"auto", DType::kBF16}, std::pair{"bfloat16", DType::kBF16},
                                    std::pair{"float32", DType::kF32}}) {
    auto rt = DeviceRuntime::open(Device{DeviceType::kCUDA, 0}, name);
    if (!rt) FAIL(rt.error().message);
    CHECK((*rt)->context().dtype == dtype);
  }
  // Through the engine: refused at creation, naming the key and the value.
  Config config;
  config.model.path = testing::model_dir("qwen3-tiny");
  config.model.dtype = "float16";
  config.parallel.devices = {"cuda:0"};
  auto resolved = resolve_model_paths(config);
  REQUIRE(resolved.ok());
  auto engine = LLMEngine::create(*resolved);
  REQUIRE_FALSE(engine.ok());
  CHECK(engine.error().message.find("model.dtype 'float16'") != std::string::npos);
}

namespace {

// Requests of a standard workload's shape through the in-process engine on cuda:0
// with dummy weights of a real model's shape and a KV pool small enough to force
// preemption. Every request must finish with exactly its tokens, and every sampled
// token's logprob (asked for, top 1) must be finite: a NaN or Inf anywhere in the
// forward pass reaches the logits and so the logprobs.
void run_dummy_shape(const std::string& shape, int32_t num_requests, int32_t prompt_len, int32_t output_len,
                     int32_t num_blocks, const std::string& dtype = "auto") {
  Config config;
  config.model.path = find_project_file("perf/models/" + shape);
  REQUIRE(!config.model.path.empty());
  config.model.load_format = "dummy";
  config.model.dtype = dtype;
  config.model.max_model_len = 4096;
  config.cache.num_gpu_blocks = num_blocks;
  config.parallel.devices = {"cuda:0"};
  auto resolved = resolve_model_paths(config);
  REQUIRE(resolved.ok());
  auto engine = LLMEngine::create(*resolved);
  if (!engine) FAIL(engine.error().message);
  LLMEngine& e = **engine;
  for (int32_t i = 0; i < num_requests; ++i) {
    EngineCoreRequest r;
    r.request_id = shape + "-" + std::to_string(i);
    for (int32_t t = 0; t < prompt_len + i % 7; ++t) r.prompt_token_ids.push_back((i * 7919 + t * 104729) % 10000);
    r.sampling_params.temperature = i % 2 == 0 ? 0.0f : 0.8f;
    r.sampling_params.seed = uint64_t(i);
    r.sampling_params.max_tokens = output_len;
    r.sampling_params.ignore_eos = true;
    r.sampling_params.logprobs = 1;
    REQUIRE_FALSE(e.add_request(r).has_value());
  }
  std::map<std::string, int32_t> produced;
  size_t finished = 0, non_finite = 0, logprobs_seen = 0;
  for (int steps = 0; e.has_unfinished_requests(); ++steps) {
    REQUIRE(steps < 20000);
    auto outs = e.step();
    if (!outs) FAIL(outs.error().message);
    for (const auto& o : (*outs)->outputs) {
      produced[o.request_id] += int32_t(o.new_token_ids.size());
      for (const auto& lp : o.logprobs) {
        ++logprobs_seen;
        if (!std::isfinite(lp.logprob)) ++non_finite;
        for (float v : lp.top_logprobs) if (!std::isfinite(v)) ++non_finite;
      }
      if (o.finish_reason != FinishReason::kNone) {
        ++finished;
        CHECK(o.finish_reason == FinishReason::kLength);
      }
    }
  }
  const auto stats = e.scheduler().stats();
  WARN(shape << " (" << dtype << "): " << num_requests << " requests x " << output_len << " tokens in a pool of " << num_blocks
             << " blocks: " << stats.num_preemptions << " preemptions, " << logprobs_seen << " logprobs, "
             << non_finite << " not finite");
  CHECK(finished == size_t(num_requests));
  for (const auto& [id, n] : produced) CHECK(n == output_len);
  CHECK(logprobs_seen == size_t(num_requests) * size_t(output_len));
  CHECK(non_finite == 0);
  CHECK(stats.num_preemptions > 0);
  CHECK(stats.num_free_blocks == stats.num_usable_blocks);
}

}  // namespace

TEST_CASE("CUDA: Qwen3-0.6B shape, dummy weights: finite logits, forced preemption", "[gpu][shapes]") {
  // W1-like: 64 requests of ~300 + 200 tokens; 24 blocks per request would be needed,
  // the pool holds a quarter of that.
  run_dummy_shape("qwen3-0.6b", 64, 300, 200, 400);
}

TEST_CASE("CUDA: Llama-3.1-8B shape, dummy weights: finite logits, forced preemption", "[gpu][shapes]") {
  // W2-like: 32 requests of 1024 + 64 tokens in a pool of a quarter of what they need.
  run_dummy_shape("llama-3.1-8b", 32, 1024, 64, 600);
}

TEST_CASE("CUDA fp32: Qwen3-0.6B shape, dummy weights: finite logits, forced preemption", "[gpu][shapes][fp32]") {
  // fp32 dummy weights generated on the GPU, fp32 KV blocks (twice the bytes of bf16's).
  run_dummy_shape("qwen3-0.6b", 32, 300, 100, 200, "float32");
}

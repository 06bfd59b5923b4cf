// Decode steps replayed from CUDA graphs (workers/decode_graphs.h) against the same
// steps launched op by op.
//
// Two model runners on cuda:0 load the same model: one eager
// (LoadModel.cuda_graph_max_batch = 0), one that captures decode graphs at batch
// 1, 2, 4, 8, 16, 24, 32 when its KV cache is made. Both receive every
// SchedulerOutput; the eager runner's tokens feed the next step of both (teacher
// forcing, so one near-tie cannot make the two runs drift apart). Per sampled row:
//  - the top-5 logprobs (log-softmax of the logits) of the graph runner are within
//    kLogprobTolerance of the eager runner's, on the same token ids;
//  - the greedy tokens are equal wherever the eager top-1/top-2 margin exceeds
//    2 x kLogprobTolerance.
// Batches of 1, 3, 5 and 17 requests (3, 5 and 17 replay the graphs of 4, 8 and 24:
// the padded rows must not disturb the real ones nor write the KV cache), 12 decode
// steps with growing context, one prompt longer than 512 tokens (its keys spread
// over several split-KV blocks inside the graph), and a request arriving after
// three steps (its prefill is mixed with decodes, so that step runs eagerly and the
// graphs take over again after). The runner's stats must show graph replays.
//
// Why a tolerance and not bit equality: a padded graph runs every GEMM at the padded
// row count, and cuBLASLt may pick another kernel (another summation order) for it;
// and the graph's attention splits each sequence's keys by its own length where the
// eager launch splits by the longest. Both round bf16 activations differently in the
// last bit, which moves these logprobs by ~1e-2 at most. A wrong row, position, slot
// or block table moves them by O(1). Batch 1 (no padding, same GEMM shapes) with
// contexts under 256 keys runs the very same arithmetic, so the test reports how
// many rows were bit-equal (a WARN line).
//
// Models: the reference models (qwen3-tiny takes the tuned decode kernel, head_dim
// 64 GQA 2:1; llama3-tiny and qwen2-tiny the generic one) with their real weights,
// and the Qwen3-0.6B shape with dummy weights (head_dim 128, 28 layers, the GEMMs of
// a real model); qwen3-tiny and the 0.6B shape again in fp32 (model.dtype float32:
// fp32 GEMMs, the generic attention kernel and the unfused prologue inside the graphs).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "common/paths.h"
#include "model/device.h"
#include "tests/llm/engine_scenarios.h"
#include "tests/model/golden.h"
#include "tests/workers/mini_scheduler.h"
#include "workers/decode_graphs.h"
#include "workers/model_runner.h"
#include "workers/persistent_batch.h"

using namespace vela;

namespace {

constexpr int32_t kBlockSize = 16;
constexpr int32_t kGraphMaxBatch = 32;
constexpr int32_t kNumTop = 5;
constexpr float kLogprobTolerance = 0.05f;
constexpr int32_t kDecodeSteps = 12;

LoadModel load_request(const std::string& path, const std::string& format, int32_t graph_max_batch,
                       const std::string& dtype, bool prefix_caching) {
  LoadModel req;
  req.model_path = path;
  req.load_format = format;
  req.dtype = dtype;
  req.max_model_len = 4096;
  req.max_num_batched_tokens = 4096;
  req.max_num_seqs = kGraphMaxBatch;
  req.block_size_tokens = kBlockSize;
  req.memory_utilization = 0.3;
  req.seed = 1234;
  req.cuda_graph_max_batch = graph_max_batch;
  req.prefix_caching = prefix_caching;
  return req;
}

std::unique_ptr<Runner> make_runner(const std::string& path, const std::string& format, int32_t graph_max_batch,
                                    int32_t num_blocks, const std::string& dtype, bool prefix_caching = false) {
  const std::string what =
      path + " on cuda:0 (cuda_graph_max_batch " + std::to_string(graph_max_batch) + ", dtype " + dtype + ")";
  auto runner = make_model_runner(nullptr, ModelRunnerOptions{0, "cuda:0"});
  auto profile = runner->load(load_request(path, format, graph_max_batch, dtype, prefix_caching));
  if (!profile) FAIL("loading " << what << ": " << profile.error().message);
  // The graphs are captured here, once the KV cache exists.
  auto init = runner->init_kv_cache(InitKVCache{num_blocks});
  if (!init) FAIL("init_kv_cache (decode graph capture) of " << what << ": " << init.error().message);
  auto stats = model_runner_stats(*runner);
  REQUIRE(stats.has_value());
  if (graph_max_batch > 0) {
    INFO(what);
    const auto sizes = decode_graph_sizes(graph_max_batch);
    // With prefix caching, the cascade set: the sizes from kCascadeMinSeqs up again.
    const auto cascade = prefix_caching ? std::count_if(sizes.begin(), sizes.end(), [](int32_t b) {
      return b >= StepInputs::kCascadeMinSeqs;
    })
                                        : 0;
    CHECK(stats->cascade_graphs_captured == int32_t(cascade));
    CHECK(stats->graphs_captured == int32_t(sizes.size() + cascade));
  } else {
    CHECK(stats->graphs_captured == 0);
  }
  return runner;
}

struct Comparison {
  size_t rows = 0, bit_equal_rows = 0, tokens_compared = 0, near_ties = 0;
  float worst = 0.0f;
};

// The logprobs of sampled row j of an output, as (top ids, top logprobs, sampled).
struct Row {
  const int32_t* ids;
  const float* logprobs;
  float sampled;
};
Row row_of(const ModelRunnerOutput& out, int32_t j) {
  const auto& lp = out.logprobs;
  return {lp.top_ids.data() + size_t(j) * size_t(lp.num_top), lp.top_logprobs.data() + size_t(j) * size_t(lp.num_top),
          lp.sampled_logprobs[size_t(j)]};
}

void compare_step(const SchedulerOutput& step, const ModelRunnerOutput& eager, const ModelRunnerOutput& graphs,
                  const std::string& where, Comparison& c) {
  INFO(where << ", step " << step.step_id);
  REQUIRE(graphs.request_ids == eager.request_ids);
  REQUIRE(graphs.sampled_token_ids.size() == eager.sampled_token_ids.size());
  REQUIRE(graphs.logprobs.num_top == eager.logprobs.num_top);
  if (!eager.logprobs.empty()) REQUIRE(eager.logprobs.num_top == kNumTop);
  REQUIRE(graphs.logprobs.row_offsets == eager.logprobs.row_offsets);
  REQUIRE(graphs.logprobs.sampled_logprobs.size() == eager.logprobs.sampled_logprobs.size());
  int32_t j = 0;
  for (size_t i = 0; i < eager.request_ids.size(); ++i) {
    INFO("request " << eager.request_ids[i]);
    REQUIRE(graphs.sampled_token_ids[i].size() == eager.sampled_token_ids[i].size());
    if (eager.sampled_token_ids[i].empty()) continue;
    const Row e = row_of(eager, j), g = row_of(graphs, j);
    ++j;
    ++c.rows;
    bool bit_equal = std::memcmp(e.logprobs, g.logprobs, sizeof(float) * kNumTop) == 0 &&
                     std::memcmp(e.ids, g.ids, sizeof(int32_t) * kNumTop) == 0;
    c.bit_equal_rows += bit_equal ? 1 : 0;
    const float margin = e.logprobs[0] - e.logprobs[1];
    if (margin > 2 * kLogprobTolerance) {
      ++c.tokens_compared;
      CHECK(graphs.sampled_token_ids[i][0] == eager.sampled_token_ids[i][0]);
    } else {
      ++c.near_ties;
    }
    // The top-5 sets may differ where two logprobs nearly tie; compare the eager
    // top-5 ids against the graph's logprob of the same id where both have it, and
    // the ranked values always (a swap of two near-equal entries keeps the values).
    for (int32_t k = 0; k < kNumTop; ++k) {
      const float diff = std::fabs(e.logprobs[k] - g.logprobs[k]);
      c.worst = std::max(c.worst, diff);
      INFO("top-" << k + 1 << " logprob: eager " << e.logprobs[k] << " (id " << e.ids[k] << "), graph "
                  << g.logprobs[k] << " (id " << g.ids[k] << ")");
      CHECK(diff <= kLogprobTolerance);
      for (int32_t m = 0; m < kNumTop; ++m)
        if (g.ids[m] == e.ids[k]) CHECK(std::fabs(g.logprobs[m] - e.logprobs[k]) <= kLogprobTolerance);
    }
    if (margin > 2 * kLogprobTolerance) {
      INFO("sampled logprob: eager " << e.sampled << ", graph " << g.sampled);
      CHECK(std::fabs(e.sampled - g.sampled) <= kLogprobTolerance);
    }
  }
}

std::vector<int32_t> prompt_of(int32_t request, int32_t len) {
  std::vector<int32_t> p;
  for (int32_t t = 0; t < len; ++t) p.push_back(1 + (request * 7919 + t * 104729) % 9999);
  return p;
}

SamplingParams greedy_with_logprobs() {
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  greedy.logprobs = kNumTop;
  return greedy;
}

testing::MiniScheduler::Options scheduler_options(int32_t first_block) {
  testing::MiniScheduler::Options opts;
  opts.block_size = kBlockSize;
  opts.first_block = first_block;
  return opts;
}

// Runs sched's requests to the end on both runners, comparing every step (the eager
// tokens drive both); on_step(s) may add requests before step s is scheduled.
template <class OnStep>
void drive_pair(Runner& eager, Runner& graphs, testing::MiniScheduler& sched, const std::string& tag, Comparison& c,
                OnStep on_step) {
  for (int32_t s = 0; s < 200; ++s) {
    on_step(s);
    if (sched.done()) break;
    SchedulerOutput step = sched.schedule();
    auto e = eager.execute(step);
    if (!e) FAIL(tag << " step " << step.step_id << ", eager runner: " << e.error().message);
    auto g = graphs.execute(step);
    if (!g) FAIL(tag << " step " << step.step_id << ", graph runner: " << g.error().message);
    compare_step(step, *e, *g, tag, c);
    sched.update(step, *e);
  }
  REQUIRE(sched.done());
}

// One batch size on a pair of runners: `batch` requests decoding kDecodeSteps
// tokens, the first of them with a long prompt when `long_prompt`, and one more
// request arriving after three steps.
void run_batch(Runner& eager, Runner& graphs, const std::string& model, int32_t batch, bool long_prompt,
               int32_t first_block, Comparison& c) {
  testing::MiniScheduler sched(scheduler_options(first_block));
  const SamplingParams greedy = greedy_with_logprobs();
  const std::string tag = model + "/b" + std::to_string(batch) + "/";
  for (int32_t i = 0; i < batch; ++i) {
    const int32_t len = (long_prompt && i == 0) ? 600 : 3 + (i * 37) % 90;
    sched.add(tag + std::to_string(i), prompt_of(i, len), greedy, kDecodeSteps);
  }
  const auto before = *model_runner_stats(graphs);
  drive_pair(eager, graphs, sched, tag, c, [&](int32_t s) {
    if (s == 3) sched.add(tag + "late", prompt_of(99, 21), greedy, 6);
  });
  const auto after = *model_runner_stats(graphs);
  INFO(tag << ": the graph runner replayed " << after.graph_steps - before.graph_steps << " steps and ran "
           << after.eager_steps - before.eager_steps << " eagerly");
  // Every decode-only step (all but the first prefill and the late request's) is a replay.
  CHECK(after.graph_steps - before.graph_steps >= uint64_t(kDecodeSteps - 3));
  CHECK(after.eager_steps - before.eager_steps >= 2);
}

void compare_model(const std::string& path, const std::string& format, const std::string& name, int32_t num_blocks,
                   const std::string& dtype = "auto") {
  auto eager = make_runner(path, format, 0, num_blocks, dtype);
  auto graphs = make_runner(path, format, kGraphMaxBatch, num_blocks, dtype);
  const auto stats = *model_runner_stats(*graphs);
  WARN(name << ": " << stats.graphs_captured << " decode graphs captured in " << stats.capture_seconds << " s, "
            << double(stats.graph_bytes) / double(1 << 20) << " MiB");
  int32_t first_block = 1;  // block 0 is the null block the padded rows read
  for (int32_t batch : {1, 3, 5, 17}) {
    Comparison c;
    run_batch(*eager, *graphs, name, batch, batch != 1, first_block, c);
    WARN(name << " batch " << batch << ": " << c.rows << " sampled rows, " << c.bit_equal_rows
              << " bit-equal; largest |logprob graph - eager| " << c.worst << " (bound " << kLogprobTolerance
              << "); greedy tokens compared " << c.tokens_compared << ", near ties skipped " << c.near_ties);
    CHECK(c.rows > 0);
    // Dummy weights give flat logits where many rows nearly tie; the references do not.
    if (format != "dummy") CHECK(c.tokens_compared > 0);
    first_block += 600;  // each batch size its own blocks
  }
}

// Decode steps over a shared cached prefix (cascade attention): a source request's
// prompt of kPrefixTokens + 10 tokens is computed first, then `followers` requests
// whose prompts start with its first kPrefixTokens (a prefix-cache hit on its
// blocks) join; once their prefill is done every step is a decode of followers + 1
// sequences that all share 20 blocks, which the graph runner replays from its
// cascade graphs (the eager runner takes the same cascade op by op). `early`
// followers stop a token sooner, so the batch shrinks inside its bucket.
//
// The batch sizes keep the eager step and its padded graph on the same decode
// kernel: from 16 sequences (kMmaDecodeMinSeqs) a GQA-2 batch takes the tensor-core
// kernel, and a graph of 16 holding 10 sequences would take it where the eager step
// takes the CUDA-core one. Both are exact to bf16, but the tensor-core kernel rounds
// P to bf16 before P V, which on qwen3-tiny moves a logprob by up to ~0.05 (measured
// on the H200: 0.052 in one row of a 10-in-16 run), the test's whole tolerance;
// an indexing error moves them by O(1).
constexpr int32_t kPrefixTokens = 320;  // 20 blocks, >= StepInputs::kCascadeMinPrefix
void run_shared_prefix(Runner& eager, Runner& graphs, const std::string& model, int32_t followers, int32_t early,
                       int32_t first_block, Comparison& c) {
  testing::MiniScheduler sched(scheduler_options(first_block));
  const SamplingParams greedy = greedy_with_logprobs();
  const std::string tag = model + "/shared" + std::to_string(followers) + "/";
  const std::vector<int32_t> source = prompt_of(1000 + followers, kPrefixTokens + 10);
  sched.add(tag + "source", source, greedy, kDecodeSteps + 8);
  const auto before = *model_runner_stats(graphs);
  drive_pair(eager, graphs, sched, tag, c, [&](int32_t s) {
    if (s != 1) return;
    for (int32_t i = 0; i < followers; ++i) {
      std::vector<int32_t> prompt(source.begin(), source.begin() + kPrefixTokens);
      const std::vector<int32_t> own = prompt_of(2000 + i, 5 + (i * 13) % 40);
      prompt.insert(prompt.end(), own.begin(), own.end());
      prompt[kPrefixTokens] = source[kPrefixTokens] + 1;  // the prompts part right after the prefix
      sched.add(tag + std::to_string(i), prompt, greedy, kDecodeSteps - (i < early ? 1 : 0), tag + "source");
    }
  });
  const auto after = *model_runner_stats(graphs);
  const uint64_t cascade_steps = after.cascade_graph_steps - before.cascade_graph_steps;
  INFO(tag << ": the graph runner replayed " << after.graph_steps - before.graph_steps << " steps ("
           << cascade_steps << " from cascade graphs) and ran " << after.eager_steps - before.eager_steps
           << " eagerly");
  // Every decode step of all followers + the source shares the prefix.
  CHECK(cascade_steps >= uint64_t(kDecodeSteps - 4));
}

}  // namespace

TEST_CASE("CUDA graphs: decode steps over a shared prefix replay cascade graphs that match eager cascade",
          "[gpu][graphs][cascade]") {
  struct Case {
    std::string name, path, format;
  };
  const std::string dummy = find_project_file("perf/models/qwen3-0.6b");
  REQUIRE(!dummy.empty());
  for (const Case& m : {Case{"qwen3-tiny", testing::model_dir("qwen3-tiny"), "auto"},
                        Case{"qwen3-0.6b", dummy, "dummy"}}) {
    auto eager = make_runner(m.path, m.format, 0, 4096, "auto", true);
    auto graphs = make_runner(m.path, m.format, kGraphMaxBatch, 4096, "auto", true);
    int32_t first_block = 1;
    // 8 sequences in the graph of 8 (CUDA-core decode kernel in both); 23 shrinking
    // to 18 in the graph of 24 (tensor cores in both).
    for (auto [followers, early] : {std::pair{7, 0}, std::pair{22, 5}}) {
      Comparison c;
      run_shared_prefix(*eager, *graphs, m.name, followers, early, first_block, c);
      WARN(m.name << " shared prefix, " << followers + 1 << " sequences: " << c.rows << " sampled rows, "
                  << c.bit_equal_rows << " bit-equal; largest |logprob graph - eager| " << c.worst << " (bound "
                  << kLogprobTolerance << "); greedy tokens compared " << c.tokens_compared << ", near ties skipped "
                  << c.near_ties);
      CHECK(c.rows > 0);
      if (m.format != "dummy") CHECK(c.tokens_compared > 0);
      first_block += 600;
    }
  }
}

TEST_CASE("CUDA graphs: decode replay matches eager on qwen3-tiny (tuned decode kernel)", "[gpu][graphs]") {
  compare_model(testing::model_dir("qwen3-tiny"), "auto", "qwen3-tiny", 4096);
}
TEST_CASE("CUDA graphs: decode replay matches eager on llama3-tiny (generic attention)", "[gpu][graphs]") {
  compare_model(testing::model_dir("llama3-tiny"), "auto", "llama3-tiny", 4096);
}
TEST_CASE("CUDA graphs: decode replay matches eager on qwen2-tiny (q/k/v bias)", "[gpu][graphs]") {
  compare_model(testing::model_dir("qwen2-tiny"), "auto", "qwen2-tiny", 4096);
}
TEST_CASE("CUDA graphs: decode replay matches eager on the Qwen3-0.6B shape (dummy weights)", "[gpu][graphs]") {
  const std::string path = find_project_file("perf/models/qwen3-0.6b");
  REQUIRE(!path.empty());
  compare_model(path, "dummy", "qwen3-0.6b", 4096);
}

TEST_CASE("CUDA graphs fp32: decode replay matches eager on qwen3-tiny", "[gpu][graphs][fp32]") {
  compare_model(testing::model_dir("qwen3-tiny"), "auto", "qwen3-tiny fp32", 4096, "float32");
}
TEST_CASE("CUDA graphs fp32: decode replay matches eager on the Qwen3-0.6B shape (dummy weights)",
          "[gpu][graphs][fp32]") {
  const std::string path = find_project_file("perf/models/qwen3-0.6b");
  REQUIRE(!path.empty());
  compare_model(path, "dummy", "qwen3-0.6b fp32", 4096, "float32");
}

TEST_CASE("CUDA graphs: the in-process engine reproduces HF greedy tokens with graphs and async scheduling",
          "[gpu][graphs][golden]") {
  const testing::Scenario scenarios[] = {
      {"whole prompts", 2048, 0, true, 1},
      {"chunked prefill (budget 7) mixed with decodes", 7, 0, true, 1},
      {"preemption in a pool of 24 blocks", 48, 24, false, 2},
  };
  for (bool eager : {false, true}) {
    testing::EngineTarget target{"cuda:0", 0.2, 0.1f};
    target.async_scheduling = true;
    target.enforce_eager = eager;
    for (const char* model : {"qwen3-tiny", "llama3-tiny"})
      for (const auto& s : scenarios) {
        DYNAMIC_SECTION(model << ": " << s.name << (eager ? ", enforce_eager" : ", decode graphs")) {
          testing::run_scenario(model, s, target);
        }
      }
  }
}

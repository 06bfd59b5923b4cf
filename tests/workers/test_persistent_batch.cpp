// PersistentBatch::prepare's shared prefix: the cascade-attention hint a decode step
// carries when its sequences all start with the same cached blocks.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "workers/persistent_batch.h"

namespace {

using vela::PersistentBatch;
using vela::SchedulerOutput;
using vela::StepInputs;

constexpr int32_t kBlock = 16;

// A step that brings n new requests, each with prompt_len tokens already computed
// but the last (a decode-shaped step: one token each), its first `shared` blocks
// common to all and the rest its own.
SchedulerOutput decode_step(int n, int32_t prompt_len, int32_t shared, int32_t own_from = 1000) {
  SchedulerOutput step;
  const int32_t blocks = (prompt_len + kBlock - 1) / kBlock;
  for (int i = 0; i < n; ++i) {
    vela::NewRequestData r;
    r.request_id = "r" + std::to_string(i);
    r.prompt_token_ids.assign(size_t(prompt_len), 7);
    for (int32_t b = 0; b < blocks; ++b) r.block_ids.push_back(b < shared ? b : own_from + i * blocks + b);
    r.num_computed_tokens = prompt_len - 1;
    step.num_scheduled_tokens.emplace_back(r.request_id, 1);
    step.scheduled_new_reqs.push_back(std::move(r));
  }
  step.total_num_scheduled_tokens = n;
  return step;
}

int32_t shared_len(const SchedulerOutput& step, int32_t* seqs = nullptr) {
  PersistentBatch batch;
  StepInputs in;
  REQUIRE(batch.update(step));
  REQUIRE(batch.prepare(step, kBlock, in));
  if (seqs != nullptr) *seqs = in.shared_prefix_seqs;
  return in.shared_prefix_len;
}

}  // namespace

TEST_CASE("a decode step's prefix shared by every sequence is found, block-aligned", "[persistent_batch]") {
  // 2048 + 100 tokens: 128 shared full blocks, own blocks after.
  CHECK(shared_len(decode_step(16, 2148, 128)) == 2048);
  // Every block shared but each sequence's current one: capped below the current token.
  CHECK(shared_len(decode_step(8, 2049, 129, 0)) == 2048);
}

TEST_CASE("a mixed step's leading decodes over a shared prefix get the hint, the rest do not count",
          "[persistent_batch]") {
  SchedulerOutput mixed = decode_step(16, 2148, 128);
  mixed.scheduled_new_reqs[12].num_computed_tokens = 2000;  // a prefill chunk after 12 decodes
  mixed.num_scheduled_tokens[12].second = 148;
  mixed.total_num_scheduled_tokens += 147;
  mixed.scheduled_new_reqs[14].block_ids[3] = 99999;  // after the run: does not cut it
  int32_t seqs = -1;
  CHECK(shared_len(mixed, &seqs) == 2048);
  CHECK(seqs == 12);
  int32_t all = -1;
  CHECK(shared_len(decode_step(16, 2148, 128), &all) == 2048);
  CHECK(all == 16);  // a pure decode step: every sequence
}

TEST_CASE("no shared prefix hint where cascade attention does not pay or does not apply", "[persistent_batch]") {
  CHECK(shared_len(decode_step(7, 2148, 128)) == 0);    // too few sequences
  CHECK(shared_len(decode_step(16, 2148, 15)) == 0);    // 240 shared tokens: too short
  CHECK(shared_len(decode_step(16, 2148, 0)) == 0);     // nothing shared
  SchedulerOutput mixed = decode_step(16, 2148, 128);   // a prefill chunk in the step
  mixed.scheduled_new_reqs[3].num_computed_tokens = 2000;
  mixed.num_scheduled_tokens[3].second = 148;
  mixed.total_num_scheduled_tokens += 147;
  CHECK(shared_len(mixed) == 0);  // a leading run of 3 decodes: too few
  // One sequence diverging early cuts the common run for all.
  SchedulerOutput diverged = decode_step(16, 2148, 128);
  diverged.scheduled_new_reqs[9].block_ids[20] = 99999;
  CHECK(shared_len(diverged) == 20 * kBlock);  // 320 tokens: still worth it
}

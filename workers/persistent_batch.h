#pragma once
// The worker's view of the running requests, kept across steps and updated only
// by SchedulerOutput diffs (no rank keeps tokens of its own), and the flat
// per-step inputs built from it. Buffers are reused so a step allocates nothing
// once the batch has reached its largest size.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "messages/sampling_params.h"
#include "messages/scheduler_output.h"

namespace vela {

struct RequestState {
  std::string request_id;
  std::vector<int32_t> token_ids;   // prompt, then every output token the scheduler sent
  int32_t num_prompt_tokens = 0;
  std::vector<int32_t> block_ids;   // KV blocks in order: token i lives in block_ids[i / block_size]
  int32_t num_computed_tokens = 0;  // tokens already in the KV cache
  SamplingParams sampling_params;
  uint64_t seed = 0;                // the generator's seed (sampling_params.seed or derived)
  uint64_t blocks_version = 0;      // changes whenever block_ids is replaced (new, resumed)
  int32_t num_output_tokens() const { return int32_t(token_ids.size()) - num_prompt_tokens; }
};

// One step's flat inputs (host memory). Scheduled request i owns token rows
// [query_start_loc[i], query_start_loc[i + 1]).
struct StepInputs {
  std::vector<RequestState*> requests;  // in num_scheduled_tokens order
  std::vector<int32_t> num_scheduled;   // [num_reqs]
  std::vector<int32_t> input_ids;       // [num_tokens]
  std::vector<int32_t> positions;       // [num_tokens]
  std::vector<int64_t> slot_mapping;    // [num_tokens]
  std::vector<int32_t> query_start_loc; // [num_reqs + 1]
  std::vector<int32_t> seq_lens;        // [num_reqs]
  std::vector<int32_t> block_tables;    // [num_reqs, max_blocks_per_seq], padded with 0
  // >= the blocks any scheduled request needs; grows by doubling and is kept, so the
  // rows persist across steps and a decode step writes only new block ids.
  int32_t max_blocks_per_seq = 0;
  int32_t max_seq_len = 0;
  // A pure decode step of at least kCascadeMinSeqs sequences whose first blocks are
  // the same ids in every row (a prefix cache hit they all share), at least
  // kCascadeMinPrefix tokens of it: that prefix's length, so attention reads it once
  // for the batch (cascade attention, ForwardBatch::shared_prefix_len); else 0.
  // A mixed step: the same test over its leading run of one-token sequences (the
  // scheduler puts running decodes first), shared_prefix_seqs long; the rest are
  // attended as before. A pure decode step: shared_prefix_seqs = every sequence.
  int32_t shared_prefix_len = 0;
  int32_t shared_prefix_seqs = 0;
  static constexpr int32_t kCascadeMinSeqs = 8;
  static constexpr int32_t kCascadeMinPrefix = 256;
  // Requests sampled this step (their KV catches up with all their tokens):
  std::vector<int32_t> sampled_request_index;  // index into requests
  std::vector<int32_t> sample_rows;            // the token row whose logits are sampled
  int32_t num_tokens() const { return int32_t(input_ids.size()); }
};

class PersistentBatch {
 public:
  // base_seed seeds requests without their own seed (mixed with the request id).
  explicit PersistentBatch(uint64_t base_seed = 0) : base_seed_(base_seed) {}
  void set_base_seed(uint64_t seed) { base_seed_ = seed; }

  // Applies one step's diffs: frees finished requests, adds new ones, appends
  // tokens and blocks of cached ones. Errors name the request at fault.
  Status update(const SchedulerOutput& step);
  // Builds the step's inputs; validates that every position has a block. `out` is
  // meant to be the same object every step (its block table rows are kept).
  Status prepare(const SchedulerOutput& step, int32_t block_size, StepInputs& out);
  // After the forward pass: the scheduled tokens are now in the KV cache.
  void advance(const StepInputs& inputs);

  const RequestState* find(const std::string& request_id) const;
  size_t size() const { return requests_.size(); }

 private:
  // The request for `id`: first the next hint (steady decoding schedules the same
  // requests in the same order, so a short compare usually saves the hash), else the map.
  RequestState* lookup(const std::string& id, const std::vector<RequestState*>& hints, size_t& cursor);
  void fill_block_tables(StepInputs& out, int32_t blocks_needed);
  static void find_shared_prefix(StepInputs& out, int32_t block_size);

  std::unordered_map<std::string, RequestState> requests_;
  uint64_t base_seed_;
  uint64_t next_blocks_version_ = 1;
  // Pointers into requests_ (node addresses are stable); cleared before any erase.
  std::vector<RequestState*> last_order_;   // the last prepared step's requests, in order
  std::vector<RequestState*> step_new_;     // this step's new requests, in order
  std::vector<RequestState*> step_cached_;  // this step's cached requests, in order
  // What each block-table row holds: whose blocks, which version, how many written.
  struct Row {
    const RequestState* state = nullptr;
    uint64_t version = 0;
    size_t written = 0;
  };
  std::vector<Row> rows_;
  const StepInputs* rows_of_ = nullptr;     // the StepInputs the rows describe
};

}  // namespace vela

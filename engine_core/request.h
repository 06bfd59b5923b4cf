#pragma once
// Request: one sequence's state inside the engine core.
//
// Status machine (set_status() asserts every transition):
//   WAITING -> RUNNING -> PREEMPTED -> RUNNING -> ... -> FINISHED_{STOPPED, LENGTH}
//   any unfinished status -> FINISHED_ABORTED
// Token accounting: token_ids() = prompt then outputs; num_computed_tokens() of them
// have KV in the cache (it is advanced when a step is scheduled, vLLM v1 style, so
// during a step it counts the tokens being computed). A request is sampled in a step
// iff afterwards num_computed_tokens() == num_tokens_with_pending().
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine_core/block_hash.h"
#include "messages/engine_core_output.h"
#include "messages/engine_core_request.h"
#include "messages/sampling_params.h"

namespace vela {

enum class RequestStatus : uint8_t {
  kWaiting,
  kRunning,
  kPreempted,
  kFinishedStopped,
  kFinishedLength,
  kFinishedAborted,
};

const char* request_status_name(RequestStatus status);
bool is_finished(RequestStatus status);
bool is_valid_transition(RequestStatus from, RequestStatus to);
FinishReason finish_reason_of(RequestStatus status);

class Request {
 public:
  // slot: the scheduler's dense index for this request (stable while it lives).
  // arrival_seq: order of arrival at the engine core (FCFS order, tie breaker).
  Request(EngineCoreRequest request, int32_t slot, uint64_t arrival_seq);

  const std::string& request_id() const { return request_id_; }
  int32_t slot() const { return slot_; }
  uint64_t arrival_seq() const { return arrival_seq_; }
  double arrival_time() const { return arrival_time_; }
  int32_t priority() const { return priority_; }
  int32_t eos_token_id() const { return eos_token_id_; }
  const SamplingParams& sampling_params() const { return sampling_params_; }

  RequestStatus status() const { return status_; }
  void set_status(RequestStatus status);

  std::span<const int32_t> token_ids() const { return token_ids_; }
  std::span<const int32_t> prompt_token_ids() const {
    return std::span<const int32_t>(token_ids_).first(static_cast<size_t>(num_prompt_tokens_));
  }
  std::span<const int32_t> output_token_ids() const {
    return std::span<const int32_t>(token_ids_).subspan(static_cast<size_t>(num_prompt_tokens_));
  }
  int32_t num_tokens() const { return static_cast<int32_t>(token_ids_.size()); }
  int32_t num_prompt_tokens() const { return num_prompt_tokens_; }
  int32_t num_output_tokens() const { return num_tokens() - num_prompt_tokens_; }
  void append_output_token(int32_t token_id) { token_ids_.push_back(token_id); }

  int32_t num_computed_tokens() const { return num_computed_tokens_; }
  void set_num_computed_tokens(int32_t n) { num_computed_tokens_ = n; }

  // Chained hashes of the full blocks of token_ids(); update_block_hashes() extends
  // them after tokens are appended.
  std::span<const BlockHash> block_hashes() const { return block_hashes_; }
  void update_block_hashes(int32_t block_size_tokens, uint64_t seed);
  // Extra key mixed into every block hash (LoRA id, cache salt); set before hashing.
  void set_hash_extra(BlockHashExtra extra) { hash_extra_ = extra; }

  // --- scheduling bookkeeping (owned by the Scheduler) ---
  int32_t num_cached_tokens = -1;      // prefix-cache hit at first admission; -1 = not yet
  bool sent_to_workers = false;        // workers hold state for it (NewRequestData went out)
  bool resume_pending = false;         // next CachedRequestData carries resumed = 1
  int32_t num_outputs_sent = 0;        // output tokens the workers have been sent
  int32_t num_blocks_sent = 0;         // block ids the workers have been sent
  int32_t num_preemptions = 0;
  int32_t stop_token_id = -1;          // the stop_token_ids entry that finished it, or -1
  // Steps (oldest first) that sample this request and whose output has not been
  // applied: each adds one pending token after token_ids(). At most two (one step in
  // flight while the next is scheduled).
  uint64_t pending_sample_steps[2] = {0, 0};
  int32_t num_pending_tokens = 0;
  int32_t num_tokens_with_pending() const { return num_tokens() + num_pending_tokens; }

 private:
  std::string request_id_;
  int32_t slot_;
  uint64_t arrival_seq_;
  double arrival_time_;
  int32_t priority_;
  int32_t eos_token_id_;
  SamplingParams sampling_params_;
  RequestStatus status_ = RequestStatus::kWaiting;
  std::vector<int32_t> token_ids_;     // prompt then outputs
  int32_t num_prompt_tokens_;
  int32_t num_computed_tokens_ = 0;
  std::vector<BlockHash> block_hashes_;
  BlockHashExtra hash_extra_;
};

}  // namespace vela

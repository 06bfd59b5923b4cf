#pragma once
// Scheduler: the engine core's continuous-batching loop (vLLM v1 style, one unified
// loop with no prefill/decode phases). Pure and deterministic: no I/O, no threads,
// no clocks; one actor owns it.
//
// Each step (schedule()):
//  1. running requests, in admission order, get their next tokens (a decode token or
//     the next prompt chunk, capped by the long-prefill threshold while others
//     compete) within the token budget; a chunk shrinks to the free blocks, and when
//     even one token does not fit the best victim (lowest priority, then latest
//     arrival) is preempted by recompute;
//  2. if nobody was preempted, waiting requests are admitted in policy order after a
//     prefix-cache lookup, while the budget, max_num_seqs and the blocks allow; a
//     prompt chunk shrinks to the blocks that are free rather than leave them idle;
//  3. prefill chunks held back by the long-prefill threshold (so one long prompt
//     cannot crowd out the decodes behind it) get whatever budget is left.
// update_from_output() appends sampled tokens, applies stop rules, frees finished
// requests and reports them; their ids travel in the next SchedulerOutput.
//
// Async scheduling (limits.async_scheduling): schedule() may run while the previous
// step is still on the workers. A request sampled in that step has a pending token:
// its position is known, its id is not. The next step schedules its decode anyway;
// the SchedulerOutput carries kPlaceholderToken in its new_token_ids, and each worker
// fills in the token it sampled for that request in its previous step
// (messages/step_placeholders.h). When the pending token arrives it is applied; if
// it finishes the request, the slot scheduled behind it is discarded (its row in the
// next output is ignored, its blocks were freed with the request).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "engine_core/admission.h"
#include "engine_core/kv_cache_manager.h"
#include "engine_core/request.h"
#include "engine_core/request_queue.h"
#include "engine_core/scheduler_stats.h"
#include "messages/engine_core_output.h"
#include "messages/engine_core_request.h"
#include "messages/model_runner_output.h"
#include "messages/scheduler_output.h"

namespace vela {

struct SchedulerLimits {           // filled from Config by the caller
  int32_t max_num_seqs = 256;
  int32_t max_num_batched_tokens = 2048;
  int32_t max_model_len = 4096;
  int32_t long_prefill_token_threshold = 0;  // 0 = auto: max(block size, 4% of max_model_len)
  bool enable_chunked_prefill = true;
  bool enable_prefix_caching = true;
  std::string policy = "fcfs";     // fcfs | priority
  int32_t block_size_tokens = 16;
  int32_t num_blocks = 0;          // KV blocks in the pool (block 0 is the null block)
  int32_t num_lookahead_tokens = 0;  // extra slots per request (speculative decoding)
  uint64_t hash_seed = 0;            // prefix-cache hash seed (secret when tenants may attack)
  bool async_scheduling = false;     // schedule() may run with one step in flight (see above)
};

// Ok when the limits are usable, else an Error naming the field and value.
Status validate_scheduler_limits(const SchedulerLimits& limits);
// What admission needs from the limits (check_admission).
AdmissionLimits admission_limits_of(const SchedulerLimits& limits);

class Scheduler {
 public:
  // Refuses invalid limits (validate_scheduler_limits).
  static Result<std::unique_ptr<Scheduler>> create(const SchedulerLimits& limits);
  // Precondition: validate_scheduler_limits(limits) is ok (asserted).
  explicit Scheduler(const SchedulerLimits& limits);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Validates against the limits and the pool (a request that could never fit is
  // rejected) and queues it. On rejection returns an output with kError and why.
  std::optional<EngineCoreOutput> add_request(EngineCoreRequest request);
  // Aborts in any state (unknown ids ignored); outputs with kAbort for live ones.
  std::vector<EngineCoreOutput> abort_requests(const std::vector<std::string>& request_ids);

  SchedulerOutput schedule();
  // Same, reusing out's vectors and strings (no allocation once warm).
  void schedule(SchedulerOutput& out);

  // Applies rank 0's sampled tokens to the requests `scheduled` planned.
  EngineCoreOutputs update_from_output(const SchedulerOutput& scheduled, const ModelRunnerOutput& output);
  // Same, reusing out's vectors and strings.
  void update_from_output(const SchedulerOutput& scheduled, const ModelRunnerOutput& output,
                          EngineCoreOutputs& out);

  bool has_unfinished_requests() const { return !running_.empty() || !waiting_->empty(); }
  // Tokens sampled in steps whose output has not been applied yet (async scheduling).
  int32_t num_pending_tokens() const { return num_pending_tokens_; }
  // Finished ids not yet sent to workers (they go out with the next schedule()).
  bool has_finished_requests_to_report() const { return !finished_to_report_.empty(); }
  size_t num_waiting() const { return waiting_->size(); }
  size_t num_running() const { return running_.size(); }
  SchedulerStats stats() const;
  // Drops the prefix cache; refused (false) while any request holds blocks.
  bool reset_prefix_cache() { return kv_.reset_prefix_cache(); }

  const SchedulerLimits& limits() const { return limits_; }
  int32_t long_prefill_token_threshold() const { return long_prefill_threshold_; }
  const KVCacheManager& kv_cache_manager() const { return kv_; }
  const Request* find_request(std::string_view request_id) const;
  // Debug: the KV integrity check plus every request in exactly one place with a
  // status that matches it; else an "integrity" error naming what is not.
  Status check_integrity() const;

 private:
  struct Scheduled {          // one request planned in the current step
    int32_t slot;
    int32_t num_tokens;       // tokens to compute this step
    bool capped;              // held back by the long-prefill threshold
  };

  Request& request_at(int32_t slot) { return *requests_[static_cast<size_t>(slot)]; }
  const Request& request_at(int32_t slot) const { return *requests_[static_cast<size_t>(slot)]; }
  int32_t slot_of(std::string_view request_id) const;
  int32_t claim_slot();
  void release_slot(int32_t slot);

  std::string rejection_reason(const EngineCoreRequest& request) const;
  // Async scheduling: a request whose pending tokens will end it by length needs no
  // further slot.
  bool ends_with_pending(const Request& request) const;
  void drop_pending(Request& request);
  int32_t cap_prefill(const Request& request, int32_t num_new_tokens, bool* capped) const;
  void schedule_running(int32_t* budget, bool* preempted_any);
  void schedule_waiting(int32_t* budget);
  void top_up_capped(int32_t* budget);
  // Preempts the best victim among running_ (taking back its plan and budget if it
  // was scheduled this step); returns its index there.
  size_t preempt_one(int32_t* budget);
  void build_output(SchedulerOutput& out);
  // Frees a finished or aborted request (already removed from running_/waiting_).
  void retire(Request& request, RequestStatus status);
  int32_t locate_row(const ModelRunnerOutput& output, size_t row) const;

  SchedulerLimits limits_;
  SchedulingPolicy policy_ = SchedulingPolicy::kFcfs;
  int32_t long_prefill_threshold_ = 0;
  KVCacheManager kv_;

  std::vector<std::unique_ptr<Request>> requests_;  // [slot]; null when the slot is free
  std::vector<int32_t> free_slots_;
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view id) const { return std::hash<std::string_view>{}(id); }
  };
  std::unordered_map<std::string, int32_t, IdHash, std::equal_to<>> slot_by_id_;
  std::unique_ptr<RequestQueue> waiting_;
  std::vector<int32_t> running_;                    // slots in admission order

  // Current step (reused across steps).
  std::vector<Scheduled> scheduled_;
  std::vector<int32_t> preempted_this_step_;        // slots
  std::vector<std::string> finished_to_report_;     // ids for the next SchedulerOutput
  uint64_t next_step_id_ = 1;
  uint64_t next_arrival_seq_ = 0;
  int32_t num_pending_tokens_ = 0;                  // sum of the requests' pending samples

  SchedulerStats counters_;                         // cumulative fields only
};

}  // namespace vela

// Scheduler: construction, admission control, aborts, statistics and the integrity
// check. The step itself (schedule / update_from_output) is in scheduler_step.cpp.
#include "engine_core/scheduler.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace vela {

namespace {

KVCacheConfig kv_config_of(const SchedulerLimits& limits) {
  assert(validate_scheduler_limits(limits).ok());
  return KVCacheConfig{limits.num_blocks, limits.block_size_tokens, limits.enable_prefix_caching,
                       limits.hash_seed};
}

Error field(const char* name, int64_t value, const char* rule) {
  return field_error("bad_limits", name,
                     std::string("scheduler limits: ") + name + " = " + std::to_string(value) + " " + rule);
}

}  // namespace

Status validate_scheduler_limits(const SchedulerLimits& limits) {
  SchedulingPolicy policy;
  if (!parse_scheduling_policy(limits.policy, &policy))
    return field_error("bad_limits", "policy",
                       "scheduler limits: policy = '" + limits.policy + "' (expected fcfs or priority)");
  if (limits.max_num_seqs < 1) return field("max_num_seqs", limits.max_num_seqs, "must be >= 1");
  if (limits.max_num_batched_tokens < 1)
    return field("max_num_batched_tokens", limits.max_num_batched_tokens, "must be >= 1");
  if (limits.max_model_len < 2) return field("max_model_len", limits.max_model_len, "must be >= 2");
  if (limits.long_prefill_token_threshold < 0)
    return field("long_prefill_token_threshold", limits.long_prefill_token_threshold, "must be >= 0");
  if (limits.block_size_tokens < 1)
    return field("block_size_tokens", limits.block_size_tokens, "must be >= 1");
  if (limits.num_blocks < 2)
    return field("num_blocks", limits.num_blocks, "must be >= 2 (block 0 is the null block)");
  if (limits.num_lookahead_tokens < 0)
    return field("num_lookahead_tokens", limits.num_lookahead_tokens, "must be >= 0");
  return ok_status();
}

AdmissionLimits admission_limits_of(const SchedulerLimits& l) {
  return AdmissionLimits{l.max_model_len, l.max_num_batched_tokens, l.enable_chunked_prefill,
                         l.block_size_tokens, l.num_blocks - 1, l.num_lookahead_tokens};
}

Result<std::unique_ptr<Scheduler>> Scheduler::create(const SchedulerLimits& limits) {
  VELA_TRY(validate_scheduler_limits(limits));
  return std::make_unique<Scheduler>(limits);
}

Scheduler::Scheduler(const SchedulerLimits& limits) : limits_(limits), kv_(kv_config_of(limits)) {
  parse_scheduling_policy(limits.policy, &policy_);
  waiting_ = make_request_queue(policy_);
  long_prefill_threshold_ = limits.long_prefill_token_threshold > 0
                                ? limits.long_prefill_token_threshold
                                : std::max(limits.block_size_tokens, limits.max_model_len * 4 / 100);
  running_.reserve(static_cast<size_t>(limits.max_num_seqs));
  scheduled_.reserve(static_cast<size_t>(limits.max_num_seqs));
}

Scheduler::~Scheduler() = default;

int32_t Scheduler::slot_of(std::string_view request_id) const {
  const auto it = slot_by_id_.find(request_id);
  return it == slot_by_id_.end() ? -1 : it->second;
}

const Request* Scheduler::find_request(std::string_view request_id) const {
  const int32_t slot = slot_of(request_id);
  return slot < 0 ? nullptr : &request_at(slot);
}

int32_t Scheduler::claim_slot() {
  if (!free_slots_.empty()) {
    const int32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  requests_.emplace_back();
  return static_cast<int32_t>(requests_.size()) - 1;
}

void Scheduler::release_slot(int32_t slot) {
  slot_by_id_.erase(request_at(slot).request_id());
  requests_[static_cast<size_t>(slot)].reset();
  free_slots_.push_back(slot);
}

std::string Scheduler::rejection_reason(const EngineCoreRequest& request) const {
  const auto num_prompt_tokens = static_cast<int64_t>(request.prompt_token_ids.size());
  const SamplingParams& params = request.sampling_params;
  const std::string who = "request '" + request.request_id + "': ";
  if (slot_by_id_.count(request.request_id)) return who + "a live request already has this id";
  if (num_prompt_tokens == 0) return who + "empty prompt";
  if (params.max_tokens < 1) return who + "max_tokens = " + std::to_string(params.max_tokens) + " (must be >= 1)";
  if (params.min_tokens < 0) return who + "min_tokens = " + std::to_string(params.min_tokens) + " (must be >= 0)";
  if (auto fits = check_admission(num_prompt_tokens, params.max_tokens, admission_limits_of(limits_)); !fits)
    return who + fits.error().message;
  return {};
}

std::optional<EngineCoreOutput> Scheduler::add_request(EngineCoreRequest request) {
  if (std::string reason = rejection_reason(request); !reason.empty()) {
    ++counters_.num_rejected;
    EngineCoreOutput out;
    out.request_id = std::move(request.request_id);
    out.finish_reason = FinishReason::kError;
    out.error = std::move(reason);
    return out;
  }
  const int32_t slot = claim_slot();
  auto owned = std::make_unique<Request>(std::move(request), slot, next_arrival_seq_++);
  if (kv_.prefix_caching_enabled()) owned->update_block_hashes(limits_.block_size_tokens, kv_.hash_seed());
  slot_by_id_.emplace(owned->request_id(), slot);
  requests_[static_cast<size_t>(slot)] = std::move(owned);
  waiting_->push(request_at(slot));
  return std::nullopt;
}

void Scheduler::drop_pending(Request& request) {
  // Its in-flight samples will be ignored when they arrive (a preempted request
  // recomputes them; a finished one never needed them).
  num_pending_tokens_ -= request.num_pending_tokens;
  request.num_pending_tokens = 0;
}

void Scheduler::retire(Request& request, RequestStatus status) {
  drop_pending(request);
  request.set_status(status);
  kv_.free(request, request.num_computed_tokens());
  if (request.sent_to_workers) finished_to_report_.push_back(request.request_id());
  release_slot(request.slot());
}

std::vector<EngineCoreOutput> Scheduler::abort_requests(const std::vector<std::string>& request_ids) {
  std::vector<EngineCoreOutput> outputs;
  for (const std::string& id : request_ids) {
    const int32_t slot = slot_of(id);
    if (slot < 0) continue;
    Request& request = request_at(slot);
    if (request.status() == RequestStatus::kRunning) {
      running_.erase(std::find(running_.begin(), running_.end(), slot));
    } else {
      waiting_->remove(slot);
    }
    EngineCoreOutput out;
    out.request_id = id;
    out.finish_reason = FinishReason::kAbort;
    out.num_cached_tokens = std::max(request.num_cached_tokens, 0);
    outputs.push_back(std::move(out));
    retire(request, RequestStatus::kFinishedAborted);
  }
  return outputs;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s = counters_;
  s.num_running = static_cast<int32_t>(running_.size());
  s.num_waiting = static_cast<int32_t>(waiting_->size());
  s.kv_cache_usage = kv_.usage();
  s.num_free_blocks = kv_.num_free_blocks();
  s.num_usable_blocks = kv_.num_usable_blocks();
  s.num_cached_blocks = kv_.pool().num_cached_blocks();
  const PrefixCacheStats& p = kv_.prefix_cache_stats();
  s.prefix_cache_queries = p.num_queries;
  s.prefix_cache_query_tokens = p.num_query_tokens;
  s.prefix_cache_hit_tokens = p.num_hit_tokens;
  s.prefix_cache_hit_rate = p.hit_rate();
  return s;
}

Status Scheduler::check_integrity() const {
  VELA_TRY(kv_.check_integrity());
  std::vector<int8_t> seen(requests_.size(), 0);
  for (const int32_t slot : running_) {
    if (!requests_[static_cast<size_t>(slot)])
      return make_error("integrity", "running list holds free slot " + std::to_string(slot));
    const Request& r = request_at(slot);
    if (seen[static_cast<size_t>(slot)]++)
      return make_error("integrity", "request '" + r.request_id() + "' is in two places");
    if (r.status() != RequestStatus::kRunning)
      return make_error("integrity", "request '" + r.request_id() + "' is in the running list with status " +
                                         request_status_name(r.status()));
    if (r.num_computed_tokens() > r.num_tokens_with_pending())
      return make_error("integrity", "request '" + r.request_id() + "' computed more tokens than it has");
  }
  if (running_.size() > static_cast<size_t>(limits_.max_num_seqs))
    return make_error("integrity", "more running requests than max_num_seqs");
  for (const int32_t slot : waiting_->slots_in_order()) {
    if (!requests_[static_cast<size_t>(slot)])
      return make_error("integrity", "waiting queue holds free slot " + std::to_string(slot));
    const Request& r = request_at(slot);
    if (seen[static_cast<size_t>(slot)]++)
      return make_error("integrity", "request '" + r.request_id() + "' is in two places");
    if (r.status() != RequestStatus::kWaiting && r.status() != RequestStatus::kPreempted)
      return make_error("integrity",
                        "request '" + r.request_id() + "' is waiting with status " + request_status_name(r.status()));
    if (!kv_.blocks_of(slot).empty())
      return make_error("integrity", "waiting request '" + r.request_id() + "' holds KV blocks");
  }
  size_t num_live = 0;
  for (size_t slot = 0; slot < requests_.size(); ++slot) {
    if (!requests_[slot]) {
      if (!kv_.blocks_of(static_cast<int32_t>(slot)).empty())
        return make_error("integrity", "free slot " + std::to_string(slot) + " holds KV blocks");
      continue;
    }
    ++num_live;
    if (!seen[slot])
      return make_error("integrity", "request '" + requests_[slot]->request_id() + "' is neither running nor waiting");
  }
  if (num_live != slot_by_id_.size()) return make_error("integrity", "the id index and the request table disagree");
  return ok_status();
}

}  // namespace vela

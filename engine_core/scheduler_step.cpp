// Scheduler: one step. schedule() plans it; update_from_output() applies its result.
#include <algorithm>
#include <cassert>

#include "engine_core/scheduler.h"
#include "engine_core/stop_checker.h"
#include "messages/step_placeholders.h"

namespace vela {

namespace {

// Element n of v (default-constructed when v is that short), then n+1. Together
// with a final v.resize(n) this rewrites v in place, so strings and inner vectors
// keep their capacity from the previous step.
template <class T>
T& next_element(std::vector<T>& v, size_t& n) {
  if (n == v.size()) v.emplace_back();
  return v[n++];
}

template <class T>
T& column(std::vector<T>& v, size_t i) {
  if (i == v.size()) v.emplace_back();
  return v[i];
}

void append_block_ids(std::vector<int32_t>& out, std::span<const BlockId> blocks) {
  out.clear();
  for (const BlockId block : blocks) out.push_back(block.value);
}

}  // namespace

bool Scheduler::ends_with_pending(const Request& request) const {
  if (request.num_pending_tokens == 0) return false;
  return request.num_output_tokens() + request.num_pending_tokens >= request.sampling_params().max_tokens ||
         request.num_tokens_with_pending() >= limits_.max_model_len;
}

int32_t Scheduler::cap_prefill(const Request& request, int32_t num_new_tokens, bool* capped) const {
  (void)request;
  // Only under contention: a long prompt alone may use the whole budget.
  *capped = num_new_tokens > long_prefill_threshold_ && running_.size() + waiting_->size() > 1;
  return *capped ? long_prefill_threshold_ : num_new_tokens;
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  schedule(out);
  return out;
}

void Scheduler::schedule(SchedulerOutput& out) {
  ++counters_.num_steps;
  scheduled_.clear();
  preempted_this_step_.clear();
  int32_t budget = limits_.max_num_batched_tokens;
  bool preempted_any = false;
  schedule_running(&budget, &preempted_any);
  // After a preemption memory is short: admitting now would only feed the next one.
  if (!preempted_any) schedule_waiting(&budget);
  top_up_capped(&budget);
  build_output(out);
}

void Scheduler::schedule_running(int32_t* budget, bool* preempted_any) {
  const int32_t lookahead = limits_.num_lookahead_tokens;
  size_t i = 0;
  while (i < running_.size() && *budget > 0) {
    const int32_t slot = running_[i];
    Request& request = request_at(slot);
    // Async: a pending token's position is known, so its decode can be scheduled.
    const int32_t num_known = limits_.async_scheduling ? request.num_tokens_with_pending() : request.num_tokens();
    int32_t num_new = num_known - request.num_computed_tokens();
    if (num_new <= 0 || ends_with_pending(request)) {  // its sampled token has not come back
      ++i;
      continue;
    }
    bool capped = false;
    num_new = std::min(cap_prefill(request, num_new, &capped), *budget);
    bool allocated = kv_.allocate_slots(request, num_new, {}, lookahead);
    if (!allocated && num_new > 1) {
      // A prompt chunk shrinks to what fits before anyone is preempted for it.
      const int32_t fit = kv_.max_allocatable_tokens(request, {}, lookahead);
      if (fit > 0) {
        num_new = std::min(num_new, fit);
        allocated = kv_.allocate_slots(request, num_new, {}, lookahead);
      }
    }
    while (!allocated) {
      const size_t victim = preempt_one(budget);
      *preempted_any = true;
      if (victim == i) break;  // it was the best victim itself
      if (victim < i) --i;
      allocated = kv_.allocate_slots(request, num_new, {}, lookahead);
    }
    if (!allocated) continue;  // running_[i] is now the next request
    scheduled_.push_back(Scheduled{slot, num_new, capped});
    *budget -= num_new;
    ++i;
  }
}

size_t Scheduler::preempt_one(int32_t* budget) {
  size_t best = 0;
  for (size_t k = 1; k < running_.size(); ++k) {
    if (is_better_victim(request_at(running_[k]), request_at(running_[best]), policy_)) best = k;
  }
  const int32_t slot = running_[best];
  Request& victim = request_at(slot);
  // Scheduled earlier in this step: take the plan back, budget included.
  const auto planned = std::find_if(scheduled_.begin(), scheduled_.end(),
                                    [slot](const Scheduled& s) { return s.slot == slot; });
  if (planned != scheduled_.end()) {
    *budget += planned->num_tokens;
    scheduled_.erase(planned);
  }
  // num_computed_tokens has not been advanced for this step, so blocks registered
  // for this step's (now cancelled) tokens lose their hashes here.
  kv_.free(victim, victim.num_computed_tokens());
  drop_pending(victim);
  victim.set_status(RequestStatus::kPreempted);
  victim.set_num_computed_tokens(0);
  victim.resume_pending = true;
  ++victim.num_preemptions;
  ++counters_.num_preemptions;
  running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(best));
  waiting_->push_preempted(victim);
  preempted_this_step_.push_back(slot);
  return best;
}

void Scheduler::schedule_waiting(int32_t* budget) {
  const int32_t lookahead = limits_.num_lookahead_tokens;
  while (!waiting_->empty() && *budget > 0 && running_.size() < static_cast<size_t>(limits_.max_num_seqs)) {
    const int32_t slot = waiting_->front();
    Request& request = request_at(slot);
    const PrefixHit hit = kv_.find_cached_prefix(request);
    int32_t num_new = request.num_tokens() - hit.num_tokens;
    // A resumed request may always be chunked: its prompt plus outputs can exceed
    // the budget, and it must not wait forever.
    const bool may_chunk = limits_.enable_chunked_prefill || request.status() == RequestStatus::kPreempted;
    // No long-prefill cap at admission: the first chunk registers as many blocks as
    // it can, so requests admitted after it in this step share them (a shared
    // system prompt is computed once). Everything here runs after the decodes, so
    // it cannot starve them; the cap applies from the next step on.
    if (may_chunk) {
      num_new = std::min(num_new, *budget);
    } else if (num_new > *budget) {
      break;  // wait for a step with budget for the whole prompt
    }
    bool allocated = kv_.allocate_slots(request, num_new, hit, lookahead, /*admission=*/true);
    if (!allocated && may_chunk) {
      // Use the blocks that are free rather than leave them idle behind this request.
      const int32_t fit = kv_.max_allocatable_tokens(request, hit, lookahead);
      if (fit > 0) {
        num_new = std::min(num_new, fit);
        allocated = kv_.allocate_slots(request, num_new, hit, lookahead, /*admission=*/true);
      }
    }
    if (!allocated) break;
    waiting_->pop_front();
    request.set_num_computed_tokens(hit.num_tokens);
    if (request.num_cached_tokens < 0) request.num_cached_tokens = hit.num_tokens;
    request.set_status(RequestStatus::kRunning);
    running_.push_back(slot);
    scheduled_.push_back(Scheduled{slot, num_new, false});
    *budget -= num_new;
  }
}

void Scheduler::top_up_capped(int32_t* budget) {
  const int32_t lookahead = limits_.num_lookahead_tokens;
  for (Scheduled& s : scheduled_) {
    if (*budget <= 0) break;
    if (!s.capped) continue;
    Request& request = request_at(s.slot);
    int32_t extra =
        std::min(request.num_tokens_with_pending() - request.num_computed_tokens() - s.num_tokens, *budget);
    if (extra <= 0) continue;
    if (!kv_.allocate_slots(request, s.num_tokens + extra, {}, lookahead)) {
      extra = std::min(extra, kv_.max_allocatable_tokens(request, {}, lookahead) - s.num_tokens);
      if (extra <= 0 || !kv_.allocate_slots(request, s.num_tokens + extra, {}, lookahead)) continue;
    }
    s.num_tokens += extra;
    *budget -= extra;
  }
}

void Scheduler::build_output(SchedulerOutput& out) {
  out.step_id = next_step_id_++;
  out.total_num_scheduled_tokens = 0;
  CachedRequestData& cached = out.scheduled_cached_reqs;
  size_t num_new_reqs = 0;
  size_t num_cached_reqs = 0;
  size_t num_entries = 0;
  // One growth instead of log2(n) reallocations that move every id string.
  const size_t n = scheduled_.size();
  cached.request_ids.reserve(n);
  cached.resumed_from_preemption.reserve(n);
  cached.new_token_ids.reserve(n);
  cached.new_block_ids.reserve(n);
  cached.num_computed_tokens.reserve(n);
  out.num_scheduled_tokens.reserve(n);
  for (const Scheduled& s : scheduled_) {
    Request& request = request_at(s.slot);
    const std::span<const BlockId> blocks = kv_.blocks_of(s.slot);
    if (!request.sent_to_workers) {
      NewRequestData& data = next_element(out.scheduled_new_reqs, num_new_reqs);
      data.request_id = request.request_id();
      const auto prompt = request.prompt_token_ids();
      data.prompt_token_ids.assign(prompt.begin(), prompt.end());
      data.sampling_params = request.sampling_params();
      append_block_ids(data.block_ids, blocks);
      data.num_computed_tokens = request.num_computed_tokens();
      request.sent_to_workers = true;
      request.num_outputs_sent = request.num_output_tokens();
    } else {
      const size_t k = num_cached_reqs++;
      const bool resumed = request.resume_pending;
      column(cached.request_ids, k) = request.request_id();
      column(cached.resumed_from_preemption, k) = resumed ? 1 : 0;
      const auto outputs = request.output_token_ids();
      std::vector<int32_t>& new_tokens = column(cached.new_token_ids, k);
      const int32_t num_outputs = request.num_output_tokens();
      new_tokens.assign(outputs.begin() + std::min(request.num_outputs_sent, num_outputs), outputs.end());
      // Pending tokens the workers have not been told of: each fills in its own.
      const int32_t num_with_pending = num_outputs + request.num_pending_tokens;
      for (int32_t j = std::max(request.num_outputs_sent, num_outputs); j < num_with_pending; ++j)
        new_tokens.push_back(kPlaceholderToken);
      append_block_ids(column(cached.new_block_ids, k), blocks.subspan(resumed ? 0 : request.num_blocks_sent));
      column(cached.num_computed_tokens, k) = request.num_computed_tokens();
      request.resume_pending = false;
      request.num_outputs_sent = num_with_pending;
    }
    request.num_blocks_sent = static_cast<int32_t>(blocks.size());
    auto& entry = next_element(out.num_scheduled_tokens, num_entries);
    entry.first = request.request_id();
    entry.second = s.num_tokens;
    out.total_num_scheduled_tokens += s.num_tokens;
    request.set_num_computed_tokens(request.num_computed_tokens() + s.num_tokens);
    if (request.num_computed_tokens() == request.num_tokens_with_pending()) {  // sampled in this step
      assert(request.num_pending_tokens < 2);
      request.pending_sample_steps[request.num_pending_tokens++] = out.step_id;
      ++num_pending_tokens_;
    }
  }
  out.scheduled_new_reqs.resize(num_new_reqs);
  cached.request_ids.resize(num_cached_reqs);
  cached.resumed_from_preemption.resize(num_cached_reqs);
  cached.new_token_ids.resize(num_cached_reqs);
  cached.new_block_ids.resize(num_cached_reqs);
  cached.num_computed_tokens.resize(num_cached_reqs);
  out.num_scheduled_tokens.resize(num_entries);
  size_t num_preempted = 0;
  for (const int32_t slot : preempted_this_step_)
    next_element(out.preempted_req_ids, num_preempted) = request_at(slot).request_id();
  out.preempted_req_ids.resize(num_preempted);
  out.finished_req_ids.swap(finished_to_report_);
  finished_to_report_.clear();
  counters_.num_scheduled_tokens += out.total_num_scheduled_tokens;
}

int32_t Scheduler::locate_row(const ModelRunnerOutput& output, size_t row) const {
  const std::string& id = output.request_ids[row];
  // Fast path: runners usually answer in the order the step was planned.
  if (row < scheduled_.size()) {
    const auto& candidate = requests_[static_cast<size_t>(scheduled_[row].slot)];
    if (candidate && candidate->request_id() == id) return scheduled_[row].slot;
  }
  return slot_of(id);
}

EngineCoreOutputs Scheduler::update_from_output(const SchedulerOutput& scheduled, const ModelRunnerOutput& output) {
  EngineCoreOutputs out;
  update_from_output(scheduled, output, out);
  return out;
}

void Scheduler::update_from_output(const SchedulerOutput& scheduled, const ModelRunnerOutput& output,
                                   EngineCoreOutputs& out) {
  const StepLogprobs& logprobs = output.logprobs;
  const size_t num_rows = std::min(output.request_ids.size(), output.sampled_token_ids.size());
  size_t num_outputs = 0;
  bool any_finished = false;
  out.outputs.reserve(num_rows);
  for (size_t row = 0; row < num_rows; ++row) {
    const std::vector<int32_t>& sampled = output.sampled_token_ids[row];
    if (sampled.empty()) continue;  // a partial prefill chunk
    const int32_t slot = locate_row(output, row);
    // Ignore rows for requests finished, aborted or preempted since, or not sampled in this step.
    if (slot < 0) continue;
    Request& request = request_at(slot);
    if (request.status() != RequestStatus::kRunning || request.num_pending_tokens == 0 ||
        request.pending_sample_steps[0] != scheduled.step_id)
      continue;
    request.pending_sample_steps[0] = request.pending_sample_steps[1];
    --request.num_pending_tokens;
    --num_pending_tokens_;

    EngineCoreOutput& o = next_element(out.outputs, num_outputs);
    o.request_id = request.request_id();
    o.new_token_ids.clear();
    o.logprobs.clear();
    o.finish_reason = FinishReason::kNone;
    o.stop_token_id.reset();
    o.error.clear();
    o.num_cached_tokens = std::max(request.num_cached_tokens, 0);
    const int32_t num_top_wanted = request.sampling_params().logprobs;
    StopDecision decision;
    for (size_t j = 0; j < sampled.size(); ++j) {
      request.append_output_token(sampled[j]);
      o.new_token_ids.push_back(sampled[j]);
      if (num_top_wanted >= 0 && !logprobs.empty() && row < logprobs.row_offsets.size()) {
        const size_t r = static_cast<size_t>(logprobs.row_offsets[row]) + j;
        if (r < logprobs.sampled_logprobs.size()) {
          TokenLogprobs& lp = o.logprobs.emplace_back();
          lp.token_id = sampled[j];
          lp.logprob = logprobs.sampled_logprobs[r];
          const size_t top = std::min<size_t>(static_cast<size_t>(num_top_wanted), static_cast<size_t>(logprobs.num_top));
          const size_t begin = r * static_cast<size_t>(logprobs.num_top);
          if (begin + top <= logprobs.top_ids.size() && begin + top <= logprobs.top_logprobs.size()) {
            lp.top_ids.assign(logprobs.top_ids.begin() + begin, logprobs.top_ids.begin() + begin + top);
            lp.top_logprobs.assign(logprobs.top_logprobs.begin() + begin, logprobs.top_logprobs.begin() + begin + top);
          }
        }
      }
      decision = check_stop(request, limits_.max_model_len);
      if (decision.status != RequestStatus::kRunning) break;  // drop tokens past a stop
    }
    if (kv_.prefix_caching_enabled()) request.update_block_hashes(limits_.block_size_tokens, kv_.hash_seed());
    if (decision.status != RequestStatus::kRunning) {
      o.finish_reason = finish_reason_of(decision.status);
      if (decision.stop_token_id >= 0) o.stop_token_id = decision.stop_token_id;
      request.stop_token_id = decision.stop_token_id;
      retire(request, decision.status);
      any_finished = true;
    }
  }
  out.outputs.resize(num_outputs);
  out.engine_index = 0;
  out.timestamp_ns = 0;  // the engine core has no clock; its actor stamps outputs
  if (any_finished) {
    std::erase_if(running_, [this](int32_t slot) { return !requests_[static_cast<size_t>(slot)]; });
  }
}

}  // namespace vela

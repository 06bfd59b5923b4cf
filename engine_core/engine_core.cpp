#include "engine_core/engine_core.h"

#include <algorithm>
#include <limits>

namespace vela {

Result<int32_t> agree_num_blocks(const std::vector<ProfileResult>& profiles, int32_t num_blocks_override) {
  if (profiles.empty()) return make_error("bad_profile", "no worker profiles");
  uint64_t blocks = std::numeric_limits<uint64_t>::max();
  for (const auto& p : profiles) {
    if (p.bytes_per_block == 0)
      return make_error("bad_profile", "rank " + std::to_string(p.rank) + " reported 0 bytes per KV block");
    blocks = std::min(blocks, p.kv_cache_bytes_available / p.bytes_per_block);
  }
  if (num_blocks_override > 0) blocks = static_cast<uint64_t>(num_blocks_override);
  blocks = std::min<uint64_t>(blocks, std::numeric_limits<int32_t>::max());
  if (blocks < 2)  // block 0 is the null block
    return make_error("no_kv_memory", "room for " + std::to_string(blocks) +
                                          " KV blocks only; raise cache.cpu_kv_cache_gib or cache.gpu_memory_utilization");
  return static_cast<int32_t>(blocks);
}

Result<std::unique_ptr<EngineCore>> EngineCore::create(const EngineCoreOptions& options, Executor& executor) {
  SchedulerLimits limits = options.limits;
  limits.num_blocks = 2;  // checked now, with a placeholder pool, before any worker starts
  VELA_TRY(validate_scheduler_limits(limits));
  LoadModel load = options.load;
  load.block_size_tokens = limits.block_size_tokens;
  load.max_model_len = limits.max_model_len;
  load.max_num_batched_tokens = limits.max_num_batched_tokens;
  load.max_num_seqs = limits.max_num_seqs;

  EngineFacts facts;
  VELA_TRY_ASSIGN(facts.workers, executor.start(load));
  VELA_TRY_ASSIGN(facts.num_blocks, agree_num_blocks(facts.workers.profiles, options.num_blocks_override));
  VELA_TRY(executor.init_kv_cache(InitKVCache{facts.num_blocks}));
  limits.num_blocks = facts.num_blocks;
  VELA_TRY_ASSIGN(auto scheduler, Scheduler::create(limits));
  facts.vocab_size = facts.workers.profiles[0].vocab_size;
  facts.eos_token_id = facts.workers.profiles[0].eos_token_id;
  facts.admission = admission_limits_of(limits);
  return std::unique_ptr<EngineCore>(new EngineCore(executor, std::move(facts), std::move(scheduler)));
}

std::optional<EngineCoreOutput> EngineCore::add_request(EngineCoreRequest request) {
  if (request.eos_token_id < 0) request.eos_token_id = facts_.eos_token_id;
  return scheduler_->add_request(std::move(request));
}

std::vector<EngineCoreOutput> EngineCore::abort_requests(const std::vector<std::string>& request_ids) {
  return scheduler_->abort_requests(request_ids);
}

Status EngineCore::submit_steps() {
  while (num_in_flight_ < max_steps_in_flight()) {
    if (!scheduler_->has_unfinished_requests() && !scheduler_->has_finished_requests_to_report()) break;
    SchedulerOutput& step = steps_[(oldest_ + num_in_flight_) % steps_.size()];
    scheduler_->schedule(step);
    if (step.total_num_scheduled_tokens == 0 && step.finished_req_ids.empty() && step.preempted_req_ids.empty())
      break;  // nothing fits now; the next output, finish or abort makes room
    VELA_TRY(executor_.submit(step));
    ++num_in_flight_;
  }
  return ok_status();
}

Result<bool> EngineCore::collect(EngineCoreOutputs& out, int timeout_ms) {
  out.outputs.clear();
  if (num_in_flight_ == 0) return false;
  VELA_TRY_ASSIGN(const bool got, executor_.collect(result_, timeout_ms));
  if (!got) return false;
  const SchedulerOutput& step = steps_[oldest_];
  if (result_.step_id != step.step_id)
    return make_error("out_of_order", "output for step " + std::to_string(result_.step_id) + " while step " +
                                          std::to_string(step.step_id) + " is the oldest in flight");
  scheduler_->update_from_output(step, result_, out);
  oldest_ = (oldest_ + 1) % steps_.size();
  --num_in_flight_;
  return true;
}

}  // namespace vela

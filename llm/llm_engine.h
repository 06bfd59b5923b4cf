#pragma once
// LLMEngine: the engine core and one runner in one process, no actors and no
// sockets: `vela generate --model`, `vela bench throughput` and tests use it. It is
// the same step protocol the multi-process engine runs (schedule -> execute ->
// update_from_output), with the message hop replaced by a call.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "configs/config.h"
#include "engine_core/scheduler.h"
#include "messages/engine_core_output.h"
#include "messages/engine_core_request.h"
#include "workers/runner.h"

namespace vela {

class LLMEngine {
 public:
  // Loads the runner (weights, memory profile), sizes the KV cache and builds the
  // scheduler. config must have gone through resolve_model_paths().
  static Result<std::unique_ptr<LLMEngine>> create(const Config& config, std::unique_ptr<Runner> runner);
  // The CPU model runner (or the no-op runner when runner == "noop").
  static Result<std::unique_ptr<LLMEngine>> create(const Config& config, const std::string& runner = "model");

  // Queues a request; on rejection returns its kError output (why it can never run).
  std::optional<EngineCoreOutput> add_request(EngineCoreRequest request);
  std::vector<EngineCoreOutput> abort_requests(const std::vector<std::string>& request_ids);

  // One step: schedule, execute, apply. The outputs stay valid until the next step.
  Result<const EngineCoreOutputs*> step();
  bool has_unfinished_requests() const { return scheduler_->has_unfinished_requests(); }

  const Scheduler& scheduler() const { return *scheduler_; }
  const ProfileResult& profile() const { return profile_; }
  int32_t num_blocks() const { return num_blocks_; }
  int32_t max_model_len() const { return max_model_len_; }

 private:
  LLMEngine() = default;

  std::unique_ptr<Runner> runner_;
  std::unique_ptr<Scheduler> scheduler_;
  ProfileResult profile_;
  int32_t num_blocks_ = 0;
  int32_t max_model_len_ = 0;
  SchedulerOutput step_;       // reused every step
  EngineCoreOutputs outputs_;  // reused every step
};

}  // namespace vela

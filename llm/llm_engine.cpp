#include "llm/llm_engine.h"

#include "llm/engine_setup.h"
#include "llm/request_validation.h"
#include "workers/model_runner.h"
#include "workers/noop_runner.h"

namespace vela {

Result<std::unique_ptr<LLMEngine>> LLMEngine::create(const Config& config, const std::string& runner) {
  if (runner == "noop") return create(config, make_noop_runner());
  if (runner != "model") return make_error("bad_runner", "unknown runner '" + runner + "' (model | noop)");
  ModelRunnerOptions options;
  options.cpu_kv_cache_bytes = cpu_kv_cache_bytes(config);
  if (!config.parallel.devices.empty()) options.device = config.parallel.devices[0];
  return create(config, make_model_runner(nullptr, options));
}

Result<std::unique_ptr<LLMEngine>> LLMEngine::create(const Config& config, std::unique_ptr<Runner> runner) {
  if (config.parallel.tensor_parallel_size != 1 || config.parallel.data_parallel_size != 1)
    return make_error("bad_config", "the in-process engine runs one worker: use `vela serve` for "
                                    "parallel.tensor_parallel_size or data_parallel_size > 1");
  auto max_len = resolve_max_model_len(config);
  if (!max_len) return max_len.error();
  std::unique_ptr<LLMEngine> engine(new LLMEngine());
  engine->runner_ = std::move(runner);
  engine->max_model_len_ = *max_len;
  auto profile = engine->runner_->load(make_load_model(config, *max_len));
  if (!profile) return profile.error();
  engine->profile_ = *profile;
  auto blocks = agree_num_blocks({*profile}, config.cache.num_gpu_blocks);
  if (!blocks) return blocks.error();
  engine->num_blocks_ = *blocks;
  auto init = engine->runner_->init_kv_cache(InitKVCache{*blocks, config.cache.block_size});
  if (!init) return init.error();
  auto limits = make_scheduler_limits(config, *max_len, *blocks);
  if (auto why = validate_scheduler_limits(limits); !why.empty()) return make_error("bad_config", why);
  engine->scheduler_ = std::make_unique<Scheduler>(limits);
  return engine;
}

std::optional<EngineCoreOutput> LLMEngine::add_request(EngineCoreRequest request) {
  const ValidationLimits limits{max_model_len_, profile_.vocab_size, num_blocks_, scheduler_->limits().block_size_tokens};
  if (auto bad = validate_request(request.prompt_token_ids, true, request.sampling_params, limits)) {
    EngineCoreOutput out;
    out.request_id = request.request_id;
    out.finish_reason = FinishReason::kError;
    out.error = bad->field + ": " + bad->message;
    return out;
  }
  if (request.eos_token_id < 0) request.eos_token_id = profile_.eos_token_id;
  return scheduler_->add_request(std::move(request));
}

std::vector<EngineCoreOutput> LLMEngine::abort_requests(const std::vector<std::string>& request_ids) {
  return scheduler_->abort_requests(request_ids);
}

Result<const EngineCoreOutputs*> LLMEngine::step() {
  scheduler_->schedule(step_);
  if (step_.total_num_scheduled_tokens == 0 && step_.finished_req_ids.empty() && step_.preempted_req_ids.empty()) {
    outputs_.outputs.clear();
    return &outputs_;
  }
  auto result = runner_->execute(step_);
  if (!result) return result.error();
  scheduler_->update_from_output(step_, *result, outputs_);
  return &outputs_;
}

}  // namespace vela

#include "llm/llm_engine.h"

#include "executor/worker_group_executor.h"
#include "llm/engine_setup.h"
#include "llm/request_validation.h"
#include "workers/model_runner.h"
#include "workers/noop_runner.h"

namespace vela {

Result<std::unique_ptr<LLMEngine>> LLMEngine::create(const Config& config, const std::string& runner) {
  if (runner != "model" && runner != "noop")
    return make_error("bad_runner", "unknown runner '" + runner + "' (model | noop)");
  if (config.parallel.tensor_parallel_size > 1 && config.parallel.data_parallel_size == 1) {
    // The ranks are worker processes; this engine drives them as `vela serve` does.
    VELA_TRY_ASSIGN(const int32_t max_len, resolve_max_model_len(config));
    std::unique_ptr<LLMEngine> engine(new LLMEngine());
    engine->executor_ = std::make_unique<WorkerGroupExecutor>(worker_group_options(config, runner, 0));
    VELA_TRY_ASSIGN(engine->core_, EngineCore::create(make_engine_core_options(config, max_len), *engine->executor_));
    return engine;
  }
  if (runner == "noop") return create(config, make_noop_runner());
  ModelRunnerOptions options;
  options.cpu_kv_cache_bytes = cpu_kv_cache_bytes(config);
  if (!config.parallel.devices.empty()) options.device = config.parallel.devices[0];
  return create(config, make_model_runner(nullptr, options));
}

Result<std::unique_ptr<LLMEngine>> LLMEngine::create(const Config& config, std::unique_ptr<Runner> runner) {
  if (config.parallel.tensor_parallel_size != 1 || config.parallel.data_parallel_size != 1)
    return make_error("bad_config", "parallel.data_parallel_size > 1 needs `vela serve` (one engine per replica); "
                                    "tensor_parallel_size > 1 needs worker processes (LLMEngine::create(config))");
  VELA_TRY_ASSIGN(const int32_t max_len, resolve_max_model_len(config));
  std::unique_ptr<LLMEngine> engine(new LLMEngine());
  engine->executor_ = std::make_unique<InProcessExecutor>(std::move(runner));
  VELA_TRY_ASSIGN(engine->core_, EngineCore::create(make_engine_core_options(config, max_len), *engine->executor_));
  return engine;
}

std::optional<EngineCoreOutput> LLMEngine::add_request(EngineCoreRequest request) {
  const EngineFacts& facts = core_->facts();
  if (auto valid = validate_request(request.prompt_token_ids, true, request.sampling_params,
                                    ValidationLimits{facts.vocab_size, facts.admission});
      !valid) {
    EngineCoreOutput out;
    out.request_id = request.request_id;
    out.finish_reason = FinishReason::kError;
    out.error = valid.error().field + ": " + valid.error().message;
    return out;
  }
  return core_->add_request(std::move(request));
}

std::vector<EngineCoreOutput> LLMEngine::abort_requests(const std::vector<std::string>& request_ids) {
  return core_->abort_requests(request_ids);
}

Result<const EngineCoreOutputs*> LLMEngine::step() {
  VELA_TRY(core_->submit_steps());
  VELA_TRY(core_->collect(outputs_, -1));  // nothing in flight: no outputs
  return &outputs_;
}

}  // namespace vela

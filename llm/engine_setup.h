#pragma once
// From a Config to what the engine's parts need: the resolved model (the embedded
// demo, models/demo, when none is named), max_model_len, the LoadModel every worker
// receives and the scheduler's limits (EngineCoreOptions). The in-process
// engine and the multi-process server both build themselves from these.
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "configs/config.h"
#include "engine_core/engine_core.h"
#include "engine_core/scheduler.h"
#include "executor/worker_group.h"
#include "messages/worker_control.h"

namespace vela {

// The trained demo model (scripts/train_demo), relative to the project root.
inline constexpr const char* kDemoModelDir = "models/demo";

// Fills in the embedded default: with no model.path, the demo model models/demo
// (weights and tokenizer in one HF directory) when it exists; otherwise, with a
// warning, its stand-in configs/demo-model (random weights from the dummy loader)
// with the fetched Qwen3 tokenizer. Errors when a named path does not exist.
Result<Config> resolve_model_paths(Config config);

// The tokenizer directory (model.tokenizer, else model.path when it holds tokenizer.json); "" if none.
std::string tokenizer_dir(const Config& config);

// config.model.max_model_len, or the model's max_position_embeddings when 0; an
// error names the key when it exceeds what the model supports.
Result<int32_t> resolve_max_model_len(const Config& config);

LoadModel make_load_model(const Config& config, int32_t max_model_len);

// KV bytes a CPU worker may use (cache.cpu_kv_cache_gib).
uint64_t cpu_kv_cache_bytes(const Config& config);

// The scheduler's limits (num_blocks is agreed at startup: EngineCore::create).
SchedulerLimits make_scheduler_limits(const Config& config, int32_t max_model_len);

// Everything EngineCore::create needs from the config (both drivers use it).
EngineCoreOptions make_engine_core_options(const Config& config, int32_t max_model_len);

// The worker processes of data-parallel replica `replica`: tensor_parallel_size
// ranks on parallel.devices [replica * tp, (replica + 1) * tp) (cpu when none are
// listed), vela-worker --runner `runner`. `vela serve` and the in-process engine at
// tensor_parallel_size > 1 both start their workers from this.
WorkerGroupOptions worker_group_options(const Config& config, const std::string& runner, int32_t replica);

}  // namespace vela

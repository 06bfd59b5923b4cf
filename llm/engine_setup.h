#pragma once
// From a Config to what the engine's parts need: the resolved model (the embedded
// demo, models/demo, when none is named), max_model_len, the LoadModel every worker
// receives, the KV-cache size agreed over workers, and the scheduler's limits. The in-process
// engine and the multi-process server both build themselves from these.
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "configs/config.h"
#include "engine_core/scheduler.h"
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

// The pool every rank can hold: the minimum over ranks (or cache.num_gpu_blocks).
Result<int32_t> agree_num_blocks(const std::vector<ProfileResult>& profiles, int32_t num_blocks_override);

SchedulerLimits make_scheduler_limits(const Config& config, int32_t max_model_len, int32_t num_blocks);

}  // namespace vela

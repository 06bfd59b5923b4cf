#include "llm/engine_setup.h"

#include <algorithm>
#include <filesystem>

#include "common/logging.h"
#include "common/paths.h"
#include "model/hf_config.h"

namespace vela {
namespace fs = std::filesystem;

Result<Config> resolve_model_paths(Config config) {
  if (config.model.path.empty()) {
    if (auto trained = find_project_file(kDemoModelDir + std::string("/config.json")); !trained.empty()) {
      // The trained demo model: weights and tokenizer in the one HF directory.
      config.model.path = fs::path(trained).parent_path().string();
    } else {
      config.model.path = find_project_file("configs/demo-model");
      if (config.model.path.empty())
        return make_error("bad_config", std::string("model.path is empty and neither the demo model (") + kDemoModelDir +
                                            ") nor its random-weight stand-in (configs/demo-model) was found");
      logger("engine")->warn("{} not found: using configs/demo-model with random weights, so the text is "
                             "meaningless (scripts/train_demo/README.md makes the real demo model)",
                             kDemoModelDir);
      if (config.model.load_format == "auto") config.model.load_format = "dummy";
      if (config.model.tokenizer.empty()) config.model.tokenizer = find_project_file("third_party/tokenizers/qwen3");
    }
  }
  std::error_code ec;
  if (!fs::is_directory(config.model.path, ec))
    return make_error("bad_config", "model.path: '" + config.model.path + "' is not a directory");
  if (!config.model.tokenizer.empty() && !fs::exists(fs::path(config.model.tokenizer) / "tokenizer.json", ec))
    return make_error("bad_config", "model.tokenizer: no tokenizer.json in '" + config.model.tokenizer + "'");
  return config;
}

std::string tokenizer_dir(const Config& config) {
  if (!config.model.tokenizer.empty()) return config.model.tokenizer;
  std::error_code ec;
  if (!config.model.path.empty() && fs::exists(fs::path(config.model.path) / "tokenizer.json", ec))
    return config.model.path;
  return "";
}

Result<int32_t> resolve_max_model_len(const Config& config) {
  VELA_TRY_ASSIGN(const HFConfig hf, load_hf_config(config.model.path));
  const int64_t model_max = hf.max_position_embeddings > 0 ? hf.max_position_embeddings : 4096;
  if (config.model.max_model_len == 0) return static_cast<int32_t>(std::min<int64_t>(model_max, 1 << 24));
  if (config.model.max_model_len > model_max)
    return make_error("bad_config", "model.max_model_len: " + std::to_string(config.model.max_model_len) +
                                        " exceeds the model's max_position_embeddings (" +
                                        std::to_string(model_max) + ")");
  return config.model.max_model_len;
}

LoadModel make_load_model(const Config& c, int32_t max_model_len) {
  LoadModel m;
  m.model_path = c.model.path;
  m.load_format = c.model.load_format;
  m.dtype = c.model.dtype;
  // max_model_len, max_num_batched_tokens, max_num_seqs and block_size_tokens are
  // the scheduler's: EngineCore::create copies them from its limits.
  m.max_model_len = max_model_len;
  m.memory_utilization = c.cache.gpu_memory_utilization;
  m.tensor_parallel_size = c.parallel.tensor_parallel_size;
  m.seed = c.model.seed;
  m.cpu_kv_cache_bytes = cpu_kv_cache_bytes(c);
  m.cuda_graph_max_batch = c.model.enforce_eager ? 0 : c.model.cuda_graph_max_batch;
  m.prefix_caching = c.cache.enable_prefix_caching;
  return m;
}

uint64_t cpu_kv_cache_bytes(const Config& c) {
  return static_cast<uint64_t>(c.cache.cpu_kv_cache_gib * static_cast<double>(uint64_t{1} << 30));
}

SchedulerLimits make_scheduler_limits(const Config& c, int32_t max_model_len) {
  SchedulerLimits l;
  l.max_num_seqs = c.scheduler.max_num_seqs;
  l.max_num_batched_tokens = c.scheduler.max_num_batched_tokens;
  l.max_model_len = max_model_len;
  l.long_prefill_token_threshold = c.scheduler.long_prefill_token_threshold;
  l.enable_chunked_prefill = c.scheduler.enable_chunked_prefill;
  l.enable_prefix_caching = c.cache.enable_prefix_caching;
  l.policy = c.scheduler.policy;
  l.block_size_tokens = c.cache.block_size;
  l.hash_seed = c.model.seed;
  l.async_scheduling = c.scheduler.async_scheduling;
  return l;
}

EngineCoreOptions make_engine_core_options(const Config& c, int32_t max_model_len) {
  EngineCoreOptions o;
  o.limits = make_scheduler_limits(c, max_model_len);
  o.load = make_load_model(c, max_model_len);
  o.num_blocks_override = c.cache.num_gpu_blocks;
  return o;
}

WorkerGroupOptions worker_group_options(const Config& c, const std::string& runner, int32_t replica) {
  WorkerGroupOptions w;
  w.replica = replica;
  w.world_size = c.parallel.tensor_parallel_size;
  // Replica r uses devices [r * tp, (r + 1) * tp) of parallel.devices.
  for (int32_t i = 0; i < w.world_size; ++i) {
    size_t d = static_cast<size_t>(replica * w.world_size + i);
    w.devices.push_back(d < c.parallel.devices.size() ? c.parallel.devices[d] : "cpu");
  }
  w.transport = c.parallel.worker_transport;
  w.host = c.parallel.worker_host;
  w.runner = runner;
  w.log_level = c.logging.level;
  w.startup_timeout_s = c.parallel.worker_startup_timeout_s;
  w.step_timeout_s = c.parallel.step_timeout_s;
  w.step_channel = c.parallel.step_channel;
  w.shm_slot_bytes = uint64_t{static_cast<uint32_t>(c.parallel.shm_slot_kib)} << 10;
  w.step_spin_ns = static_cast<int64_t>(c.parallel.step_spin_us * 1000);
  return w;
}

}  // namespace vela

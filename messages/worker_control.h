#pragma once
// Control messages between the executor and each worker process.
#include <cstdint>
#include <string>

namespace vela {

// Worker -> engine, once connected.
struct Hello {
  int32_t rank = 0;
  int32_t pid = 0;
  std::string device;                 // "cpu" or "cuda:N"
  uint64_t total_memory_bytes = 0;
  uint64_t free_memory_bytes = 0;
  std::string dist_init_address;      // rank 0 only: collective bootstrap it made (Gloo store)
  bool operator==(const Hello&) const = default;
};

// Engine -> worker: load weights and profile memory.
struct LoadModel {
  std::string model_path;             // HF directory
  std::string load_format = "auto";   // "auto" | "safetensors" | "dummy"
  std::string dtype = "auto";         // "auto" | "float32" | "bfloat16" | "float16"
  int32_t max_model_len = 0;
  int32_t max_num_batched_tokens = 0;
  int32_t max_num_seqs = 0;
  int32_t block_size_tokens = 16;     // tokens per KV block: the worker's only copy (checked by the engine)
  double memory_utilization = 0.9;    // fraction of device memory the worker may use
  int32_t tensor_parallel_size = 1;
  int32_t tp_rank = 0;
  std::string dist_init_address;      // Gloo store / NCCL id bootstrap, made by rank 0
  uint64_t seed = 0;
  uint64_t cpu_kv_cache_bytes = 0;    // KV budget on the CPU backend (cache.cpu_kv_cache_gib); 0 = from RAM
  // CUDA: decode steps of up to this many sequences replay CUDA graphs captured at
  // startup (model.cuda_graph_max_batch; capped at max_num_seqs). 0 = always eager
  // (model.enforce_eager, and the CPU).
  int32_t cuda_graph_max_batch = 0;
  // Requests may share KV blocks (cache.enable_prefix_caching): decode steps of 8 or
  // more sequences over a common cached prefix take cascade attention, and the runner
  // captures a second set of decode graphs for them (sizes 8 and up).
  bool prefix_caching = false;
  bool operator==(const LoadModel&) const = default;
};

// Worker -> engine after LoadModel.
struct ProfileResult {
  int32_t rank = 0;
  uint64_t kv_cache_bytes_available = 0;
  uint64_t bytes_per_block = 0;        // K+V bytes of one block across all layers (this shard)
  int32_t vocab_size = 0;
  int32_t eos_token_id = -1;
  bool operator==(const ProfileResult&) const = default;
};

// Engine -> workers: allocate the KV cache (blocks of LoadModel.block_size_tokens).
// An older sender's second field, the block size again, is skipped.
struct InitKVCache {
  int32_t num_blocks = 0;
  bool operator==(const InitKVCache&) const = default;
};

struct Heartbeat {
  int32_t rank = 0;
  uint64_t sequence = 0;
  bool operator==(const Heartbeat&) const = default;
};

struct Shutdown {
  std::string reason;
  bool operator==(const Shutdown&) const = default;
};

// Either side: something failed. request_id is set when one request is at fault.
struct ErrorMessage {
  int32_t rank = -1;
  std::string code;
  std::string message;
  std::string request_id;
  bool operator==(const ErrorMessage&) const = default;
};

// Worker -> engine: generic acknowledgement of a control message (e.g. InitKVCache).
struct Ack {
  int32_t rank = 0;
  uint64_t of_id = 0;                 // envelope id acknowledged
  bool operator==(const Ack&) const = default;
};

}  // namespace vela

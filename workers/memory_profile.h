#pragma once
// KV-cache sizing on the CPU backend.
#include <cstdint>

namespace vela {

// Physical RAM of this machine in bytes.
uint64_t total_ram_bytes();

// K and V bytes of one block across all layers of this rank's shard (fp32 cache).
inline uint64_t cpu_kv_bytes_per_block(int64_t num_layers, int64_t kv_heads_per_rank, int64_t head_dim,
                                       int64_t block_size) {
  return 2ull * uint64_t(num_layers) * uint64_t(kv_heads_per_rank) * uint64_t(head_dim) * uint64_t(block_size) *
         sizeof(float);
}

// The configured size when given; otherwise memory_utilization x RAM less the weights.
uint64_t cpu_kv_cache_bytes(uint64_t configured_bytes, double memory_utilization, uint64_t weight_bytes);

}  // namespace vela

#pragma once
// KV-cache sizing: on the CPU from RAM (or the configured size), on a GPU from the
// memory left after weights and the profiled activations.
#include <cstddef>
#include <cstdint>

namespace vela {

// Physical RAM of this machine in bytes.
uint64_t total_ram_bytes();

// K and V bytes of one block across all layers of this rank's shard.
inline uint64_t kv_bytes_per_block(int64_t num_layers, int64_t kv_heads_per_rank, int64_t head_dim,
                                   int64_t block_size, size_t bytes_per_element) {
  return 2ull * uint64_t(num_layers) * uint64_t(kv_heads_per_rank) * uint64_t(head_dim) * uint64_t(block_size) *
         bytes_per_element;
}

// What the KV cache may take on a GPU: memory_utilization x total, less everything
// in use on the card now (this process's weights and activations, and any other
// process's share). 0 when nothing is left.
inline uint64_t gpu_kv_cache_bytes(uint64_t total_bytes, uint64_t free_bytes, double memory_utilization) {
  const double budget = memory_utilization * double(total_bytes);
  const double used = double(total_bytes - free_bytes);
  return budget > used ? uint64_t(budget - used) : 0;
}

// The configured size when given; otherwise memory_utilization x RAM less the weights.
uint64_t cpu_kv_cache_bytes(uint64_t configured_bytes, double memory_utilization, uint64_t weight_bytes);

}  // namespace vela

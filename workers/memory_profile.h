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

// What the KV cache may take on a GPU: this worker's share of the card
// (memory_utilization x total) less what this process holds, and never more than is
// free. What the process holds: everything allocated since its runtime opened
// (free_at_open - free_now: weights, activations, communicator buffers), plus its
// CUDA context, taken as what was in use when it opened, at most 1 GiB; the cap keeps
// other processes' memory (replicas sharing the card) out of this one's budget, so
// shares that add up to the card (validated at startup) each get theirs. 0 when
// nothing is left.
inline uint64_t gpu_kv_cache_bytes(uint64_t total_bytes, uint64_t free_at_open, uint64_t free_now,
                                   double memory_utilization) {
  const double context = double(total_bytes - free_at_open) < double(1ull << 30) ? double(total_bytes - free_at_open)
                                                                                 : double(1ull << 30);
  const double allocated = free_at_open > free_now ? double(free_at_open - free_now) : 0.0;
  const double budget = memory_utilization * double(total_bytes) - context - allocated;
  const double slack = 256.0 * double(1 << 20);  // for the driver, never handed to the KV cache
  const double available = double(free_now) > slack ? double(free_now) - slack : 0.0;
  const double kv = budget < available ? budget : available;
  return kv > 0 ? uint64_t(kv) : 0;
}

// The configured size when given; otherwise memory_utilization x RAM less the weights.
uint64_t cpu_kv_cache_bytes(uint64_t configured_bytes, double memory_utilization, uint64_t weight_bytes);

}  // namespace vela

#pragma once
// Counters and gauges the scheduler reports (logged per interval, later exported).
#include <cstdint>

namespace vela {

struct SchedulerStats {
  int32_t num_running = 0;
  int32_t num_waiting = 0;            // includes preempted requests waiting to resume
  double kv_cache_usage = 0.0;        // fraction of usable blocks held by requests, in [0, 1]
  int32_t num_free_blocks = 0;
  int32_t num_usable_blocks = 0;      // the pool less the null block
  int32_t num_cached_blocks = 0;      // blocks whose hash is registered (held or free)
  int64_t prefix_cache_queries = 0;   // admissions (fresh and resumed) looked up
  int64_t prefix_cache_query_tokens = 0;
  int64_t prefix_cache_hit_tokens = 0;
  double prefix_cache_hit_rate = 0.0; // hit tokens / query tokens
  int64_t num_preemptions = 0;
  int64_t num_rejected = 0;           // add_request refusals
  uint64_t num_steps = 0;             // schedule() calls
  int64_t num_scheduled_tokens = 0;   // over all steps
};

}  // namespace vela

#include "workers/memory_profile.h"

#include <unistd.h>

namespace vela {

uint64_t total_ram_bytes() {
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page_size = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page_size > 0 ? uint64_t(pages) * uint64_t(page_size) : 0;
}

uint64_t cpu_kv_cache_bytes(uint64_t configured_bytes, double memory_utilization, uint64_t weight_bytes) {
  if (configured_bytes > 0) return configured_bytes;
  double budget = memory_utilization * double(total_ram_bytes());
  return budget > double(weight_bytes) ? uint64_t(budget - double(weight_bytes)) : 0;
}

}  // namespace vela

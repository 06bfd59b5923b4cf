#pragma once
// The small seeded hashes Vela uses wherever numbers must be reproducible across
// processes, ranks and devices: splitmix64 (seeds, dummy weights, sampling draws,
// workload generation) and FNV-1a of a name. constexpr, so CUDA kernels (built with
// --expt-relaxed-constexpr) call the very same functions.
#include <cstdint>
#include <string_view>

namespace vela {

// splitmix64's output for state x (the generator adds the golden gamma first).
constexpr uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

constexpr uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace vela

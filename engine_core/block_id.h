#pragma once
// BlockId: the index of one KV-cache block in the pool (and in every worker's KV
// tensors, whose block dimension is the pool's). A strong type so a block index is
// never confused with a token count or a request index.
#include <cstdint>
#include <functional>

namespace vela {

struct BlockId {
  int32_t value = -1;  // -1: no block
  constexpr BlockId() = default;
  constexpr explicit BlockId(int32_t v) : value(v) {}
  constexpr bool valid() const { return value >= 0; }
  constexpr bool operator==(const BlockId&) const = default;
  constexpr auto operator<=>(const BlockId&) const = default;
};

// Block 0 is reserved as the null block: never allocated, never freed, never hashed.
// Later features (sliding window, skipped blocks) point block-table entries at it.
inline constexpr BlockId kNullBlock{0};

}  // namespace vela

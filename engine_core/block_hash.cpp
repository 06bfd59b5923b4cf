#include "engine_core/block_hash.h"

#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace vela {

BlockHash hash_block(const BlockHash& parent, std::span<const int32_t> block_token_ids,
                     BlockHashExtra extra, uint64_t seed) {
  // One contiguous buffer so XXH3 runs its one-shot path (no streaming state):
  // [parent.low, parent.high, extra.key] then the tokens. The 64-byte state copy of
  // the streaming API costs more than this copy for 16-token blocks.
  constexpr size_t kHeaderBytes = 3 * sizeof(uint64_t);
  constexpr size_t kStackTokens = 256;
  const size_t token_bytes = block_token_ids.size() * sizeof(int32_t);
  if (block_token_ids.size() <= kStackTokens) {
    alignas(16) unsigned char buffer[kHeaderBytes + kStackTokens * sizeof(int32_t)];
    const uint64_t header[3] = {parent.low, parent.high, extra.key};
    std::memcpy(buffer, header, kHeaderBytes);
    std::memcpy(buffer + kHeaderBytes, block_token_ids.data(), token_bytes);
    const XXH128_hash_t h = XXH3_128bits_withSeed(buffer, kHeaderBytes + token_bytes, seed);
    return BlockHash{h.low64, h.high64};
  }
  // Large blocks: stream rather than allocate.
  XXH3_state_t state;
  XXH3_INITSTATE(&state);
  XXH3_128bits_reset_withSeed(&state, seed);
  const uint64_t header[3] = {parent.low, parent.high, extra.key};
  XXH3_128bits_update(&state, header, kHeaderBytes);
  XXH3_128bits_update(&state, block_token_ids.data(), token_bytes);
  const XXH128_hash_t h = XXH3_128bits_digest(&state);
  return BlockHash{h.low64, h.high64};
}

}  // namespace vela

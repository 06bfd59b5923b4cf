#pragma once
// The byte-level alphabet of GPT-2 style BPE (Qwen2/3, Llama 3): every byte maps
// to one printable code point so that vocab entries are text. Printable Latin-1
// bytes map to themselves; the other 68 bytes (controls, space, 0x7F-0xA0, 0xAD)
// map to U+0100.. in byte order, e.g. ' ' -> 'Ġ' (U+0120), '\n' -> 'Ċ' (U+010A).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vela::byte_level {

// Code point that stands for byte b.
uint32_t byte_to_codepoint(uint8_t b);

// The byte a code point stands for, or nullopt when cp is not in the alphabet.
std::optional<uint8_t> codepoint_to_byte(uint32_t cp);

// Vocab form -> raw bytes ("Ġhello" -> " hello"). When some character of `token`
// is outside the alphabet (an added token written with a raw space or CJK, say),
// the token's own UTF-8 bytes are returned, as HF's ByteLevel decoder does.
std::string decode_token(std::string_view token);

// Raw bytes -> vocab form (" hello" -> "Ġhello").
std::string encode_bytes(std::string_view bytes);

}  // namespace vela::byte_level

#pragma once
// UTF-8 helpers shared by the tokenizer's encode (input validation), decode and
// incremental detokenizer, and the client protocol (every msgpack str must be UTF-8). decode() and IncrementalDetokenizer both go through
// append_utf8_lossy(), so streaming output concatenates to exactly the full decode.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vela::utf8 {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Appends code point `cp` (must be a Unicode scalar value) encoded as UTF-8.
void append_codepoint(uint32_t cp, std::string& out);

// Decodes the code point starting at text[*pos] (text must be valid UTF-8) and
// advances *pos past it.
uint32_t next_codepoint(std::string_view text, size_t* pos);

bool is_valid(std::string_view bytes);

// Appends `bytes` to `out` as UTF-8 text, replacing each maximal invalid subpart
// with one U+FFFD (the rule Rust's String::from_utf8_lossy and the Unicode standard
// use). With is_final = false, a trailing sequence that is incomplete but could
// still become valid is left unconsumed. Returns the number of bytes consumed.
size_t append_lossy(std::string_view bytes, bool is_final, std::string& out);

}  // namespace vela::utf8

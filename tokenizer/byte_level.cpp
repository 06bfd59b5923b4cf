#include "tokenizer/byte_level.h"

#include "common/utf8.h"

namespace vela::byte_level {
namespace {

bool maps_to_itself(uint32_t b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<uint32_t, 256> to_codepoint{};
  std::array<int16_t, 512> to_byte{};  // indexed by code point; -1 = not in the alphabet

  Tables() {
    to_byte.fill(-1);
    uint32_t next_extra = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t cp = maps_to_itself(b) ? b : next_extra++;
      to_codepoint[b] = cp;
      to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

uint32_t byte_to_codepoint(uint8_t b) { return tables().to_codepoint[b]; }

std::optional<uint8_t> codepoint_to_byte(uint32_t cp) {
  if (cp >= tables().to_byte.size() || tables().to_byte[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(tables().to_byte[cp]);
}

std::string decode_token(std::string_view token) {
  std::string bytes;
  bytes.reserve(token.size());
  size_t pos = 0;
  while (pos < token.size()) {
    auto b = codepoint_to_byte(utf8::next_codepoint(token, &pos));
    if (!b) return std::string(token);
    bytes.push_back(static_cast<char>(*b));
  }
  return bytes;
}

std::string encode_bytes(std::string_view bytes) {
  std::string text;
  text.reserve(bytes.size() * 2);
  for (char c : bytes) utf8::append_codepoint(byte_to_codepoint(static_cast<uint8_t>(c)), text);
  return text;
}

}  // namespace vela::byte_level

// UTF-8 lossy decoding (the rule shared by decode and streaming) and the
// byte-level alphabet.
#include <catch2/catch.hpp>

#include "tokenizer/byte_level.h"
#include "common/utf8.h"

using namespace vela;

namespace {
const std::string R = "\xEF\xBF\xBD";  // U+FFFD
std::string lossy(std::string_view bytes) {
  std::string out;
  CHECK(utf8::append_lossy(bytes, true, out) == bytes.size());
  return out;
}
}  // namespace

TEST_CASE("lossy decoding replaces each maximal invalid subpart with one U+FFFD") {
  // Expected values are what Python's bytes.decode('utf-8', 'replace') returns.
  CHECK(lossy("plain ascii") == "plain ascii");
  CHECK(lossy("\xE4\xBD\xA0\xE5\xA5\xBD") == "\xE4\xBD\xA0\xE5\xA5\xBD");  // 你好 stays
  CHECK(lossy("a\xF0\x9F\x98" "b") == "a" + R + "b");       // truncated 4-byte sequence: one
  CHECK(lossy("\xE0\x80") == R + R);                         // overlong lead, then a stray continuation
  CHECK(lossy("\xED\xA0\x80") == R + R + R);                 // a UTF-16 surrogate is not UTF-8
  CHECK(lossy("\xF4\x90\x80\x80") == R + R + R + R);         // above U+10FFFF
  CHECK(lossy("\xC0\xAF") == R + R);                         // C0/C1 never start a sequence
  CHECK(lossy("\x80\xBF") == R + R);
  CHECK(lossy("\xF0\x9F\x98") == R);                         // truncated at the end
}

TEST_CASE("non-final lossy decoding holds back a tail that may still complete") {
  std::string out;
  CHECK(utf8::append_lossy("ab\xF0\x9F", false, out) == 2);
  CHECK(out == "ab");
  out.clear();
  CHECK(utf8::append_lossy("ab\xF0" "c", false, out) == 4);  // 'c' decides: invalid now
  CHECK(out == "ab" + R + "c");
  out.clear();
  CHECK(utf8::append_lossy("\xE2\x82", false, out) == 0);
  CHECK(utf8::append_lossy("\xE2\x82\xAC", false, out) == 3);
  CHECK(out == "\xE2\x82\xAC");  // €
}

TEST_CASE("is_valid agrees with lossy decoding") {
  for (std::string_view s : {std::string_view("ok"), std::string_view("\xE2\x82\xAC"), std::string_view("\xF0\x9F\x98\x80"),
                             std::string_view("\xE2\x82"), std::string_view("\xED\xA0\x80"), std::string_view("\xFF"),
                             std::string_view("a\xC3")}) {
    std::string out;
    utf8::append_lossy(s, true, out);
    CHECK(utf8::is_valid(s) == (out == s));
  }
}

TEST_CASE("byte-level alphabet: printable bytes map to themselves, the rest to U+0100..") {
  CHECK(byte_level::byte_to_codepoint('a') == 'a');
  CHECK(byte_level::byte_to_codepoint('!') == '!');
  CHECK(byte_level::byte_to_codepoint(0x00) == 0x100);
  CHECK(byte_level::byte_to_codepoint('\n') == 0x10A);   // 'Ċ'
  CHECK(byte_level::byte_to_codepoint(' ') == 0x120);    // 'Ġ'
  CHECK(byte_level::byte_to_codepoint(0xAD) == 0x143);   // the last of the 68 remapped bytes
  for (int b = 0; b < 256; ++b) {
    CHECK(byte_level::codepoint_to_byte(byte_level::byte_to_codepoint(uint8_t(b))) == uint8_t(b));
  }
  CHECK_FALSE(byte_level::codepoint_to_byte(0x144).has_value());
  CHECK(byte_level::encode_bytes(" hello\n") == "\xC4\xA0hello\xC4\x8A");  // "Ġhello Ċ"
  CHECK(byte_level::decode_token("\xC4\xA0hello\xC4\x8A") == " hello\n");
  // A token with a character outside the alphabet decodes to its own bytes.
  CHECK(byte_level::decode_token("<raw space>") == "<raw space>");
}

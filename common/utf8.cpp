#include "common/utf8.h"

namespace vela::utf8 {

void append_codepoint(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t next_codepoint(std::string_view text, size_t* pos) {
  auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  size_t i = *pos;
  uint8_t lead = byte(i);
  if (lead < 0x80) {
    *pos = i + 1;
    return lead;
  }
  if (lead < 0xE0) {
    *pos = i + 2;
    return (uint32_t(lead & 0x1F) << 6) | (byte(i + 1) & 0x3F);
  }
  if (lead < 0xF0) {
    *pos = i + 3;
    return (uint32_t(lead & 0x0F) << 12) | (uint32_t(byte(i + 1) & 0x3F) << 6) | (byte(i + 2) & 0x3F);
  }
  *pos = i + 4;
  return (uint32_t(lead & 0x07) << 18) | (uint32_t(byte(i + 1) & 0x3F) << 12) |
         (uint32_t(byte(i + 2) & 0x3F) << 6) | (byte(i + 3) & 0x3F);
}

namespace {

// For a lead byte: how many continuation bytes follow and the allowed range of the
// first one (the narrower ranges exclude overlongs, surrogates and > U+10FFFF).
// Returns false for a byte that cannot start a sequence.
bool lead_info(uint8_t lead, int* num_continuation, uint8_t* lo, uint8_t* hi) {
  *lo = 0x80;
  *hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    *num_continuation = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    *num_continuation = 2;
    if (lead == 0xE0) *lo = 0xA0;
    if (lead == 0xED) *hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    *num_continuation = 3;
    if (lead == 0xF0) *lo = 0x90;
    if (lead == 0xF4) *hi = 0x8F;
  } else {
    return false;
  }
  return true;
}

}  // namespace

size_t append_lossy(std::string_view bytes, bool is_final, std::string& out) {
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    // ASCII runs are the common case; copy them in one go.
    size_t run_end = i;
    while (run_end < n && static_cast<uint8_t>(bytes[run_end]) < 0x80) ++run_end;
    if (run_end > i) {
      out.append(bytes.data() + i, run_end - i);
      i = run_end;
      if (i == n) break;
    }
    int num_continuation = 0;
    uint8_t lo = 0, hi = 0;
    if (!lead_info(static_cast<uint8_t>(bytes[i]), &num_continuation, &lo, &hi)) {
      out.append(kReplacementChar);
      ++i;
      continue;
    }
    size_t j = i + 1;
    int seen = 0;
    while (seen < num_continuation) {
      if (j >= n) {
        // Truncated: a later byte may complete it, unless this is the end.
        if (!is_final) return i;
        out.append(kReplacementChar);
        return n;
      }
      uint8_t c = static_cast<uint8_t>(bytes[j]);
      if (c < (seen == 0 ? lo : 0x80) || c > (seen == 0 ? hi : 0xBF)) break;
      ++j;
      ++seen;
    }
    if (seen == num_continuation) {
      out.append(bytes.data() + i, j - i);
    } else {
      out.append(kReplacementChar);  // bytes [i, j) are one maximal invalid subpart
    }
    i = j;
  }
  return n;
}

bool is_valid(std::string_view bytes) {
  // Cheap path for ASCII, then a full check through the same state machine.
  size_t i = 0;
  while (i < bytes.size() && static_cast<uint8_t>(bytes[i]) < 0x80) ++i;
  if (i == bytes.size()) return true;
  const size_t n = bytes.size();
  while (i < n) {
    uint8_t b = static_cast<uint8_t>(bytes[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    int num_continuation = 0;
    uint8_t lo = 0, hi = 0;
    if (!lead_info(b, &num_continuation, &lo, &hi)) return false;
    if (i + num_continuation >= n) return false;  // truncated at the end
    for (int k = 1; k <= num_continuation; ++k) {
      uint8_t c = static_cast<uint8_t>(bytes[i + k]);
      if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) return false;
    }
    i += num_continuation + 1;
  }
  return true;
}

}  // namespace vela::utf8

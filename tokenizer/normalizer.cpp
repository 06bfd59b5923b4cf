#include "tokenizer/normalizer.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#include <unicode/utypes.h>

#include <cstdint>

namespace vela {

Result<Normalizer> Normalizer::create(NormalizerKind kind) {
  Normalizer normalizer;
  normalizer.kind_ = kind;
  if (kind == NormalizerKind::kNfc) {
    UErrorCode status = U_ZERO_ERROR;
    normalizer.nfc_ = icu::Normalizer2::getNFCInstance(status);
    if (U_FAILURE(status)) {
      return make_error("icu", std::string("NFC normalizer unavailable from ICU: ") + u_errorName(status));
    }
  }
  return normalizer;
}

std::string_view Normalizer::apply(std::string_view text, std::string& storage) const {
  if (kind_ == NormalizerKind::kNone) return text;
  // Bytes >= 0xCC are needed to encode U+0300 and above (combining marks start
  // there); below it every character is its own NFC form.
  bool below_combining = true;
  for (char c : text) {
    if (static_cast<uint8_t>(c) >= 0xCC) {
      below_combining = false;
      break;
    }
  }
  if (below_combining) return text;

  const auto* nfc = static_cast<const icu::Normalizer2*>(nfc_);
  UErrorCode status = U_ZERO_ERROR;
  icu::StringPiece piece(text.data(), static_cast<int32_t>(text.size()));
  if (nfc->isNormalizedUTF8(piece, status) && U_SUCCESS(status)) return text;
  status = U_ZERO_ERROR;
  storage.clear();
  icu::StringByteSink<std::string> sink(&storage, static_cast<int32_t>(text.size()));
  nfc->normalizeUTF8(0, piece, sink, nullptr, status);
  // Input is valid UTF-8 (checked by the caller), so ICU has no reason to fail here.
  if (U_FAILURE(status)) return text;
  return storage;
}

}  // namespace vela

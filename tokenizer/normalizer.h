#pragma once
// Text normalizer from tokenizer.json. Qwen2/3 declare NFC; Llama 3 declares none.
// NFC goes through ICU; text whose bytes are all below 0xCC (every code point
// below U+0300, where no character changes under NFC) and text ICU's quick check
// finds already normalized are passed through without a copy.
#include <string>
#include <string_view>

#include "common/result.h"

namespace vela {

enum class NormalizerKind { kNone, kNfc };

class Normalizer {
 public:
  Normalizer() = default;
  // Fails when the kind needs ICU data that cannot be loaded.
  static Result<Normalizer> create(NormalizerKind kind);

  // Returns the normalized text: either `text` itself or a view of `storage`,
  // which is overwritten when the text has to change.
  std::string_view apply(std::string_view text, std::string& storage) const;

  NormalizerKind kind() const { return kind_; }

 private:
  NormalizerKind kind_ = NormalizerKind::kNone;
  const void* nfc_ = nullptr;  // icu::Normalizer2* (owned by ICU), kept opaque
};

}  // namespace vela

#pragma once
// Streaming detokenization: token ids go in one at a time, text comes out as soon
// as it is complete UTF-8. A token that ends inside a multi-byte character (byte
// tokens of an emoji, CJK split across tokens) holds those bytes back until a later
// token completes them, so no chunk ever carries a broken sequence. Bytes that can
// never become valid are emitted as U+FFFD right away; finalize() flushes a tail
// that stayed incomplete as U+FFFD. The concatenation of all chunks equals
// Tokenizer::decode() of the same ids (both use utf8::append_lossy).
#include <cstdint>
#include <string>

namespace vela {

class Tokenizer;

class IncrementalDetokenizer {
 public:
  // The tokenizer must outlive this object.
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens = false)
      : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

  // Returns the text completed by this token (often empty for a partial character).
  std::string push(int32_t token_id);
  // Appends it to `out` instead (no allocation when `out` has room).
  void push(int32_t token_id, std::string& out);
  // Flushes held-back bytes (an incomplete sequence becomes U+FFFD) and resets.
  std::string finalize();

  // Bytes held back waiting for the rest of a character (0..3).
  size_t num_pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;  // the start of an incomplete UTF-8 sequence
};

}  // namespace vela

#pragma once
// TextOutput: one request's generated text as the user sees it. Token ids go in as
// the engine produces them; text comes out through incremental detokenization,
// stop strings are matched on it (the text ends before the match), and what may
// be streamed is held back while it could still be the start of a stop string.
// Used by the in-process engine (`vela generate`) and the frontend actor alike.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/incremental_detokenizer.h"

namespace vela {

class Tokenizer;

class TextOutput {
 public:
  // tokenizer may be null (token ids only: no text, no stop strings).
  TextOutput(const Tokenizer* tokenizer, std::vector<std::string> stop_strings, bool skip_special_tokens = true);

  // Appends the step's tokens. Returns the stop string that matched, if one did;
  // the text then ends right before it and later calls add nothing.
  std::optional<std::string> append(const std::vector<int32_t>& token_ids);

  // The text not yet streamed that can no longer become part of a stop string.
  std::string take_streamable();
  // On finish: flushes held-back bytes (unless a stop string ended the text) and
  // returns everything not yet taken.
  std::string take_rest();

  const std::string& text() const { return text_; }
  const std::vector<int32_t>& token_ids() const { return token_ids_; }
  bool stopped() const { return stopped_; }

 private:
  std::optional<IncrementalDetokenizer> detokenizer_;
  std::vector<std::string> stop_strings_;
  size_t max_stop_bytes_ = 0;
  std::vector<int32_t> token_ids_;
  std::string text_;
  size_t taken_bytes_ = 0;   // prefix of text_ already handed out
  size_t searched_bytes_ = 0;  // text_ before this offset holds no stop string start
  bool stopped_ = false;
};

}  // namespace vela

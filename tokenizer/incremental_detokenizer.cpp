#include "tokenizer/incremental_detokenizer.h"

#include "tokenizer/tokenizer.h"
#include "common/utf8.h"

namespace vela {

std::string IncrementalDetokenizer::push(int32_t token_id) {
  std::string out;
  push(token_id, out);
  return out;
}

void IncrementalDetokenizer::push(int32_t token_id, std::string& out) {
  if (skip_special_tokens_ && tokenizer_->is_special(token_id)) return;
  std::string_view bytes = tokenizer_->token_bytes(token_id);
  if (pending_.empty()) {
    // Common case: decode straight from the token's bytes, keep only a partial tail.
    size_t consumed = utf8::append_lossy(bytes, /*is_final=*/false, out);
    pending_.assign(bytes.substr(consumed));
    return;
  }
  pending_.append(bytes);
  size_t consumed = utf8::append_lossy(pending_, /*is_final=*/false, out);
  pending_.erase(0, consumed);
}

std::string IncrementalDetokenizer::finalize() {
  std::string out;
  utf8::append_lossy(pending_, /*is_final=*/true, out);
  pending_.clear();
  return out;
}

}  // namespace vela

#pragma once
// Tokenizer for Hugging Face tokenizer.json files of the byte-level BPE kind
// (Qwen2/Qwen3, Llama 3): added/special tokens, optional NFC normalizer, the Split
// regex pre-tokenizer, ByteLevel mapping, BPE merges, ByteLevel decoding, and the
// family's chat template. tokenizer_config.json beside tokenizer.json supplies
// eos/bos and the chat template. Encode and decode are const and thread-safe.
//
//   encode: text --split on added tokens (leftmost-longest)--> segments
//           --normalize (NFC)--> --regex pre-tokenize--> pre-tokens --BPE--> ids
//   decode: ids --token bytes (byte-level chars -> bytes)--> bytes --UTF-8, lossy--> text
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace vela {

class Tokenizer {
 public:
  // Reads tokenizer.json and, when present beside it, tokenizer_config.json.
  static Result<std::unique_ptr<Tokenizer>> from_file(const std::string& tokenizer_json_path);
  // Same from JSON text; config_json may be empty. source names the input in errors.
  static Result<std::unique_ptr<Tokenizer>> from_json(std::string_view tokenizer_json, std::string_view config_json,
                                                      const std::string& source);

  // add_special_tokens adds what tokenizer.json's post_processor adds (a
  // TemplateProcessing's tokens around the text; Qwen3's and this Llama 3's
  // ByteLevel post-processors add none). Invalid UTF-8 in `text` is replaced by
  // U+FFFD before encoding.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  // Appends to `ids` (no reallocation when the caller reserved enough).
  void encode_into(std::string_view text, std::vector<int32_t>& ids, bool add_special_tokens = false) const;

  // Ids outside the vocabulary (e.g. the padded rows of a model's embedding) are
  // skipped, as HF does. Invalid UTF-8 produced by the tokens becomes U+FFFD.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  // One past the largest id of the vocabulary and the added tokens.
  int32_t vocab_size() const { return static_cast<int32_t>(token_bytes_offsets_.size()) - 1; }
  // Token in vocab form ("Ġhello") or an added token's content ("<|im_end|>").
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string_view> id_to_token(int32_t id) const;
  // The raw bytes a token decodes to; empty for an unknown id.
  std::string_view token_bytes(int32_t id) const;
  bool is_special(int32_t id) const { return id >= 0 && id < vocab_size() && is_special_[id]; }

  std::optional<int32_t> eos_token_id() const { return eos_token_id_; }
  std::optional<int32_t> bos_token_id() const { return bos_token_id_; }

  // nullptr when neither the config's chat_template nor the special tokens name a
  // supported family; chat_template_error() then says why.
  const ChatTemplate* chat_template() const { return chat_template_ ? &*chat_template_ : nullptr; }
  const std::string& chat_template_error() const { return chat_template_error_; }
  Result<std::string> apply_chat_template(const std::vector<ChatMessage>& messages,
                                          const ChatTemplateOptions& options = {}) const;

  const Normalizer& normalizer() const { return normalizer_; }
  const PreTokenizer* pre_tokenizer() const { return pre_tokenizer_ ? &*pre_tokenizer_ : nullptr; }

 private:
  friend class TokenizerLoader;
  Tokenizer() = default;
  void encode_segment(std::string_view segment, std::vector<int32_t>& ids) const;

  BpeModel bpe_;
  Normalizer normalizer_;
  std::optional<PreTokenizer> pre_tokenizer_;  // none: each segment is one pre-token
  bool add_prefix_space_ = false;              // ByteLevel pre-tokenizer's option
  AddedTokenMatcher added_tokens_;
  std::vector<int32_t> prefix_ids_, suffix_ids_;  // post-processor, for add_special_tokens

  StringIdMap token_to_id_;             // vocab-form tokens and added tokens' contents
  std::vector<std::string> id_to_token_;  // empty string for ids no token uses
  // Raw bytes of token `id`: token_bytes_[token_bytes_offsets_[id], token_bytes_offsets_[id + 1]).
  std::string token_bytes_;
  std::vector<uint32_t> token_bytes_offsets_{0};
  std::vector<uint8_t> is_special_;

  std::optional<int32_t> eos_token_id_, bos_token_id_;
  std::optional<ChatTemplate> chat_template_;
  std::string chat_template_error_;
};

}  // namespace vela

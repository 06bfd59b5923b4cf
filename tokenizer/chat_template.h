#pragma once
// Chat templates as hand-written renderers, one per model family, instead of a
// Jinja interpreter. Each renderer reproduces, character for character, what the
// Jinja template shipped in that family's tokenizer_config.json renders for the
// inputs it supports (tests compare against strings rendered by Jinja itself).
//
//   kQwen3   Qwen3's ChatML template: optional system message first, user/system/
//            assistant/tool turns, <think> handling of assistant turns after the
//            last user query, add_generation_prompt, enable_thinking = false adds
//            an empty think block. No tools list or tool_calls.
//   kChatML  Plain ChatML (Qwen2-style templates without <think>):
//            "<|im_start|>{role}\n{content}<|im_end|>\n" per message, then
//            "<|im_start|>assistant\n" when add_generation_prompt. No default system prompt.
//   kLlama3  Llama 3's template: bos_token, then per message
//            "<|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>",
//            then "<|start_header_id|>assistant<|end_header_id|>\n\n". That template
//            appends the assistant header unconditionally, so add_generation_prompt
//            is ignored for this family (as HF's renderer would).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace vela {

struct ChatMessage {
  std::string role;     // "system" | "user" | "assistant" | "tool"
  std::string content;  // text as written by the client
  // Assistant turns only (Qwen3): the model's reasoning, rendered inside <think>.
  // When absent, a "<think>...</think>" prefix of content is split off instead.
  std::optional<std::string> reasoning_content;
};

struct ChatTemplateOptions {
  bool add_generation_prompt = true;    // end with the assistant turn's opening
  std::optional<bool> enable_thinking;  // Qwen3: false adds "<think>\n\n</think>\n\n"
};

enum class ChatFamily { kQwen3, kChatML, kLlama3 };

class ChatTemplate {
 public:
  // Picks the family from the Jinja text of tokenizer_config.json's chat_template.
  // Fails, naming what it saw, when the text is not one of the supported families.
  static Result<ChatTemplate> from_jinja(std::string_view jinja_text, std::string bos_token);
  // For tokenizers without a chat_template: picks the family from the special
  // tokens the vocabulary has (<|im_start|> -> kChatML, <|start_header_id|> -> kLlama3).
  static Result<ChatTemplate> from_special_tokens(bool has_im_start, bool has_start_header_id,
                                                  std::string bos_token);
  ChatTemplate(ChatFamily family, std::string bos_token) : family_(family), bos_token_(std::move(bos_token)) {}

  // Fails on a role the family's template does not render.
  Result<std::string> render(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options) const;

  ChatFamily family() const { return family_; }
  static std::string_view family_name(ChatFamily family);

 private:
  ChatFamily family_;
  std::string bos_token_;  // Llama 3 writes it as text at the start of the prompt
};

// The renderers, one file each.
Result<std::string> render_qwen3(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options);
Result<std::string> render_chatml(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options);
Result<std::string> render_llama3(const std::vector<ChatMessage>& messages, std::string_view bos_token);

}  // namespace vela

#include "tokenizer/chat_template.h"

namespace vela {
namespace {

bool contains(std::string_view text, std::string_view needle) { return text.find(needle) != std::string_view::npos; }

// Python's str.strip() with no argument (what Jinja's `trim` filter calls): strips
// the characters str.isspace() accepts at both ends.
bool is_python_space(std::string_view text, size_t pos, size_t* length) {
  static constexpr std::string_view kMultiByte[] = {
      "\xC2\x85", "\xC2\xA0", "\xE1\x9A\x80", "\xE2\x80\x80", "\xE2\x80\x81", "\xE2\x80\x82",
      "\xE2\x80\x83", "\xE2\x80\x84", "\xE2\x80\x85", "\xE2\x80\x86", "\xE2\x80\x87", "\xE2\x80\x88",
      "\xE2\x80\x89", "\xE2\x80\x8A", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F",
      "\xE3\x80\x80"};
  unsigned char c = static_cast<unsigned char>(text[pos]);
  if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1C && c <= 0x1F)) {
    *length = 1;
    return true;
  }
  for (std::string_view space : kMultiByte) {
    if (text.substr(pos, space.size()) == space) {
      *length = space.size();
      return true;
    }
  }
  return false;
}

std::string_view python_strip(std::string_view text) {
  size_t length = 0;
  while (!text.empty() && is_python_space(text, 0, &length)) text.remove_prefix(length);
  // Scan backwards by trying each character start (UTF-8 continuation bytes are 10xxxxxx).
  while (!text.empty()) {
    size_t start = text.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    if (!is_python_space(text, start, &length) || start + length != text.size()) break;
    text.remove_suffix(length);
  }
  return text;
}

}  // namespace

Result<ChatTemplate> ChatTemplate::from_jinja(std::string_view jinja_text, std::string bos_token) {
  if (contains(jinja_text, "<|im_start|>")) {
    if (contains(jinja_text, "<think>")) return ChatTemplate(ChatFamily::kQwen3, std::move(bos_token));
    if (contains(jinja_text, "You are")) {
      return make_error("unsupported_chat_template",
                        "ChatML chat template with a built-in default system prompt is not supported "
                        "(renderers: Qwen3, plain ChatML, Llama 3)");
    }
    return ChatTemplate(ChatFamily::kChatML, std::move(bos_token));
  }
  if (contains(jinja_text, "<|start_header_id|>")) {
    if (contains(jinja_text, "Cutting Knowledge Date")) {
      return make_error("unsupported_chat_template",
                        "Llama 3.1+ chat template (system header with 'Cutting Knowledge Date', tools) is not "
                        "supported; the Llama 3 renderer follows the Llama 3.0 template");
    }
    return ChatTemplate(ChatFamily::kLlama3, std::move(bos_token));
  }
  return make_error("unsupported_chat_template",
                    "chat template uses neither <|im_start|> (ChatML/Qwen) nor <|start_header_id|> (Llama 3): '" +
                        std::string(jinja_text.substr(0, 80)) + "...'");
}

Result<ChatTemplate> ChatTemplate::from_special_tokens(bool has_im_start, bool has_start_header_id,
                                                       std::string bos_token) {
  if (has_im_start) return ChatTemplate(ChatFamily::kChatML, std::move(bos_token));
  if (has_start_header_id) return ChatTemplate(ChatFamily::kLlama3, std::move(bos_token));
  return make_error("no_chat_template",
                    "no chat_template in tokenizer_config.json and the vocabulary has neither <|im_start|> nor "
                    "<|start_header_id|>");
}

std::string_view ChatTemplate::family_name(ChatFamily family) {
  switch (family) {
    case ChatFamily::kQwen3: return "qwen3";
    case ChatFamily::kChatML: return "chatml";
    case ChatFamily::kLlama3: return "llama3";
  }
  return "unknown";
}

Result<std::string> ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                         const ChatTemplateOptions& options) const {
  switch (family_) {
    case ChatFamily::kQwen3: return render_qwen3(messages, options);
    case ChatFamily::kChatML: return render_chatml(messages, options);
    case ChatFamily::kLlama3: return render_llama3(messages, bos_token_);
  }
  return make_error("unsupported_chat_template", "unknown chat family");
}

Result<std::string> render_chatml(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options) {
  std::string out;
  for (const auto& message : messages) {
    out += "<|im_start|>";
    out += message.role;
    out += '\n';
    out += message.content;
    out += "<|im_end|>\n";
  }
  if (options.add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

// {% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] +
// '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}
// {% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}
// {{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
Result<std::string> render_llama3(const std::vector<ChatMessage>& messages, std::string_view bos_token) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0) out += bos_token;
    out += "<|start_header_id|>";
    out += messages[i].role;
    out += "<|end_header_id|>\n\n";
    out += python_strip(messages[i].content);
    out += "<|eot_id|>";
  }
  out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

}  // namespace vela

// Qwen3's chat template (tokenizer_config.json of Qwen3), without the tools list
// and tool_calls. Each block below names the Jinja it reproduces.
#include "tokenizer/chat_template.h"

namespace vela {
namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}
std::string_view lstrip_newlines(std::string_view s) {
  while (!s.empty() && s.front() == '\n') s.remove_prefix(1);
  return s;
}
std::string_view rstrip_newlines(std::string_view s) {
  while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}
// Python s.split(sep)[0] and s.split(sep)[-1].
std::string_view before_first(std::string_view s, std::string_view sep) {
  size_t at = s.find(sep);
  return at == std::string_view::npos ? s : s.substr(0, at);
}
std::string_view after_last(std::string_view s, std::string_view sep) {
  size_t at = s.rfind(sep);
  return at == std::string_view::npos ? s : s.substr(at + sep.size());
}

bool is_tool_response(std::string_view content) {
  return starts_with(content, "<tool_response>") && ends_with(content, "</tool_response>");
}

}  // namespace

Result<std::string> render_qwen3(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options) {
  const int64_t num_messages = static_cast<int64_t>(messages.size());
  if (messages.empty()) {
    // The template reads messages[0]; Jinja fails on an empty list, and so do we.
    return make_error("no_messages", "Qwen3 chat template needs at least one message");
  }
  for (const auto& m : messages) {
    if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool") {
      return make_error("bad_role", "Qwen3 chat template renders roles system, user, assistant and tool; got '" +
                                        m.role + "'");
    }
  }
  std::string out;
  // {%- if messages[0].role == 'system' %} '<|im_start|>system\n' + content + '<|im_end|>\n'
  if (!messages.empty() && messages[0].role == "system") {
    out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
  }
  // The last user turn that is not a wrapped tool response; assistant turns after
  // it keep their <think> block, earlier ones lose it.
  int64_t last_query_index = num_messages - 1;
  for (int64_t i = num_messages - 1; i >= 0; --i) {
    if (messages[i].role == "user" && !is_tool_response(messages[i].content)) {
      last_query_index = i;
      break;
    }
  }
  for (int64_t i = 0; i < num_messages; ++i) {
    const ChatMessage& message = messages[i];
    const bool is_last = i == num_messages - 1;
    if (message.role == "user" || (message.role == "system" && i != 0)) {
      out += "<|im_start|>" + message.role + "\n" + message.content + "<|im_end|>\n";
    } else if (message.role == "assistant") {
      std::string_view content = message.content;
      std::string_view reasoning;
      if (message.reasoning_content) {
        reasoning = *message.reasoning_content;
      } else if (content.find("</think>") != std::string_view::npos) {
        // content.split('</think>')[-1].lstrip('\n');
        // content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
        std::string_view full = message.content;
        content = lstrip_newlines(after_last(full, "</think>"));
        reasoning = lstrip_newlines(after_last(rstrip_newlines(before_first(full, "</think>")), "<think>"));
      }
      out += "<|im_start|>assistant\n";
      if (i > last_query_index && (is_last || !reasoning.empty())) {
        // '<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n')
        out += "<think>\n";
        out += rstrip_newlines(lstrip_newlines(reasoning));
        out += "\n</think>\n\n";
        out += lstrip_newlines(content);
      } else {
        out += content;
      }
      out += "<|im_end|>\n";
    } else if (message.role == "tool") {
      // Consecutive tool turns share one user turn.
      if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + message.content + "\n</tool_response>";
      if (is_last || messages[i + 1].role != "tool") out += "<|im_end|>\n";
    }
  }
  if (options.add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (options.enable_thinking.has_value() && !*options.enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

}  // namespace vela

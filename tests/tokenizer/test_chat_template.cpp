// Chat renderers against the strings the Jinja templates of the reference
// tokenizer_config.json files render (chat_expected.json, written by
// make_chat_expected.py with jinja2 under HF's settings).
#include "reference_tokenizers.h"

using namespace vela;
using vela::testing::read_json;
using vela::testing::reference_tokenizer;

TEST_CASE("each family is recognised from its tokenizer_config.json chat_template") {
  REQUIRE(reference_tokenizer("qwen3").chat_template() != nullptr);
  CHECK(reference_tokenizer("qwen3").chat_template()->family() == ChatFamily::kQwen3);
  REQUIRE(reference_tokenizer("llama3").chat_template() != nullptr);
  CHECK(reference_tokenizer("llama3").chat_template()->family() == ChatFamily::kLlama3);
}

TEST_CASE("renderings equal the Jinja template's output, case by case") {
  auto expected = read_json(std::string(VELA_SOURCE_DIR) + "/tests/tokenizer/chat_expected.json");
  REQUIRE(expected["cases"].size() >= 40);
  for (const auto& c : expected["cases"]) {
    const Tokenizer& tok = reference_tokenizer(c["family"]);
    std::vector<ChatMessage> messages;
    for (const auto& m : c["messages"]) {
      ChatMessage message{m["role"], m["content"], std::nullopt};
      if (m.contains("reasoning_content")) message.reasoning_content = m["reasoning_content"].get<std::string>();
      messages.push_back(std::move(message));
    }
    ChatTemplateOptions options;
    options.add_generation_prompt = c["add_generation_prompt"];
    if (!c["enable_thinking"].is_null()) options.enable_thinking = c["enable_thinking"].get<bool>();
    auto rendered = tok.apply_chat_template(messages, options);
    INFO(c["family"].get<std::string>() << " / " << c["name"].get<std::string>());
    if (c["expected"].is_null()) {
      CHECK_FALSE(rendered.ok());  // the Jinja template fails on this input too
    } else {
      REQUIRE(rendered.ok());
      CHECK(rendered.value() == c["expected"].get<std::string>());
    }
  }
}

TEST_CASE("a rendered prompt tokenizes its markers as special tokens") {
  const Tokenizer& qwen = reference_tokenizer("qwen3");
  auto prompt = qwen.apply_chat_template({{"user", "Hi", std::nullopt}});
  REQUIRE(prompt.ok());
  auto ids = qwen.encode(prompt.value());
  CHECK(ids.front() == *qwen.token_to_id("<|im_start|>"));
  CHECK(std::count(ids.begin(), ids.end(), *qwen.token_to_id("<|im_end|>")) == 1);

  const Tokenizer& llama = reference_tokenizer("llama3");
  auto llama_prompt = llama.apply_chat_template({{"user", "Hi", std::nullopt}});
  REQUIRE(llama_prompt.ok());
  auto llama_ids = llama.encode(llama_prompt.value());
  CHECK(llama_ids.front() == llama.bos_token_id());
  CHECK(std::count(llama_ids.begin(), llama_ids.end(), *llama.token_to_id("<|start_header_id|>")) == 2);
}

TEST_CASE("family detection: plain ChatML, fallbacks, and templates not supported") {
  auto chatml = ChatTemplate::from_jinja(
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
      "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
      "");
  REQUIRE(chatml.ok());
  CHECK(chatml->family() == ChatFamily::kChatML);
  auto text = chatml->render({{"user", "hi", std::nullopt}, {"assistant", "yo", std::nullopt}}, {});
  REQUIRE(text.ok());
  CHECK(text.value() == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n<|im_start|>assistant\n");

  auto qwen25 = ChatTemplate::from_jinja("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.", "");
  REQUIRE_FALSE(qwen25.ok());
  CHECK(qwen25.error().message.find("default system prompt") != std::string::npos);
  auto llama31 = ChatTemplate::from_jinja("<|start_header_id|>system<|end_header_id|>Cutting Knowledge Date", "");
  REQUIRE_FALSE(llama31.ok());
  CHECK(llama31.error().message.find("Llama 3.1") != std::string::npos);
  auto other = ChatTemplate::from_jinja("[INST] {{ message }} [/INST]", "");
  REQUIRE_FALSE(other.ok());
  CHECK(other.error().message.find("[INST]") != std::string::npos);

  CHECK(ChatTemplate::from_special_tokens(true, false, "")->family() == ChatFamily::kChatML);
  CHECK(ChatTemplate::from_special_tokens(false, true, "<s>")->family() == ChatFamily::kLlama3);
  CHECK_FALSE(ChatTemplate::from_special_tokens(false, false, "").ok());
}

TEST_CASE("Qwen3 rejects roles its template does not render") {
  auto r = reference_tokenizer("qwen3").apply_chat_template({{"function", "x", std::nullopt}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("'function'") != std::string::npos);
}

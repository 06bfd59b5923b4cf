// The response side of the OpenAI mapping: ServerEvents -> SSE chunks or one JSON
// body per request, logprobs in the completions and chat shapes.
#include <nlohmann/json.hpp>

#include "common/utf8.h"
#include "http/json_text.h"
#include "http/openai_api.h"
#include "tokenizer/tokenizer.h"

namespace vela::http {
namespace {

using json = nlohmann::json;

// The text a token stands for, as UTF-8 (a partial character becomes U+FFFD).
std::string token_text(const Tokenizer* tokenizer, int32_t id) {
  if (!tokenizer) return "token_id:" + std::to_string(id);
  std::string out;
  utf8::append_lossy(tokenizer->token_bytes(id), true, out);
  return out;
}

json byte_list(const Tokenizer* tokenizer, int32_t id) {
  json bytes = json::array();
  if (tokenizer)
    for (unsigned char c : tokenizer->token_bytes(id)) bytes.push_back(int(c));
  return bytes;
}

// Chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
json chat_logprobs(const Tokenizer* tokenizer, const std::vector<int32_t>& ids, const std::vector<TokenLogprobs>& lps) {
  json content = json::array();
  for (size_t i = 0; i < lps.size() && i < ids.size(); ++i) {
    json top = json::array();
    for (size_t k = 0; k < lps[i].top_ids.size(); ++k)
      top.push_back({{"token", token_text(tokenizer, lps[i].top_ids[k])},
                     {"logprob", lps[i].top_logprobs[k]},
                     {"bytes", byte_list(tokenizer, lps[i].top_ids[k])}});
    content.push_back({{"token", token_text(tokenizer, ids[i])},
                       {"logprob", lps[i].logprob},
                       {"bytes", byte_list(tokenizer, ids[i])},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}};
}

// Completions: {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"}.
json completion_logprobs(const Tokenizer* tokenizer, const std::vector<int32_t>& ids,
                         const std::vector<TokenLogprobs>& lps, size_t* text_offset) {
  json tokens = json::array(), token_lps = json::array(), tops = json::array(), offsets = json::array();
  for (size_t i = 0; i < lps.size() && i < ids.size(); ++i) {
    const std::string t = token_text(tokenizer, ids[i]);
    tokens.push_back(t);
    token_lps.push_back(lps[i].logprob);
    json top = json::object();
    for (size_t k = 0; k < lps[i].top_ids.size(); ++k) top[token_text(tokenizer, lps[i].top_ids[k])] = lps[i].top_logprobs[k];
    tops.push_back(std::move(top));
    offsets.push_back(*text_offset);
    *text_offset += t.size();
  }
  return {{"tokens", tokens}, {"token_logprobs", token_lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

}  // namespace

ResponseBuilder::ResponseBuilder(const ParsedRequest& request, const Tokenizer* tokenizer, std::string id,
                                 int64_t created_s, std::string model_name)
    : endpoint_(request.endpoint),
      stream_(request.stream),
      include_usage_(request.include_usage),
      n_(request.n),
      top_logprobs_(request.top_logprobs),
      tokenizer_(tokenizer),
      id_(std::move(id)),
      created_s_(created_s),
      model_name_(std::move(model_name)),
      choices_(request.choices.size()) {}

std::string ResponseBuilder::chunk(size_t index, const std::string& text, const std::vector<int32_t>& token_ids,
                                   const std::optional<std::vector<TokenLogprobs>>& logprobs,
                                   const std::string& finish_reason, const std::string& stop_reason) {
  Choice& c = choices_[index];
  json choice = {{"index", index}};
  json lp = nullptr;
  if (top_logprobs_ >= 0 && logprobs)
    lp = endpoint_ == Endpoint::kChat ? chat_logprobs(tokenizer_, token_ids, *logprobs)
                                      : completion_logprobs(tokenizer_, token_ids, *logprobs, &c.text_offset);
  if (endpoint_ == Endpoint::kChat) {
    json delta = json::object();
    if (!c.sent_role) {
      delta["role"] = "assistant";
      c.sent_role = true;
    }
    if (!text.empty() || delta.contains("role")) delta["content"] = text;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = std::move(lp);
  choice["finish_reason"] = finish_reason.empty() ? json(nullptr) : json(finish_reason);
  choice["stop_reason"] = stop_reason.empty() ? json(nullptr) : json(stop_reason);
  json body = {{"id", id_},
               {"object", endpoint_ == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
               {"created", created_s_},
               {"model", model_name_},
               {"choices", json::array({std::move(choice)})}};
  if (include_usage_) body["usage"] = nullptr;
  return "data: " + dump(body) + "\n\n";
}

std::string ResponseBuilder::usage_json() const {
  int64_t prompt = 0, completion = 0, cached = 0;
  for (size_t i = 0; i < choices_.size(); ++i) {
    if (i % static_cast<size_t>(n_) == 0) {  // the prompt counts once, not once per choice
      prompt += choices_[i].num_prompt_tokens;
      cached += choices_[i].num_cached_tokens;
    }
    completion += choices_[i].num_output_tokens;
  }
  return dump(json{{"prompt_tokens", prompt},
                   {"completion_tokens", completion},
                   {"total_tokens", prompt + completion},
                   {"prompt_tokens_details", {{"cached_tokens", cached}}}});
}

std::string ResponseBuilder::on_event(size_t index, const client::ServerEvent& ev) {
  if (index >= choices_.size()) return "";
  Choice& c = choices_[index];
  if (c.finished) return "";
  std::string out;
  const bool is_final = ev.kind == client::ServerEvent::Kind::kFinal;
  if (is_final) {
    c.finished = true;
    ++num_finished_;
    c.finish_reason = ev.finish_reason;
    c.stop_reason = ev.stop_reason;
    c.num_prompt_tokens = ev.num_prompt_tokens;
    c.num_output_tokens = ev.num_output_tokens;
    c.num_cached_tokens = ev.num_cached_tokens;
    if (ev.finish_reason == "error") c.error = ev.message.empty() ? "the request failed" : ev.message;
  }
  if (!stream_) {
    c.text += ev.text;
    c.token_ids.insert(c.token_ids.end(), ev.token_ids.begin(), ev.token_ids.end());
    if (ev.logprobs) c.logprobs.insert(c.logprobs.end(), ev.logprobs->begin(), ev.logprobs->end());
    return "";
  }
  if (is_final && ev.finish_reason == "error") {
    out += stream_error(ApiError{500, "server_error", c.error, "", "engine_error"});
  } else if (!ev.text.empty() || !ev.token_ids.empty() || is_final) {
    out += chunk(index, ev.text, ev.token_ids, ev.logprobs, is_final ? ev.finish_reason : "", is_final ? ev.stop_reason : "");
  }
  if (done()) {
    if (include_usage_) {
      json body = {{"id", id_},
                   {"object", endpoint_ == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
                   {"created", created_s_},
                   {"model", model_name_},
                   {"choices", json::array()},
                   {"usage", json::parse(usage_json())}};
      out += "data: " + dump(body) + "\n\n";
    }
    out += "data: [DONE]\n\n";
  }
  return out;
}

std::string ResponseBuilder::stream_error(const ApiError& error) { return "data: " + error_body(error) + "\n\n"; }

std::variant<std::string, ApiError> ResponseBuilder::full_response() const {
  json choices = json::array();
  size_t num_errors = 0;
  std::string first_error;
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    if (!c.error.empty()) {
      if (num_errors++ == 0) first_error = c.error;
    }
    json lp = nullptr;
    if (top_logprobs_ >= 0) {
      size_t offset = 0;
      lp = endpoint_ == Endpoint::kChat ? chat_logprobs(tokenizer_, c.token_ids, c.logprobs)
                                        : completion_logprobs(tokenizer_, c.token_ids, c.logprobs, &offset);
    }
    json choice = {{"index", i}};
    if (endpoint_ == Endpoint::kChat) choice["message"] = {{"role", "assistant"}, {"content", c.text}};
    else choice["text"] = c.text;
    choice["logprobs"] = std::move(lp);
    choice["finish_reason"] = c.finish_reason.empty() ? json(nullptr) : json(c.finish_reason);
    choice["stop_reason"] = c.stop_reason.empty() ? json(nullptr) : json(c.stop_reason);
    choices.push_back(std::move(choice));
  }
  if (num_errors > 0) return ApiError{500, "server_error", first_error, "", "engine_error"};
  json body = {{"id", id_},
               {"object", endpoint_ == Endpoint::kChat ? "chat.completion" : "text_completion"},
               {"created", created_s_},
               {"model", model_name_},
               {"choices", std::move(choices)},
               {"usage", json::parse(usage_json())}};
  return dump(body);
}

}  // namespace vela::http

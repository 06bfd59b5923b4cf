// The request side of the OpenAI mapping: bodies -> choices, refusals by name,
// /tokenize, /detokenize, /v1/models, errors.
#include "http/openai_api.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <set>

#include "http/json_text.h"
#include "tokenizer/tokenizer.h"

namespace vela::http {
namespace {

using json = nlohmann::json;

constexpr int32_t kMaxChoices = 128;  // n above this is refused (each choice is a request)


ApiError bad(std::string param, std::string message, std::string code = "invalid_value") {
  return ApiError{400, "invalid_request_error", std::move(message), std::move(param), std::move(code)};
}

// ---- typed reads; each failure names the parameter ------------------------
struct Refused {
  ApiError error;
};

int64_t get_int(const json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
    throw Refused{bad(name, "'" + name + "' must be an integer, got " + dump(v), "bad_type")};
  const double d = v.get<double>();
  if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
    throw Refused{bad(name, "'" + name + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + dump(v))};
  return v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(d);
}

float get_float(const json& v, const std::string& name) {
  if (!v.is_number()) throw Refused{bad(name, "'" + name + "' must be a number, got " + dump(v), "bad_type")};
  return v.get<float>();
}

bool get_bool(const json& v, const std::string& name) {
  if (!v.is_boolean()) throw Refused{bad(name, "'" + name + "' must be true or false, got " + dump(v), "bad_type")};
  return v.get<bool>();
}

std::string get_string(const json& v, const std::string& name) {
  if (!v.is_string()) throw Refused{bad(name, "'" + name + "' must be a string, got " + dump(v), "bad_type")};
  return v.get<std::string>();
}

std::vector<int32_t> get_ids(const json& v, const std::string& name) {
  if (!v.is_array()) throw Refused{bad(name, "'" + name + "' must be a list of token ids", "bad_type")};
  std::vector<int32_t> ids;
  for (size_t i = 0; i < v.size(); ++i)
    ids.push_back(static_cast<int32_t>(get_int(v[i], name + "[" + std::to_string(i) + "]", 0,
                                               std::numeric_limits<int32_t>::max())));
  return ids;
}

// prompt: a string, a list of token ids, or a list of either (one request each).
std::vector<client::GenerateRequest> get_prompts(const json& v) {
  std::vector<client::GenerateRequest> out;
  auto text = [&](std::string s) {
    client::GenerateRequest g;
    g.prompt = std::move(s);
    out.push_back(std::move(g));
  };
  auto ids = [&](std::vector<int32_t> t) {
    client::GenerateRequest g;
    g.prompt_token_ids = std::move(t);
    out.push_back(std::move(g));
  };
  if (v.is_string()) {
    text(v.get<std::string>());
  } else if (v.is_array() && !v.empty() && v[0].is_number()) {
    ids(get_ids(v, "prompt"));
  } else if (v.is_array() && !v.empty()) {
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string name = "prompt[" + std::to_string(i) + "]";
      if (v[i].is_string()) text(v[i].get<std::string>());
      else if (v[i].is_array()) ids(get_ids(v[i], name));
      else throw Refused{bad(name, "'" + name + "' must be a string or a list of token ids", "bad_type")};
    }
  } else {
    throw Refused{bad("prompt", "'prompt' must be a non-empty string, list of token ids, or list of either", "bad_type")};
  }
  return out;
}

std::vector<client::ChatTurn> get_messages(const json& v) {
  if (!v.is_array() || v.empty()) throw Refused{bad("messages", "'messages' must be a non-empty list", "bad_type")};
  std::vector<client::ChatTurn> turns;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string name = "messages[" + std::to_string(i) + "]";
    const json& m = v[i];
    if (!m.is_object()) throw Refused{bad(name, "'" + name + "' must be an object", "bad_type")};
    client::ChatTurn t;
    bool has_role = false, has_content = false;
    for (const auto& [key, value] : m.items()) {
      if (key == "role") {
        t.role = get_string(value, name + ".role");
        has_role = true;
      } else if (key == "content") {
        has_content = true;
        if (value.is_string()) {
          t.content = value.get<std::string>();
        } else if (value.is_array()) {  // content parts: text only
          for (size_t p = 0; p < value.size(); ++p) {
            const std::string part = name + ".content[" + std::to_string(p) + "]";
            const json& e = value[p];
            if (!e.is_object() || !e.contains("type") || e["type"] != "text" || !e.contains("text") || !e["text"].is_string())
              throw Refused{bad(part, "'" + part + "': only {\"type\": \"text\", \"text\": ...} parts are supported")};
            t.content += e["text"].get<std::string>();
          }
        } else {
          throw Refused{bad(name + ".content", "'" + name + ".content' must be a string or a list of text parts", "bad_type")};
        }
      } else {
        throw Refused{bad(name + "." + key, "unknown or unsupported parameter '" + name + "." + key + "'", "unknown_field")};
      }
    }
    if (!has_role) throw Refused{bad(name + ".role", "'" + name + ".role' is required", "missing_field")};
    if (t.role != "system" && t.role != "user" && t.role != "assistant" && t.role != "tool")
      throw Refused{bad(name + ".role", "'" + name + ".role' = '" + t.role + "' is not one of system, user, assistant, tool")};
    if (!has_content) throw Refused{bad(name + ".content", "'" + name + ".content' is required", "missing_field")};
    turns.push_back(std::move(t));
  }
  return turns;
}

std::vector<std::string> get_stop(const json& v) {
  if (v.is_string()) return {v.get<std::string>()};
  if (!v.is_array()) throw Refused{bad("stop", "'stop' must be a string or a list of strings", "bad_type")};
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) out.push_back(get_string(v[i], "stop[" + std::to_string(i) + "]"));
  return out;
}

ParsedRequest parse(Endpoint endpoint, const json& body, const std::string& served_model_name) {
  if (!body.is_object()) throw Refused{bad("", "the request body must be a JSON object", "malformed")};
  const bool chat = endpoint == Endpoint::kChat;
  ParsedRequest r;
  r.endpoint = endpoint;
  SamplingParams params;
  std::vector<client::GenerateRequest> prompts;
  std::optional<std::vector<client::ChatTurn>> messages;
  std::optional<int64_t> seed, max_tokens;
  bool chat_logprobs = false, has_stream_options = false;
  std::optional<int64_t> top_logprobs, completion_logprobs;
  for (const auto& [key, v] : body.items()) {
    if (v.is_null()) continue;  // null = absent, as the OpenAI clients send it
    if (key == "model") r.model = get_string(v, key);
    else if (key == "prompt" && !chat) prompts = get_prompts(v);
    else if (key == "messages" && chat) messages = get_messages(v);
    else if (key == "max_tokens" || (key == "max_completion_tokens" && chat)) max_tokens = get_int(v, key, 1, std::numeric_limits<int32_t>::max());
    else if (key == "temperature") params.temperature = get_float(v, key);
    else if (key == "top_p") params.top_p = get_float(v, key);
    else if (key == "top_k") params.top_k = std::max(0, static_cast<int32_t>(get_int(v, key, -1, std::numeric_limits<int32_t>::max())));  // -1 = off, as vLLM spells it
    else if (key == "min_p") params.min_p = get_float(v, key);
    else if (key == "seed") seed = get_int(v, key, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
    else if (key == "stop") params.stop = get_stop(v);
    else if (key == "stop_token_ids") params.stop_token_ids = get_ids(v, key);
    else if (key == "presence_penalty") params.presence_penalty = get_float(v, key);
    else if (key == "frequency_penalty") params.frequency_penalty = get_float(v, key);
    else if (key == "repetition_penalty") params.repetition_penalty = get_float(v, key);
    else if (key == "min_tokens") params.min_tokens = static_cast<int32_t>(get_int(v, key, 0, std::numeric_limits<int32_t>::max()));
    else if (key == "ignore_eos") params.ignore_eos = get_bool(v, key);
    else if (key == "n") r.n = static_cast<int32_t>(get_int(v, key, 1, kMaxChoices));
    else if (key == "user") (void)get_string(v, key);  // accepted; not used
    else if (key == "stream") r.stream = get_bool(v, key);
    else if (key == "stream_options") {
      if (!v.is_object()) throw Refused{bad(key, "'stream_options' must be an object", "bad_type")};
      has_stream_options = true;
      for (const auto& [k2, v2] : v.items()) {
        if (k2 == "include_usage") r.include_usage = !v2.is_null() && get_bool(v2, "stream_options.include_usage");
        else throw Refused{bad("stream_options." + k2, "unknown or unsupported parameter 'stream_options." + k2 + "'", "unknown_field")};
      }
    } else if (key == "logprobs" && chat) chat_logprobs = get_bool(v, key);
    else if (key == "top_logprobs" && chat) top_logprobs = get_int(v, key, 0, 20);
    else if (key == "logprobs" && !chat) completion_logprobs = get_int(v, key, 0, 20);
    else throw Refused{bad(key, "unknown or unsupported parameter '" + key + "'", "unknown_field")};
  }
  if (!r.model.empty() && r.model != served_model_name)
    throw Refused{ApiError{404, "NotFoundError", "The model '" + r.model + "' does not exist (this server serves '" +
                                                     served_model_name + "')", "model", "model_not_found"}};
  if (has_stream_options && !r.stream)
    throw Refused{bad("stream_options", "'stream_options' is only allowed when 'stream' is true")};
  if (chat) {
    if (!messages) throw Refused{bad("messages", "'messages' is required", "missing_field")};
    if (top_logprobs && !chat_logprobs)
      throw Refused{bad("top_logprobs", "'top_logprobs' needs 'logprobs': true")};
    if (chat_logprobs) r.top_logprobs = static_cast<int32_t>(top_logprobs.value_or(0));
    client::GenerateRequest g;
    g.messages = std::move(*messages);
    prompts.push_back(std::move(g));
  } else {
    if (prompts.empty()) throw Refused{bad("prompt", "'prompt' is required", "missing_field")};
    if (completion_logprobs) r.top_logprobs = static_cast<int32_t>(*completion_logprobs);
  }
  params.logprobs = r.top_logprobs;
  if (max_tokens) params.max_tokens = static_cast<int32_t>(*max_tokens);
  else if (chat) r.max_tokens_auto = true;  // the FrontendActor fills in what is left of the context
  else params.max_tokens = 16;              // OpenAI's default for completions
  r.num_prompts = static_cast<int32_t>(prompts.size());
  if (static_cast<int64_t>(r.num_prompts) * r.n > kMaxChoices)
    throw Refused{bad("n", "prompts x n is " + std::to_string(int64_t{r.num_prompts} * r.n) + ", at most " +
                               std::to_string(kMaxChoices) + " choices per request")};
  for (auto& p : prompts) {
    for (int32_t i = 0; i < r.n; ++i) {
      client::GenerateRequest g = p;
      g.request_id = std::to_string(r.choices.size());
      g.params = params;
      // n choices of one seeded request differ (seed + i) and stay reproducible.
      if (seed) g.params.seed = static_cast<uint64_t>(*seed) + static_cast<uint64_t>(i);
      g.stream = r.stream;
      r.choices.push_back(std::move(g));
    }
  }
  return r;
}

std::string strip_params_prefix(const std::string& field) {
  if (field.rfind("params.", 0) == 0) {
    std::string f = field.substr(7);
    if (f == "logprobs") return "logprobs";
    return f;
  }
  if (field.rfind("prompt_token_ids", 0) == 0) return "prompt";
  return field;
}

}  // namespace

std::string error_body(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}, {"param", e.param.empty() ? json(nullptr) : json(e.param)},
              {"code", e.code.empty() ? json(nullptr) : json(e.code)}};
  return dump(json{{"error", err}});
}

ApiError from_protocol_error(const std::string& code, const std::string& field, const std::string& message) {
  ApiError e{400, "invalid_request_error", message, strip_params_prefix(field), code};
  if (code == "busy") e.status = 429, e.type = "rate_limit_error";
  else if (code == "draining" || code == "unavailable") e.status = 503, e.type = "service_unavailable";
  else if (code == "too_large") e.status = 413;
  return e;
}

std::variant<ParsedRequest, ApiError> parse_request(Endpoint endpoint, std::string_view body,
                                                    const std::string& served_model_name) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("", "the request body is not valid JSON", "malformed");
  try {
    return parse(endpoint, j, served_model_name);
  } catch (const Refused& r) {
    return r.error;
  } catch (const json::exception& e) {  // a value of an unexpected type deep inside
    return bad("", std::string("malformed request: ") + e.what(), "malformed");
  }
}

std::variant<std::string, ApiError> tokenize(std::string_view body, const Tokenizer* tokenizer,
                                             const std::string& served_model_name, int32_t max_model_len) {
  if (!tokenizer) return ApiError{400, "invalid_request_error", "this server has no tokenizer", "", "no_tokenizer"};
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("", "the request body must be a JSON object", "malformed");
  try {
    std::optional<std::string> prompt;
    std::optional<std::vector<client::ChatTurn>> messages;
    bool add_special = false;
    for (const auto& [key, v] : j.items()) {
      if (v.is_null()) continue;
      if (key == "model") {
        if (get_string(v, key) != served_model_name)
          return ApiError{404, "NotFoundError", "The model '" + v.get<std::string>() + "' does not exist", "model", "model_not_found"};
      } else if (key == "prompt") prompt = get_string(v, key);
      else if (key == "messages") messages = get_messages(v);
      else if (key == "add_special_tokens") add_special = get_bool(v, key);
      else return bad(key, "unknown or unsupported parameter '" + key + "'", "unknown_field");
    }
    if (prompt.has_value() == messages.has_value()) return bad("prompt", "exactly one of 'prompt' and 'messages' is required", "missing_field");
    std::string text;
    if (messages) {
      std::vector<ChatMessage> chat;
      for (auto& t : *messages) chat.push_back(ChatMessage{t.role, t.content, std::nullopt});
      auto rendered = tokenizer->apply_chat_template(chat);
      if (!rendered) return bad("messages", "cannot render the chat template: " + rendered.error().message);
      text = *rendered;
    } else {
      text = *prompt;
    }
    auto ids = tokenizer->encode(text, add_special);
    return dump(json{{"tokens", ids}, {"count", ids.size()}, {"max_model_len", max_model_len}});
  } catch (const Refused& r) {
    return r.error;
  }
}

std::variant<std::string, ApiError> detokenize(std::string_view body, const Tokenizer* tokenizer,
                                               const std::string& served_model_name) {
  if (!tokenizer) return ApiError{400, "invalid_request_error", "this server has no tokenizer", "", "no_tokenizer"};
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("", "the request body must be a JSON object", "malformed");
  try {
    std::optional<std::vector<int32_t>> tokens;
    for (const auto& [key, v] : j.items()) {
      if (v.is_null()) continue;
      if (key == "model") {
        if (get_string(v, key) != served_model_name)
          return ApiError{404, "NotFoundError", "The model '" + v.get<std::string>() + "' does not exist", "model", "model_not_found"};
      } else if (key == "tokens") tokens = get_ids(v, key);
      else return bad(key, "unknown or unsupported parameter '" + key + "'", "unknown_field");
    }
    if (!tokens) return bad("tokens", "'tokens' is required", "missing_field");
    for (size_t i = 0; i < tokens->size(); ++i)
      if ((*tokens)[i] >= tokenizer->vocab_size())
        return bad("tokens[" + std::to_string(i) + "]", "token id " + std::to_string((*tokens)[i]) + " is not in the vocabulary");
    return dump(json{{"prompt", tokenizer->decode(*tokens)}});
  } catch (const Refused& r) {
    return r.error;
  }
}

std::string models_body(const std::string& served_model_name, int32_t max_model_len, int64_t created_s) {
  json model = {{"id", served_model_name}, {"object", "model"}, {"created", created_s},
                {"owned_by", "vela"},     {"root", served_model_name}, {"max_model_len", max_model_len}};
  return dump(json{{"object", "list"}, {"data", json::array({model})}});
}

bool keys_equal(std::string_view presented, std::string_view expected) {
  // Every byte of the presented key is compared (against the expected key cycled),
  // with no early exit; a length difference only sets the result.
  unsigned diff = presented.size() != expected.size() ? 1u : 0u;
  if (expected.empty()) return presented.empty();
  for (size_t i = 0; i < presented.size(); ++i)
    diff |= static_cast<unsigned char>(presented[i]) ^ static_cast<unsigned char>(expected[i % expected.size()]);
  return diff == 0;
}

}  // namespace vela::http

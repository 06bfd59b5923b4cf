// The OpenAI mapping (http/openai_api) without sockets: requests become choices,
// refusals name the parameter, events become byte-exact SSE chunks and responses.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "http/http_server.h"
#include "http/openai_api.h"

using namespace vela;
using namespace vela::http;
using json = nlohmann::json;
using client::ServerEvent;

namespace {

ParsedRequest parsed(Endpoint e, const std::string& body) {
  auto r = parse_request(e, body, "demo");
  if (auto* err = std::get_if<ApiError>(&r)) FAIL(err->message);
  return std::get<ParsedRequest>(r);
}

ApiError refused(Endpoint e, const std::string& body) {
  auto r = parse_request(e, body, "demo");
  REQUIRE(std::holds_alternative<ApiError>(r));
  return std::get<ApiError>(r);
}

ServerEvent delta(const std::string& choice, const std::string& text, std::vector<int32_t> ids) {
  ServerEvent ev;
  ev.kind = ServerEvent::Kind::kDelta;
  ev.request_id = choice;
  ev.text = text;
  ev.token_ids = std::move(ids);
  return ev;
}

ServerEvent final_event(const std::string& choice, const std::string& text, const std::string& reason, int32_t prompt,
                        int32_t output) {
  ServerEvent ev;
  ev.kind = ServerEvent::Kind::kFinal;
  ev.request_id = choice;
  ev.text = text;
  ev.finish_reason = reason;
  ev.num_prompt_tokens = prompt;
  ev.num_output_tokens = output;
  return ev;
}

}  // namespace

TEST_CASE("completions: prompts x n become choices; seeded choices differ by their index") {
  auto r = parsed(Endpoint::kCompletions,
                  R"({"model":"demo","prompt":["a",[5,6]],"n":2,"seed":7,"max_tokens":3,"temperature":0.5,"stop":"x","user":"u"})");
  REQUIRE(r.choices.size() == 4);
  CHECK(r.num_prompts == 2);
  CHECK(r.choices[0].request_id == "0");
  CHECK(r.choices[3].request_id == "3");
  CHECK(*r.choices[1].prompt == "a");
  CHECK(*r.choices[2].prompt_token_ids == std::vector<int32_t>{5, 6});
  CHECK(*r.choices[0].params.seed == 7);
  CHECK(*r.choices[1].params.seed == 8);
  CHECK(r.choices[0].params.max_tokens == 3);
  CHECK(r.choices[0].params.stop == std::vector<std::string>{"x"});
  CHECK(r.choices[0].params.temperature == 0.5f);
  CHECK(r.top_logprobs == -1);
  CHECK_FALSE(r.stream);
  // Defaults: 16 tokens for completions, "what fits" for chat.
  CHECK(parsed(Endpoint::kCompletions, R"({"prompt":"a"})").choices[0].params.max_tokens == 16);
  CHECK(parsed(Endpoint::kChat, R"({"messages":[{"role":"user","content":"hi"}]})").max_tokens_auto);
}

TEST_CASE("unknown, unsupported and mistyped parameters are refused by name") {
  auto e = refused(Endpoint::kCompletions, R"({"prompt":"a","echo":true})");
  CHECK(e.status == 400);
  CHECK(e.param == "echo");
  CHECK(e.code == "unknown_field");
  CHECK(refused(Endpoint::kCompletions, R"({"prompt":"a","stream_options":{"include_usage":true}})").param == "stream_options");
  CHECK(refused(Endpoint::kCompletions, R"({"prompt":"a","stream":true,"stream_options":{"x":1}})").param == "stream_options.x");
  CHECK(refused(Endpoint::kCompletions, R"({"prompt":"a","temperature":"hot"})").param == "temperature");
  CHECK(refused(Endpoint::kCompletions, R"({"prompt":[1,-2]})").param == "prompt[1]");
  CHECK(refused(Endpoint::kCompletions, R"({"prompt":"a","n":0})").param == "n");
  CHECK(refused(Endpoint::kCompletions, R"({"messages":[]})").param == "messages");  // chat's, not here
  CHECK(refused(Endpoint::kCompletions, R"({"max_tokens":3})").param == "prompt");
  CHECK(refused(Endpoint::kChat, R"({"messages":[{"role":"user","content":"x","name":"bob"}]})").param == "messages[0].name");
  CHECK(refused(Endpoint::kChat, R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})").param == "top_logprobs");
  CHECK(refused(Endpoint::kChat, R"({"messages":[{"role":"user","content":"x"}],"tools":[]})").param == "tools");
  CHECK(refused(Endpoint::kChat, R"({"messages":[{"role":"user","content":"x"},{"role":"robot","content":"y"}]})").param == "messages[1].role");
  CHECK(refused(Endpoint::kCompletions, "{\"prompt\":\"caf\xc3(\"}").code == "malformed");  // not UTF-8
  CHECK(refused(Endpoint::kChat, "{not json").code == "malformed");
  auto m = refused(Endpoint::kChat, R"({"model":"gpt-4","messages":[{"role":"user","content":"x"}]})");
  CHECK(m.status == 404);
  CHECK(m.param == "model");
  CHECK(m.code == "model_not_found");
  // The error object OpenAI's clients read.
  auto body = json::parse(error_body(e));
  CHECK(body["error"]["param"] == "echo");
  CHECK(body["error"]["type"] == "invalid_request_error");
  CHECK(body["error"]["message"].get<std::string>().find("echo") != std::string::npos);
}

TEST_CASE("chat: text content parts, logprobs and max_completion_tokens") {
  auto r = parsed(Endpoint::kChat, R"({"messages":[{"role":"system","content":"s"},
      {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
      "logprobs":true,"top_logprobs":3,"max_completion_tokens":9,"stream":true,"stream_options":{"include_usage":true}})");
  REQUIRE(r.choices.size() == 1);
  CHECK((*r.choices[0].messages)[1].content == "ab");
  CHECK(r.choices[0].params.logprobs == 3);
  CHECK(r.choices[0].params.max_tokens == 9);
  CHECK_FALSE(r.max_tokens_auto);
  CHECK(r.include_usage);
  CHECK(r.choices[0].stream);
}

TEST_CASE("frontend refusals map onto OpenAI statuses and parameter names") {
  CHECK(from_protocol_error("busy", "", "x").status == 429);
  CHECK(from_protocol_error("draining", "", "x").status == 503);
  CHECK(from_protocol_error("unavailable", "", "x").status == 503);
  CHECK(from_protocol_error("too_large", "frame", "x").status == 413);
  auto e = from_protocol_error("invalid_value", "params.temperature", "x");
  CHECK(e.status == 400);
  CHECK(e.param == "temperature");
  CHECK(from_protocol_error("invalid_value", "prompt_token_ids[3]", "x").param == "prompt");
}

TEST_CASE("streamed completion: byte-exact chunks, usage once per prompt, then [DONE]") {
  auto r = parsed(Endpoint::kCompletions, R"({"prompt":"p","n":2,"stream":true,"stream_options":{"include_usage":true}})");
  ResponseBuilder b(r, nullptr, "cmpl-1", 100, "demo");
  CHECK(b.on_event(0, delta("0", "Hel", {1})) ==
        "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"logprobs\":null,\"stop_reason\":null,\"text\":\"Hel\"}],"
        "\"created\":100,\"id\":\"cmpl-1\",\"model\":\"demo\",\"object\":\"text_completion\",\"usage\":null}\n\n");
  CHECK(b.on_event(1, delta("1", "", {})).empty());  // nothing new: no chunk
  CHECK(b.on_event(0, final_event("0", "lo", "length", 3, 2)).find("\"finish_reason\":\"length\"") != std::string::npos);
  CHECK_FALSE(b.done());
  const std::string last = b.on_event(1, final_event("1", "Hey", "stop", 3, 1));
  CHECK(b.done());
  const std::string usage =
      "data: {\"choices\":[],\"created\":100,\"id\":\"cmpl-1\",\"model\":\"demo\",\"object\":\"text_completion\","
      "\"usage\":{\"completion_tokens\":3,\"prompt_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":0},"
      "\"total_tokens\":6}}\n\ndata: [DONE]\n\n";
  REQUIRE(last.size() > usage.size());
  CHECK(last.substr(last.size() - usage.size()) == usage);
}

TEST_CASE("streamed chat: the first chunk of a choice carries the role") {
  auto r = parsed(Endpoint::kChat, R"({"messages":[{"role":"user","content":"hi"}],"stream":true})");
  ResponseBuilder b(r, nullptr, "chatcmpl-1", 5, "demo");
  auto first = json::parse(b.on_event(0, delta("0", "Hi", {4})).substr(6));
  CHECK(first["object"] == "chat.completion.chunk");
  CHECK(first["choices"][0]["delta"] == json{{"role", "assistant"}, {"content", "Hi"}});
  CHECK_FALSE(first.contains("usage"));
  const std::string rest = b.on_event(0, final_event("0", "", "stop", 4, 1));
  auto last = json::parse(rest.substr(6, rest.find("\n\n") - 6));
  CHECK(last["choices"][0]["delta"] == json::object());
  CHECK(last["choices"][0]["finish_reason"] == "stop");
  CHECK(rest.substr(rest.size() - 14) == "data: [DONE]\n\n");
}

TEST_CASE("non-streamed response: every choice, usage, and an error when a choice failed") {
  auto r = parsed(Endpoint::kChat, R"({"messages":[{"role":"user","content":"hi"}],"n":2})");
  ResponseBuilder b(r, nullptr, "chatcmpl-2", 5, "demo");
  CHECK(b.on_event(1, final_event("1", "B", "length", 4, 1)).empty());
  CHECK(b.on_event(0, delta("0", "A", {1})).empty());
  b.on_event(0, final_event("0", "a", "stop", 4, 2));
  REQUIRE(b.done());
  auto full = b.full_response();
  REQUIRE(std::holds_alternative<std::string>(full));
  auto body = json::parse(std::get<std::string>(full));
  CHECK(body["object"] == "chat.completion");
  CHECK(body["choices"][0]["message"]["content"] == "Aa");
  CHECK(body["choices"][1]["message"]["content"] == "B");
  CHECK(body["usage"]["prompt_tokens"] == 4);
  CHECK(body["usage"]["completion_tokens"] == 3);
  ResponseBuilder failing(r, nullptr, "x", 5, "demo");
  auto err = final_event("0", "", "error", 4, 0);
  err.message = "worker died";
  failing.on_event(0, err);
  failing.on_event(1, final_event("1", "", "stop", 4, 0));
  auto e = failing.full_response();
  REQUIRE(std::holds_alternative<ApiError>(e));
  CHECK(std::get<ApiError>(e).status == 500);
}

TEST_CASE("the API key comparison") {
  CHECK(keys_equal("secret", "secret"));
  CHECK_FALSE(keys_equal("secreT", "secret"));
  CHECK_FALSE(keys_equal("secret1", "secret"));
  CHECK_FALSE(keys_equal("", "secret"));
  CHECK_FALSE(keys_equal("secretsecret", "secret"));
}

TEST_CASE("HTTP identities never look like ZeroMQ routing ids") {
  CHECK(is_http_identity(std::string(kHttpIdentityPrefix) + "1"));
  CHECK_FALSE(is_http_identity(std::string("\0\0\0\0\1", 5)));   // an auto id whose counter starts with NUL
  CHECK_FALSE(is_http_identity(std::string("\0\0htt", 5)));
  CHECK_FALSE(is_http_identity("http:1"));
}

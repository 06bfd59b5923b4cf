// The client protocol's codec: what a client sends decodes to the same request, and
// every malformed generate names the field at fault.
#include <catch2/catch.hpp>

#include <msgpack.hpp>

#include <functional>

#include "client/protocol.h"

using namespace vela::client;

namespace {

constexpr size_t kMaxFrame = 1 << 20;

// A generate frame {"type": "generate", "request_id": "r1", <extra>} built by hand,
// the way a client in another language would.
template <class Fill>
std::string generate_frame(uint32_t num_extra, Fill fill) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(2 + num_extra);
  pk.pack("type"); pk.pack("generate");
  pk.pack("request_id"); pk.pack("r1");
  fill(pk);
  return std::string(buf.data(), buf.size());
}

// A refused frame: the error, and the request_id its reply echoes.
struct Refusal : vela::Error {
  std::string request_id;
};
Refusal decode_error(const std::string& frame) {
  Refusal r;
  auto d = decode_client_message(frame, kMaxFrame, &r.request_id);
  REQUIRE_FALSE(d.ok());
  static_cast<vela::Error&>(r) = d.error();
  return r;
}

using Packer = msgpack::packer<msgpack::sbuffer>;

void pack_turn(Packer& pk, const char* role, const char* content) {
  pk.pack_map(2);
  pk.pack("role"); pk.pack(role);
  pk.pack("content"); pk.pack(content);
}

}  // namespace

TEST_CASE("protocol: a generate with messages round-trips through the codec") {
  GenerateRequest g;
  g.request_id = "chat-1";
  g.messages = std::vector<ChatTurn>{{"system", "Be brief."}, {"user", "Hi ☕"}, {"assistant", "Hello."}, {"user", "Bye"}};
  g.params.max_tokens = 7;
  g.params.stop = {"\n\n"};
  g.stream = false;
  auto d = decode_client_message(encode_client_message(ClientMessage{g}), kMaxFrame);
  REQUIRE(d.ok());
  const auto& back = std::get<GenerateRequest>(*d);
  CHECK(back.request_id == "chat-1");
  CHECK_FALSE(back.prompt);
  CHECK_FALSE(back.prompt_token_ids);
  REQUIRE(back.messages);
  REQUIRE(back.messages->size() == 4);
  for (size_t i = 0; i < 4; ++i) {
    CHECK((*back.messages)[i].role == (*g.messages)[i].role);
    CHECK((*back.messages)[i].content == (*g.messages)[i].content);
  }
  CHECK(back.params.max_tokens == 7);
  CHECK(back.params.stop == std::vector<std::string>{"\n\n"});
  CHECK_FALSE(back.stream);
}

TEST_CASE("protocol: prompt and prompt_token_ids round-trip") {
  GenerateRequest a;
  a.request_id = "a";
  a.prompt = "hello";
  auto da = decode_client_message(encode_client_message(ClientMessage{a}), kMaxFrame);
  REQUIRE(da.ok());
  CHECK(std::get<GenerateRequest>(*da).prompt == std::optional<std::string>("hello"));
  GenerateRequest b;
  b.request_id = "b";
  b.prompt_token_ids = std::vector<int32_t>{1, 2, 3};
  auto db = decode_client_message(encode_client_message(ClientMessage{b}), kMaxFrame);
  REQUIRE(db.ok());
  CHECK(std::get<GenerateRequest>(*db).prompt_token_ids == std::vector<int32_t>{1, 2, 3});
}

TEST_CASE("protocol: exactly one of prompt, prompt_token_ids and messages") {
  auto none = decode_error(generate_frame(0, [](Packer&) {}));
  CHECK(none.code == "missing_field");
  CHECK(none.field == "prompt");
  CHECK(none.request_id == "r1");
  auto two = decode_error(generate_frame(2, [](Packer& pk) {
    pk.pack("prompt"); pk.pack("hi");
    pk.pack("messages"); pk.pack_array(1); pack_turn(pk, "user", "hi");
  }));
  CHECK(two.code == "invalid_value");
  CHECK(two.field == "prompt");
  CHECK(two.message.find("'messages'") != std::string::npos);
}

TEST_CASE("protocol: a malformed messages field names the element and key at fault") {
  struct Case {
    const char* name;
    std::function<void(Packer&)> messages;  // packs the value of "messages"
    std::string code, field;
  };
  std::vector<Case> cases = {
      {"not an array", [](Packer& pk) { pk.pack("hi"); }, "bad_type", "messages"},
      {"empty", [](Packer& pk) { pk.pack_array(0); }, "invalid_value", "messages"},
      {"element not a map", [](Packer& pk) { pk.pack_array(2); pack_turn(pk, "user", "a"); pk.pack(3); },
       "bad_type", "messages[1]"},
      {"unknown role", [](Packer& pk) { pk.pack_array(2); pack_turn(pk, "user", "a"); pack_turn(pk, "robot", "b"); },
       "invalid_value", "messages[1].role"},
      {"role not a string",
       [](Packer& pk) {
         pk.pack_array(1);
         pk.pack_map(2);
         pk.pack("role"); pk.pack(5);
         pk.pack("content"); pk.pack("x");
       },
       "bad_type", "messages[0].role"},
      {"missing content",
       [](Packer& pk) {
         pk.pack_array(1);
         pk.pack_map(1);
         pk.pack("role"); pk.pack("user");
       },
       "missing_field", "messages[0].content"},
      {"missing role",
       [](Packer& pk) {
         pk.pack_array(2);
         pack_turn(pk, "system", "s");
         pk.pack_map(1);
         pk.pack("content"); pk.pack("x");
       },
       "missing_field", "messages[1].role"},
      {"unknown key",
       [](Packer& pk) {
         pk.pack_array(1);
         pk.pack_map(3);
         pk.pack("role"); pk.pack("user");
         pk.pack("content"); pk.pack("x");
         pk.pack("name"); pk.pack("bob");
       },
       "unknown_field", "messages[0].name"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto e = decode_error(generate_frame(1, [&](Packer& pk) {
      pk.pack("messages");
      c.messages(pk);
    }));
    CHECK(e.code == c.code);
    CHECK(e.field == c.field);
    CHECK(e.request_id == "r1");
    CHECK(e.message.find(c.field) != std::string::npos);
  }
}

TEST_CASE("protocol: unknown fields and bad types elsewhere are named too") {
  auto unknown = decode_error(generate_frame(2, [](Packer& pk) {
    pk.pack("prompt"); pk.pack("hi");
    pk.pack("bogus"); pk.pack(1);
  }));
  CHECK(unknown.code == "unknown_field");
  CHECK(unknown.field == "bogus");
  auto param = decode_error(generate_frame(2, [](Packer& pk) {
    pk.pack("prompt"); pk.pack("hi");
    pk.pack("params"); pk.pack_map(1); pk.pack("temperature"); pk.pack("hot");
  }));
  CHECK(param.code == "bad_type");
  CHECK(param.field == "params.temperature");
  auto id = decode_error(generate_frame(1, [](Packer& pk) {
    pk.pack("prompt_token_ids"); pk.pack_array(2); pk.pack(1); pk.pack("x");
  }));
  CHECK(id.field == "prompt_token_ids[1]");
}

TEST_CASE("protocol: server events round-trip and unknown server fields are ignored") {
  ServerEvent f;
  f.kind = ServerEvent::Kind::kFinal;
  f.request_id = "r";
  f.token_ids = {4, 5};
  f.text = "ok";
  f.finish_reason = "stop";
  f.stop_reason = "\n";
  f.prompt_token_ids = {1, 2, 3};
  f.num_prompt_tokens = 3;
  f.num_output_tokens = 9;
  auto back = decode_server_event(encode_server_event(f));
  REQUIRE(back.ok());
  CHECK(back->kind == ServerEvent::Kind::kFinal);
  CHECK(back->token_ids == f.token_ids);
  CHECK(back->prompt_token_ids == f.prompt_token_ids);
  CHECK(back->stop_reason == "\n");
  CHECK(back->num_output_tokens == 9);
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(3);
  pk.pack("type"); pk.pack("delta");
  pk.pack("request_id"); pk.pack("r");
  pk.pack("from_the_future"); pk.pack(1.5);
  auto delta = decode_server_event(std::string(buf.data(), buf.size()));
  REQUIRE(delta.ok());
  CHECK(delta->kind == ServerEvent::Kind::kDelta);
}

TEST_CASE("protocol: logprobs travel in deltas and finals, one entry per token, and only when asked") {
  for (auto kind : {ServerEvent::Kind::kDelta, ServerEvent::Kind::kFinal}) {
    ServerEvent e;
    e.kind = kind;
    e.request_id = "r";
    e.token_ids = {7, 9};
    e.logprobs = std::vector<vela::TokenLogprobs>{{7, -0.25f, {7, 3}, {-0.25f, -1.5f}}, {9, -2.0f, {1, 9}, {-1.0f, -2.0f}}};
    auto back = decode_server_event(encode_server_event(e));
    REQUIRE(back.ok());
    REQUIRE(back->logprobs);
    CHECK(*back->logprobs == *e.logprobs);  // token_id filled from token_ids
    e.logprobs.reset();
    auto plain = decode_server_event(encode_server_event(e));
    REQUIRE(plain.ok());
    CHECK_FALSE(plain->logprobs);
  }
}

TEST_CASE("protocol: strings must be UTF-8 and request_id at most 256 bytes, each refused by name") {
  GenerateRequest g;
  g.request_id = "ok";
  g.prompt = "fine";
  auto refuse = [](const GenerateRequest& r) { return decode_error(encode_client_message(ClientMessage{r})); };
  SECTION("request_id not UTF-8: refused, and not echoed") {
    auto r = g;
    r.request_id = "a\xffz";
    auto e = refuse(r);
    CHECK(e.code == "invalid_value");
    CHECK(e.field == "request_id");
    CHECK(e.request_id.empty());
  }
  SECTION("request_id over 256 bytes: refused naming the limit; 256 is fine") {
    auto r = g;
    r.request_id = std::string(kMaxRequestIdBytes, 'x');
    CHECK(decode_client_message(encode_client_message(ClientMessage{r}), kMaxFrame).ok());
    r.request_id += "x";
    auto e = refuse(r);
    CHECK(e.code == "invalid_value");
    CHECK(e.field == "request_id");
    CHECK(e.request_id.empty());
    CHECK(e.message.find("256") != std::string::npos);
  }
  SECTION("prompt, message content and stop strings not UTF-8") {
    auto r = g;
    r.prompt = "caf\xc3";  // truncated
    CHECK(refuse(r).field == "prompt");
    r.prompt.reset();
    r.messages = std::vector<ChatTurn>{{"user", "ok"}, {"user", "\xed\xa0\x80"}};
    CHECK(refuse(r).field == "messages[1].content");
    r.messages.reset();
    r.prompt = "fine";
    r.params.stop = {"\xf8\x88\x80\x80\x80"};
    auto e = refuse(r);
    CHECK(e.field == "params.stop[0]");
    CHECK(e.code == "invalid_value");
    CHECK(e.request_id == "ok");
  }
  SECTION("an unknown key that is not UTF-8 is named in valid UTF-8") {
    auto e = decode_error(generate_frame(1, [](Packer& pk) {
      pk.pack(std::string("k\xff"));
      pk.pack(1);
    }));
    CHECK(e.code == "unknown_field");
    CHECK(e.field == "k\xef\xbf\xbd");
  }
}

TEST_CASE("protocol: a key that appears twice is refused, naming it, at every level") {
  auto root = decode_error(generate_frame(2, [](Packer& pk) {
    pk.pack("prompt"); pk.pack("hi");
    pk.pack("type"); pk.pack("abort");
  }));
  CHECK(root.code == "malformed");
  CHECK(root.field == "type");
  auto params = decode_error(generate_frame(2, [](Packer& pk) {
    pk.pack("prompt"); pk.pack("hi");
    pk.pack("params"); pk.pack_map(2);
    pk.pack("temperature"); pk.pack(0.5);
    pk.pack("temperature"); pk.pack(2.0);
  }));
  CHECK(params.code == "malformed");
  CHECK(params.field == "params.temperature");
  CHECK(params.request_id == "r1");
  auto turn = decode_error(generate_frame(1, [](Packer& pk) {
    pk.pack("messages"); pk.pack_array(1);
    pk.pack_map(3);
    pk.pack("role"); pk.pack("user");
    pk.pack("content"); pk.pack("a");
    pk.pack("content"); pk.pack("b");
  }));
  CHECK(turn.field == "messages[0].content");
}

TEST_CASE("protocol: a ping has only its type; the pong carries each replica's health") {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(2);
  pk.pack("type"); pk.pack("ping");
  pk.pack("verbose"); pk.pack(true);
  auto e = decode_error(std::string(buf.data(), buf.size()));
  CHECK(e.code == "unknown_field");
  CHECK(e.field == "verbose");
  auto ok = decode_client_message(encode_client_message(ClientMessage{Ping{}}), kMaxFrame);
  CHECK(ok.ok());

  ServerEvent pong;
  pong.kind = ServerEvent::Kind::kPong;
  pong.status = "serving";
  pong.replicas = {{0, "serving", 3, "", 250, 255, 7}, {1, "dead", 0, "worker rank 0 killed by signal 9"}};
  auto back = decode_server_event(encode_server_event(pong));
  REQUIRE(back.ok());
  CHECK(back->kind == ServerEvent::Kind::kPong);
  CHECK(back->status == "serving");
  CHECK(back->replicas == pong.replicas);
}

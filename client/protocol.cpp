#include "client/protocol.h"

#include <msgpack.hpp>

#include <cmath>
#include <limits>
#include <string_view>
#include <unordered_set>

#include "common/utf8.h"

namespace vela::client {
namespace {

using Obj = msgpack::object;
// A map key as text; lossy, so that an error naming an unknown key is valid UTF-8 too.
std::string key_of(const Obj& k) {
  std::string key;
  utf8::append_lossy(std::string_view(k.via.str.ptr, k.via.str.size), /*is_final=*/true, key);
  return key;
}

// A map with a key twice is refused (which value would count is not obvious, and
// standard msgpack decoders differ): the error names the key's path.
Status check_unique_keys(const Obj& map, const std::string& prefix) {
  std::unordered_set<std::string_view> seen;
  seen.reserve(map.via.map.size);
  for (uint32_t i = 0; i < map.via.map.size; ++i) {
    const auto& k = map.via.map.ptr[i].key;
    if (k.type != msgpack::type::STR) continue;  // the caller refuses it as not a string
    if (!seen.insert(std::string_view(k.via.str.ptr, k.via.str.size)).second) {
      const std::string f = prefix + key_of(k);
      return field_error("malformed", f, "key '" + f + "' appears more than once");
    }
  }
  return ok_status();
}

Status read_int(const Obj& o, const std::string& field, int64_t lo, int64_t hi, int64_t* out) {
  if (o.type == msgpack::type::POSITIVE_INTEGER) {
    if (o.via.u64 > static_cast<uint64_t>(hi))
      return field_error("invalid_value", field, field + " = " + std::to_string(o.via.u64) + " is out of range");
    *out = static_cast<int64_t>(o.via.u64);
  } else if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    *out = o.via.i64;
  } else {
    return field_error("bad_type", field, field + " must be an integer");
  }
  if (*out < lo || *out > hi)
    return field_error("invalid_value", field, field + " = " + std::to_string(*out) + " is out of range");
  return ok_status();
}
template <class T> Status read_i32(const Obj& o, const std::string& field, T* out) {
  int64_t v = 0;
  VELA_TRY(read_int(o, field, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), &v));
  *out = static_cast<T>(v);
  return ok_status();
}
Status read_float(const Obj& o, const std::string& field, float* out) {
  if (o.type == msgpack::type::FLOAT32 || o.type == msgpack::type::FLOAT64) *out = static_cast<float>(o.via.f64);
  else if (o.type == msgpack::type::POSITIVE_INTEGER) *out = static_cast<float>(o.via.u64);
  else if (o.type == msgpack::type::NEGATIVE_INTEGER) *out = static_cast<float>(o.via.i64);
  else return field_error("bad_type", field, field + " must be a number");
  return ok_status();
}
Status read_bool(const Obj& o, const std::string& field, bool* out) {
  if (o.type != msgpack::type::BOOLEAN) return field_error("bad_type", field, field + " must be a boolean");
  *out = o.via.boolean;
  return ok_status();
}
Status read_string(const Obj& o, const std::string& field, std::string* out) {
  if (o.type != msgpack::type::STR) return field_error("bad_type", field, field + " must be a string");
  // msgpack's str is UTF-8: a client library would fail on an invalid one echoed back.
  if (!utf8::is_valid(std::string_view(o.via.str.ptr, o.via.str.size)))
    return field_error("invalid_value", field, field + " is not valid UTF-8");
  *out = std::string(o.via.str.ptr, o.via.str.size);
  return ok_status();
}
Status read_int_array(const Obj& o, const std::string& field, std::vector<int32_t>* out) {
  if (o.type != msgpack::type::ARRAY) return field_error("bad_type", field, field + " must be an array of integers");
  out->resize(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i)
    VELA_TRY(read_i32(o.via.array.ptr[i], field + "[" + std::to_string(i) + "]", &(*out)[i]));
  return ok_status();
}

bool is_chat_role(const std::string& role) {
  return role == "system" || role == "user" || role == "assistant" || role == "tool";
}

// "messages": a non-empty array of {"role": str, "content": str} maps.
Status read_messages(const Obj& o, std::vector<ChatTurn>* out) {
  if (o.type != msgpack::type::ARRAY) return field_error("bad_type", "messages", "messages must be an array of maps");
  if (o.via.array.size == 0) return field_error("invalid_value", "messages", "messages is empty");
  out->resize(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    const Obj& m = o.via.array.ptr[i];
    if (m.type != msgpack::type::MAP) return field_error("bad_type", at, at + " must be a map with role and content");
    VELA_TRY(check_unique_keys(m, at + "."));
    bool has_role = false, has_content = false;
    for (uint32_t j = 0; j < m.via.map.size; ++j) {
      const auto& kv = m.via.map.ptr[j];
      if (kv.key.type != msgpack::type::STR) return field_error("bad_type", at, at + " keys must be strings");
      const std::string k = key_of(kv.key);
      const std::string f = at + "." + k;
      if (k == "role") {
        VELA_TRY(read_string(kv.val, f, &(*out)[i].role));
        has_role = true;
      } else if (k == "content") {
        VELA_TRY(read_string(kv.val, f, &(*out)[i].content));
        has_content = true;
      } else {
        return field_error("unknown_field", f, "unknown field '" + f + "'");
      }
    }
    if (!has_role) return field_error("missing_field", at + ".role", "field '" + at + ".role' is required");
    if (!has_content) return field_error("missing_field", at + ".content", "field '" + at + ".content' is required");
    if (!is_chat_role((*out)[i].role))
      return field_error("invalid_value", at + ".role",
                 at + ".role = '" + (*out)[i].role + "' is not one of system, user, assistant, tool");
  }
  return ok_status();
}

Status read_params(const Obj& o, SamplingParams* p) {
  if (o.type != msgpack::type::MAP) return field_error("bad_type", "params", "params must be a map");
  VELA_TRY(check_unique_keys(o, "params."));
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const auto& kv = o.via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) return field_error("bad_type", "params", "params keys must be strings");
    const std::string k = key_of(kv.key);
    const std::string f = "params." + k;
    const Obj& v = kv.val;
    if (k == "n") VELA_TRY(read_i32(v, f, &p->n));
    else if (k == "temperature") VELA_TRY(read_float(v, f, &p->temperature));
    else if (k == "top_p") VELA_TRY(read_float(v, f, &p->top_p));
    else if (k == "top_k") VELA_TRY(read_i32(v, f, &p->top_k));
    else if (k == "min_p") VELA_TRY(read_float(v, f, &p->min_p));
    else if (k == "seed") {
      if (v.type == msgpack::type::NIL) { p->seed.reset(); continue; }
      int64_t s = 0;
      VELA_TRY(read_int(v, f, 0, std::numeric_limits<int64_t>::max(), &s));
      p->seed = static_cast<uint64_t>(s);
    } else if (k == "max_tokens") VELA_TRY(read_i32(v, f, &p->max_tokens));
    else if (k == "min_tokens") VELA_TRY(read_i32(v, f, &p->min_tokens));
    else if (k == "stop") {
      if (v.type != msgpack::type::ARRAY) return field_error("bad_type", f, f + " must be an array of strings");
      p->stop.resize(v.via.array.size);
      for (uint32_t j = 0; j < v.via.array.size; ++j)
        VELA_TRY(read_string(v.via.array.ptr[j], f + "[" + std::to_string(j) + "]", &p->stop[j]));
    } else if (k == "stop_token_ids") VELA_TRY(read_int_array(v, f, &p->stop_token_ids));
    else if (k == "ignore_eos") VELA_TRY(read_bool(v, f, &p->ignore_eos));
    else if (k == "logprobs") VELA_TRY(read_i32(v, f, &p->logprobs));
    else if (k == "presence_penalty") VELA_TRY(read_float(v, f, &p->presence_penalty));
    else if (k == "frequency_penalty") VELA_TRY(read_float(v, f, &p->frequency_penalty));
    else if (k == "repetition_penalty") VELA_TRY(read_float(v, f, &p->repetition_penalty));
    else return field_error("unknown_field", f, "unknown field '" + f + "'");
  }
  return ok_status();
}

void pack_params(msgpack::packer<msgpack::sbuffer>& pk, const SamplingParams& p) {
  pk.pack_map(p.seed ? 15 : 14);
  pk.pack("n"); pk.pack(p.n);
  pk.pack("temperature"); pk.pack_float(p.temperature);
  pk.pack("top_p"); pk.pack_float(p.top_p);
  pk.pack("top_k"); pk.pack(p.top_k);
  pk.pack("min_p"); pk.pack_float(p.min_p);
  if (p.seed) { pk.pack("seed"); pk.pack(*p.seed); }
  pk.pack("max_tokens"); pk.pack(p.max_tokens);
  pk.pack("min_tokens"); pk.pack(p.min_tokens);
  pk.pack("stop"); pk.pack(p.stop);
  pk.pack("stop_token_ids"); pk.pack(p.stop_token_ids);
  pk.pack("ignore_eos"); pk.pack(p.ignore_eos);
  pk.pack("logprobs"); pk.pack(p.logprobs);
  pk.pack("presence_penalty"); pk.pack_float(p.presence_penalty);
  pk.pack("frequency_penalty"); pk.pack_float(p.frequency_penalty);
  pk.pack("repetition_penalty"); pk.pack_float(p.repetition_penalty);
}

// "logprobs": [{"logprob": f, "top_ids": [int], "top_logprobs": [f]}, ...], one per token.
void pack_logprobs(msgpack::packer<msgpack::sbuffer>& pk, const std::vector<TokenLogprobs>& logprobs) {
  pk.pack_array(static_cast<uint32_t>(logprobs.size()));
  for (const auto& lp : logprobs) {
    pk.pack_map(3);
    pk.pack("logprob"); pk.pack_float(lp.logprob);
    pk.pack("top_ids"); pk.pack(lp.top_ids);
    pk.pack("top_logprobs");
    pk.pack_array(static_cast<uint32_t>(lp.top_logprobs.size()));
    for (float v : lp.top_logprobs) pk.pack_float(v);
  }
}

Status read_float_array(const Obj& o, const std::string& field, std::vector<float>* out) {
  if (o.type != msgpack::type::ARRAY) return field_error("bad_type", field, field + " must be an array of numbers");
  out->resize(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i)
    VELA_TRY(read_float(o.via.array.ptr[i], field + "[" + std::to_string(i) + "]", &(*out)[i]));
  return ok_status();
}

// The server's "logprobs" (unknown keys in an entry are ignored, as everywhere in server messages).
Status read_logprobs(const Obj& o, const std::vector<int32_t>& token_ids, std::vector<TokenLogprobs>* out) {
  if (o.type != msgpack::type::ARRAY) return field_error("bad_type", "logprobs", "logprobs must be an array of maps");
  out->resize(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const std::string at = "logprobs[" + std::to_string(i) + "]";
    const Obj& m = o.via.array.ptr[i];
    if (m.type != msgpack::type::MAP) return field_error("bad_type", at, at + " must be a map");
    TokenLogprobs& lp = (*out)[i];
    if (i < token_ids.size()) lp.token_id = token_ids[i];
    for (uint32_t j = 0; j < m.via.map.size; ++j) {
      const auto& kv = m.via.map.ptr[j];
      if (kv.key.type != msgpack::type::STR) continue;
      const std::string k = key_of(kv.key);
      if (k == "logprob") VELA_TRY(read_float(kv.val, at + ".logprob", &lp.logprob));
      else if (k == "top_ids") VELA_TRY(read_int_array(kv.val, at + ".top_ids", &lp.top_ids));
      else if (k == "top_logprobs") VELA_TRY(read_float_array(kv.val, at + ".top_logprobs", &lp.top_logprobs));
    }
  }
  return ok_status();
}

// The pong's "replicas" (unknown keys in an entry are ignored).
Status read_replicas(const Obj& o, std::vector<ReplicaHealth>* out) {
  if (o.type != msgpack::type::ARRAY) return field_error("bad_type", "replicas", "replicas must be an array of maps");
  out->resize(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const std::string at = "replicas[" + std::to_string(i) + "]";
    const Obj& m = o.via.array.ptr[i];
    if (m.type != msgpack::type::MAP) return field_error("bad_type", at, at + " must be a map");
    for (uint32_t j = 0; j < m.via.map.size; ++j) {
      const auto& kv = m.via.map.ptr[j];
      if (kv.key.type != msgpack::type::STR) continue;
      const std::string k = key_of(kv.key);
      ReplicaHealth& r = (*out)[i];
      if (k == "index") VELA_TRY(read_i32(kv.val, at + ".index", &r.index));
      else if (k == "state") VELA_TRY(read_string(kv.val, at + ".state", &r.state));
      else if (k == "num_requests") VELA_TRY(read_i32(kv.val, at + ".num_requests", &r.num_requests));
      else if (k == "message") VELA_TRY(read_string(kv.val, at + ".message", &r.message));
      else if (k == "num_free_blocks") VELA_TRY(read_i32(kv.val, at + ".num_free_blocks", &r.num_free_blocks));
      else if (k == "num_usable_blocks") VELA_TRY(read_i32(kv.val, at + ".num_usable_blocks", &r.num_usable_blocks));
      else if (k == "num_preemptions")
        VELA_TRY(read_int(kv.val, at + ".num_preemptions", 0, std::numeric_limits<int64_t>::max(), &r.num_preemptions));
    }
  }
  return ok_status();
}

msgpack::unpack_limit limits_for(size_t max_frame_bytes) {
  // Bounds what a hostile frame can make the decoder allocate.
  return msgpack::unpack_limit(max_frame_bytes, 64, max_frame_bytes, max_frame_bytes, 0, 8);
}

}  // namespace

Result<ClientMessage> decode_client_message(std::string_view frame, size_t max_frame_bytes,
                                            std::string* error_request_id) {
  if (frame.size() > max_frame_bytes)
    return field_error("too_large", "frame", "frame of " + std::to_string(frame.size()) +
                                                 " bytes exceeds frontend.max_message_bytes = " +
                                                 std::to_string(max_frame_bytes));
  msgpack::object_handle oh;
  try {
    size_t offset = 0;
    oh = msgpack::unpack(frame.data(), frame.size(), offset, nullptr, nullptr, limits_for(max_frame_bytes));
    if (offset != frame.size()) return field_error("malformed", "frame", "trailing bytes after the message map");
  } catch (const std::exception& e) {
    return field_error("malformed", "frame", std::string("frame is not valid msgpack: ") + e.what());
  }
  const Obj& root = oh.get();
  if (root.type != msgpack::type::MAP) return field_error("malformed", "frame", "a message must be a msgpack map");
  VELA_TRY(check_unique_keys(root, ""));
  std::string type;
  std::string request_id;
  for (uint32_t i = 0; i < root.via.map.size; ++i) {
    const auto& kv = root.via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) return field_error("malformed", "frame", "map keys must be strings");
    const std::string k = key_of(kv.key);
    if (k == "type") {
      VELA_TRY(read_string(kv.val, "type", &type));
    } else if (k == "request_id") {
      // Neither an invalid nor an overlong id is echoed: the error's request_id is empty.
      if (kv.val.type == msgpack::type::STR && kv.val.via.str.size > kMaxRequestIdBytes)
        return field_error("invalid_value", "request_id",
                   "request_id of " + std::to_string(kv.val.via.str.size) + " bytes is longer than the limit of " +
                       std::to_string(kMaxRequestIdBytes));
      VELA_TRY(read_string(kv.val, "request_id", &request_id));
    }
  }
  if (type.empty()) return field_error("missing_field", "type", "field 'type' is required");
  if (type == "ping") {
    for (uint32_t i = 0; i < root.via.map.size; ++i) {
      const std::string k = key_of(root.via.map.ptr[i].key);
      if (k != "type") return field_error("unknown_field", k, "unknown field '" + k + "' (a ping has only 'type')");
    }
    return ClientMessage{Ping{}};
  }
  // From here on an error echoes the request_id (empty while it is missing).
  if (error_request_id) *error_request_id = request_id;
  if (type != "generate" && type != "abort")
    return field_error("invalid_value", "type", "unknown message type '" + type + "'");
  if (request_id.empty()) return field_error("missing_field", "request_id", "field 'request_id' is required and non-empty");
  if (type == "abort") {
    for (uint32_t i = 0; i < root.via.map.size; ++i) {
      const std::string k = key_of(root.via.map.ptr[i].key);
      if (k != "type" && k != "request_id") return field_error("unknown_field", k, "unknown field '" + k + "'");
    }
    return ClientMessage{AbortRequest{request_id}};
  }
  GenerateRequest g;
  g.request_id = request_id;
  for (uint32_t i = 0; i < root.via.map.size; ++i) {
    const auto& kv = root.via.map.ptr[i];
    const std::string k = key_of(kv.key);
    if (k == "type" || k == "request_id") continue;
    if (k == "prompt") VELA_TRY(read_string(kv.val, "prompt", &g.prompt.emplace()));
    else if (k == "prompt_token_ids") VELA_TRY(read_int_array(kv.val, "prompt_token_ids", &g.prompt_token_ids.emplace()));
    else if (k == "messages") VELA_TRY(read_messages(kv.val, &g.messages.emplace()));
    else if (k == "params") VELA_TRY(read_params(kv.val, &g.params));
    else if (k == "stream") VELA_TRY(read_bool(kv.val, "stream", &g.stream));
    else if (k == "priority") VELA_TRY(read_i32(kv.val, "priority", &g.priority));
    else return field_error("unknown_field", k, "unknown field '" + k + "'");
  }
  const int num_prompts = int(g.prompt.has_value()) + int(g.prompt_token_ids.has_value()) + int(g.messages.has_value());
  if (num_prompts != 1)
    return field_error(num_prompts == 0 ? "missing_field" : "invalid_value", "prompt",
                       "exactly one of 'prompt', 'prompt_token_ids' and 'messages' is required, got " +
                           std::to_string(num_prompts));
  return ClientMessage{std::move(g)};
}

std::string encode_client_message(const ClientMessage& message) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  if (auto* g = std::get_if<GenerateRequest>(&message)) {
    pk.pack_map(6);
    pk.pack("type"); pk.pack("generate");
    pk.pack("request_id"); pk.pack(g->request_id);
    if (g->prompt_token_ids) {
      pk.pack("prompt_token_ids");
      pk.pack(*g->prompt_token_ids);
    } else if (g->messages) {
      pk.pack("messages");
      pk.pack_array(static_cast<uint32_t>(g->messages->size()));
      for (const auto& m : *g->messages) {
        pk.pack_map(2);
        pk.pack("role"); pk.pack(m.role);
        pk.pack("content"); pk.pack(m.content);
      }
    } else {
      pk.pack("prompt");
      pk.pack(g->prompt.value_or(""));
    }
    pk.pack("params"); pack_params(pk, g->params);
    pk.pack("stream"); pk.pack(g->stream);
    pk.pack("priority"); pk.pack(g->priority);
  } else if (auto* a = std::get_if<AbortRequest>(&message)) {
    pk.pack_map(2);
    pk.pack("type"); pk.pack("abort");
    pk.pack("request_id"); pk.pack(a->request_id);
  } else {
    pk.pack_map(1);
    pk.pack("type"); pk.pack("ping");
  }
  return std::string(buf.data(), buf.size());
}

const char* event_kind_name(ServerEvent::Kind kind) {
  switch (kind) {
    case ServerEvent::Kind::kDelta: return "delta";
    case ServerEvent::Kind::kFinal: return "final";
    case ServerEvent::Kind::kError: return "error";
    case ServerEvent::Kind::kPong: return "pong";
  }
  return "?";
}

std::string encode_server_event(const ServerEvent& e) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  switch (e.kind) {
    case ServerEvent::Kind::kDelta:
      pk.pack_map(e.logprobs ? 5 : 4);
      pk.pack("type"); pk.pack("delta");
      pk.pack("request_id"); pk.pack(e.request_id);
      pk.pack("token_ids"); pk.pack(e.token_ids);
      pk.pack("text"); pk.pack(e.text);
      if (e.logprobs) { pk.pack("logprobs"); pack_logprobs(pk, *e.logprobs); }
      break;
    case ServerEvent::Kind::kFinal:
      pk.pack_map(e.logprobs ? 12 : 11);
      pk.pack("type"); pk.pack("final");
      pk.pack("prompt_token_ids"); pk.pack(e.prompt_token_ids);
      pk.pack("request_id"); pk.pack(e.request_id);
      pk.pack("token_ids"); pk.pack(e.token_ids);
      pk.pack("text"); pk.pack(e.text);
      pk.pack("finish_reason"); pk.pack(e.finish_reason);
      pk.pack("stop_reason"); pk.pack(e.stop_reason);
      pk.pack("num_prompt_tokens"); pk.pack(e.num_prompt_tokens);
      pk.pack("num_output_tokens"); pk.pack(e.num_output_tokens);
      pk.pack("num_cached_tokens"); pk.pack(e.num_cached_tokens);
      pk.pack("message"); pk.pack(e.message);
      if (e.logprobs) { pk.pack("logprobs"); pack_logprobs(pk, *e.logprobs); }
      break;
    case ServerEvent::Kind::kError:
      pk.pack_map(5);
      pk.pack("type"); pk.pack("error");
      pk.pack("request_id"); pk.pack(e.request_id);
      pk.pack("code"); pk.pack(e.code);
      pk.pack("field"); pk.pack(e.field);
      pk.pack("message"); pk.pack(e.message);
      break;
    case ServerEvent::Kind::kPong:
      pk.pack_map(3);
      pk.pack("type"); pk.pack("pong");
      pk.pack("status"); pk.pack(e.status);
      pk.pack("replicas");
      pk.pack_array(static_cast<uint32_t>(e.replicas.size()));
      for (const auto& r : e.replicas) {
        pk.pack_map(7);
        pk.pack("index"); pk.pack(r.index);
        pk.pack("state"); pk.pack(r.state);
        pk.pack("num_requests"); pk.pack(r.num_requests);
        pk.pack("message"); pk.pack(r.message);
        pk.pack("num_free_blocks"); pk.pack(r.num_free_blocks);
        pk.pack("num_usable_blocks"); pk.pack(r.num_usable_blocks);
        pk.pack("num_preemptions"); pk.pack(r.num_preemptions);
      }
      break;
  }
  return std::string(buf.data(), buf.size());
}

Result<ServerEvent> decode_server_event(std::string_view frame) {
  msgpack::object_handle oh;
  try {
    oh = msgpack::unpack(frame.data(), frame.size());
  } catch (const std::exception& e) {
    return make_error("malformed", std::string("server frame is not msgpack: ") + e.what());
  }
  const Obj& root = oh.get();
  if (root.type != msgpack::type::MAP) return make_error("malformed", "server frame is not a map");
  ServerEvent ev;
  std::string type;
  const Obj* logprobs = nullptr;  // read after token_ids, whatever the key order
  for (uint32_t i = 0; i < root.via.map.size; ++i) {
    const auto& kv = root.via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) continue;
    const std::string k = key_of(kv.key);
    Status e = ok_status();
    if (k == "type") e = read_string(kv.val, k, &type);
    else if (k == "request_id") e = read_string(kv.val, k, &ev.request_id);
    else if (k == "token_ids") e = read_int_array(kv.val, k, &ev.token_ids);
    else if (k == "prompt_token_ids") e = read_int_array(kv.val, k, &ev.prompt_token_ids);
    else if (k == "text") e = read_string(kv.val, k, &ev.text);
    else if (k == "finish_reason") e = read_string(kv.val, k, &ev.finish_reason);
    else if (k == "stop_reason") e = read_string(kv.val, k, &ev.stop_reason);
    else if (k == "num_prompt_tokens") e = read_i32(kv.val, k, &ev.num_prompt_tokens);
    else if (k == "num_output_tokens") e = read_i32(kv.val, k, &ev.num_output_tokens);
    else if (k == "num_cached_tokens") e = read_i32(kv.val, k, &ev.num_cached_tokens);
    else if (k == "code") e = read_string(kv.val, k, &ev.code);
    else if (k == "field") e = read_string(kv.val, k, &ev.field);
    else if (k == "message") e = read_string(kv.val, k, &ev.message);
    else if (k == "logprobs") logprobs = &kv.val;
    else if (k == "status") e = read_string(kv.val, k, &ev.status);
    else if (k == "replicas") e = read_replicas(kv.val, &ev.replicas);
    // Unknown fields from a newer server are ignored by clients.
    if (!e) return make_error("bad_field", e.error().message);
  }
  if (logprobs) {
    ev.logprobs.emplace();
    if (auto e = read_logprobs(*logprobs, ev.token_ids, &*ev.logprobs); !e)
      return make_error("bad_field", e.error().message);
  }
  if (type == "delta") ev.kind = ServerEvent::Kind::kDelta;
  else if (type == "final") ev.kind = ServerEvent::Kind::kFinal;
  else if (type == "error") ev.kind = ServerEvent::Kind::kError;
  else if (type == "pong") ev.kind = ServerEvent::Kind::kPong;
  else return make_error("bad_type", "unknown server message type '" + type + "'");
  return ev;
}

}  // namespace vela::client

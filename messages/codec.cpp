#include "messages/codec.h"

#include <msgpack.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>
#include <type_traits>

#include "common/clock.h"
#include "messages/fields.h"
#include "messages/wire_reader.h"

namespace vela::msg {
namespace {

using wire::is_optional;
using wire::is_pair;
using wire::is_vector;

// ---- encoding ----------------------------------------------------------------
// msgpack's packer writes into any stream with write(); this one writes into frame 0
// in place, so a reused Frames encodes without allocating once warm. The packer
// writes a few bytes at a time, so the string is grown ahead (doubling) and its
// length fixed once at the end (finish()) rather than appended to per value.
// (It names the Frames, not the string: blob frames appended meanwhile may move it.)
struct StringBuffer {
  Frames* frames;
  size_t len = 0;
  void write(const char* data, size_t n) {
    std::string& s = (*frames)[0];
    if (len + n > s.size()) s.resize(std::max({len + n, 2 * s.size(), size_t{256}}));
    std::memcpy(s.data() + len, data, n);
    len += n;
  }
  void finish() { (*frames)[0].resize(len); }
};

class Writer {
 public:
  Writer(msgpack::packer<StringBuffer>& pk, Frames* frames) : pk_(pk), frames_(frames) {}

  template <class T> void operator()(const char*, const T& x) { write(x); }

  template <class T> void blob(const char*, const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    frames_->emplace_back(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
    pk_.pack_uint32(static_cast<uint32_t>(frames_->size() - 1));
  }

  template <class T> void write(const T& x) {
    if constexpr (std::is_same_v<T, bool>) {
      x ? pk_.pack_true() : pk_.pack_false();
    } else if constexpr (std::is_enum_v<T>) {
      pk_.pack(static_cast<int64_t>(x));
    } else if constexpr (std::is_integral_v<T>) {
      pk_.pack(x);
    } else if constexpr (std::is_same_v<T, float>) {
      pk_.pack_float(x);
    } else if constexpr (std::is_same_v<T, double>) {
      pk_.pack_double(x);
    } else if constexpr (std::is_same_v<T, std::string>) {
      pk_.pack_str(static_cast<uint32_t>(x.size()));
      pk_.pack_str_body(x.data(), static_cast<uint32_t>(x.size()));
    } else if constexpr (is_vector<T>::value) {
      pk_.pack_array(static_cast<uint32_t>(x.size()));
      for (const auto& e : x) write(e);
    } else if constexpr (is_optional<T>::value) {
      if (x) write(*x); else pk_.pack_nil();
    } else if constexpr (is_pair<T>::value) {
      pk_.pack_array(2);
      write(x.first);
      write(x.second);
    } else {
      T& m = const_cast<T&>(x);  // field lists take non-const refs; nothing is modified
      pk_.pack_array(wire::field_count<T>());
      fields(*this, m);
    }
  }

 private:
  msgpack::packer<StringBuffer>& pk_;
  Frames* frames_;
};

// ---- decoding ----------------------------------------------------------------
// Walks a frame without allocating, so declared container sizes can be trusted
// (each element of a fully parsed container takes >= 1 byte) before unpacking.
struct BoundedVisitor : msgpack::v2::null_visitor {
  uint32_t max_depth = 16;
  uint32_t depth = 0;
  bool too_deep = false;
  bool start_array(uint32_t) { return enter(); }
  bool end_array() { --depth; return true; }
  bool start_map(uint32_t) { return enter(); }
  bool end_map() { --depth; return true; }
  bool enter() {
    if (++depth > max_depth) { too_deep = true; return false; }
    return true;
  }
};

// The frame-level checks of the old two-pass decoder, run only to name a failure:
// a frame that is not well-formed msgpack (or nests too deep) is "truncated" or
// "malformed" whatever field the one-pass reader stopped at.
std::optional<Error> structural_error(const std::string& frame, const DecodeLimits& limits) {
  BoundedVisitor v;
  v.max_depth = limits.max_depth;
  size_t off = 0;
  auto ret = msgpack::detail::parse_imp(frame.data(), frame.size(), off, v);
  if (v.too_deep) return make_error("malformed", "nesting deeper than " + std::to_string(limits.max_depth));
  if (ret == msgpack::PARSE_CONTINUE) return make_error("truncated", "frame ends inside a value");
  if (ret == msgpack::PARSE_EXTRA_BYTES)
    return make_error("malformed", "trailing bytes after the message at offset " + std::to_string(off));
  if (ret != msgpack::PARSE_SUCCESS) return make_error("malformed", "not valid msgpack");
  return std::nullopt;
}

std::optional<Error> check_frames(const Frames& frames, const DecodeLimits& limits) {
  if (frames.empty()) return make_error("no_frames", "message has no frames");
  if (frames.size() > limits.max_frames)
    return make_error("too_many_frames", std::to_string(frames.size()) + " frames exceed the limit of " +
                                             std::to_string(limits.max_frames));
  for (size_t i = 0; i < frames.size(); ++i)
    if (frames[i].size() > limits.max_frame_bytes)
      return make_error("frame_too_large", "frame " + std::to_string(i) + " of " + std::to_string(frames[i].size()) +
                                               " bytes exceeds the limit of " +
                                               std::to_string(limits.max_frame_bytes));
  return std::nullopt;
}

// Reads [version, type, id, send_time_ns, and leaves the reader at the body.
Envelope read_envelope(wire::WireReader& r) {
  Envelope env;
  try {
    if (r.read_array_header() != 5) throw wire::WireFailure{"malformed", ""};
  } catch (const wire::WireFailure&) {
    throw wire::WireFailure{"malformed", "envelope must be an array of 5: [version, type, id, send_time_ns, body]"};
  }
  r.enter();
  try {
    uint16_t type = 0;
    r.read_named(env.version, "envelope.version");
    r.read_named(type, "envelope.type");
    r.read_named(env.id, "envelope.id");
    r.read_named(env.send_time_ns, "envelope.send_time_ns");
    env.type = static_cast<MsgType>(type);
  } catch (wire::WireFailure& f) {
    f.code = "malformed";
    throw;
  }
  if (env.version != kProtocolVersion)
    throw wire::WireFailure{"bad_version", "protocol version " + std::to_string(env.version) +
                                               " (this build speaks " + std::to_string(kProtocolVersion) + ")"};
  if (std::string_view(msg_type_name(env.type)) == "Unknown")
    throw wire::WireFailure{"unknown_type", "unknown message type " + std::to_string(static_cast<int>(env.type))};
  return env;
}

// The body into `message`, reusing it when it already holds the right type.
template <class T> void read_body(wire::WireReader& r, Message& message, const char* name) {
  T* target = std::get_if<T>(&message);
  if (!target) target = &message.emplace<T>();
  r.read_struct(*target, name);
}

}  // namespace


const char* msg_type_name(MsgType t) {
  switch (t) {
    case MsgType::kEngineCoreRequest: return "EngineCoreRequest";
    case MsgType::kAbortRequests: return "AbortRequests";
    case MsgType::kEngineCoreOutputs: return "EngineCoreOutputs";
    case MsgType::kSchedulerOutput: return "SchedulerOutput";
    case MsgType::kModelRunnerOutput: return "ModelRunnerOutput";
    case MsgType::kHello: return "Hello";
    case MsgType::kLoadModel: return "LoadModel";
    case MsgType::kProfileResult: return "ProfileResult";
    case MsgType::kInitKVCache: return "InitKVCache";
    case MsgType::kHeartbeat: return "Heartbeat";
    case MsgType::kShutdown: return "Shutdown";
    case MsgType::kError: return "Error";
    case MsgType::kAck: return "Ack";
  }
  return "Unknown";
}

MsgType type_of(const Message& message) {
  static constexpr MsgType kTypes[] = {
      MsgType::kEngineCoreRequest, MsgType::kAbortRequests, MsgType::kEngineCoreOutputs,
      MsgType::kSchedulerOutput,   MsgType::kModelRunnerOutput, MsgType::kHello,
      MsgType::kLoadModel,         MsgType::kProfileResult,   MsgType::kInitKVCache,
      MsgType::kHeartbeat,         MsgType::kShutdown,        MsgType::kError,
      MsgType::kAck};
  static_assert(std::size(kTypes) == std::variant_size_v<Message>);
  return kTypes[message.index()];
}

namespace {
template <class T> void encode_impl(const T& m, MsgType type, uint64_t id, int64_t send_time_ns, Frames& frames) {
  frames.resize(1);
  frames[0].resize(frames[0].capacity());  // reuse the whole buffer (no zeroing past size)
  StringBuffer buf{&frames};
  msgpack::packer<StringBuffer> pk(buf);
  pk.pack_array(5);
  pk.pack_uint32(kProtocolVersion);
  pk.pack_uint16(static_cast<uint16_t>(type));
  pk.pack_uint64(id);
  pk.pack_int64(send_time_ns != 0 ? send_time_ns : wall_time_ns());
  Writer w(pk, &frames);
  w.write(m);
  buf.finish();
}
}  // namespace

void encode_into(const Message& message, uint64_t id, int64_t send_time_ns, Frames& frames) {
  std::visit([&](const auto& m) { encode_impl(m, type_of(message), id, send_time_ns, frames); }, message);
}
void encode_into(const SchedulerOutput& step, uint64_t id, int64_t send_time_ns, Frames& frames) {
  encode_impl(step, MsgType::kSchedulerOutput, id, send_time_ns, frames);
}
void encode_into(const ModelRunnerOutput& output, uint64_t id, int64_t send_time_ns, Frames& frames) {
  encode_impl(output, MsgType::kModelRunnerOutput, id, send_time_ns, frames);
}

Frames encode(const Message& message, uint64_t id, int64_t send_time_ns) {
  Frames frames;
  encode_into(message, id, send_time_ns, frames);
  return frames;
}

Result<Envelope> peek_envelope(const std::string& frame0, const DecodeLimits& limits) {
  if (auto bad = check_frames({frame0}, limits)) return *bad;
  if (auto bad = structural_error(frame0, limits)) return *bad;
  Frames none;
  wire::WireReader r(frame0.data(), frame0.size(), none, limits.max_depth);
  try {
    return read_envelope(r);
  } catch (const wire::WireFailure& f) {
    return make_error(f.code, f.message);
  }
}

Result<Envelope> decode_into(const Frames& frames, Message& message, const DecodeLimits& limits) {
  if (auto bad = check_frames(frames, limits)) return *bad;
  const std::string& frame0 = frames[0];
  wire::WireReader r(frame0.data(), frame0.size(), frames, limits.max_depth);
  try {
    Envelope env = read_envelope(r);
    switch (env.type) {
      case MsgType::kEngineCoreRequest: read_body<EngineCoreRequest>(r, message, "EngineCoreRequest"); break;
      case MsgType::kAbortRequests: read_body<AbortRequests>(r, message, "AbortRequests"); break;
      case MsgType::kEngineCoreOutputs: read_body<EngineCoreOutputs>(r, message, "EngineCoreOutputs"); break;
      case MsgType::kSchedulerOutput: read_body<SchedulerOutput>(r, message, "SchedulerOutput"); break;
      case MsgType::kModelRunnerOutput: read_body<ModelRunnerOutput>(r, message, "ModelRunnerOutput"); break;
      case MsgType::kHello: read_body<Hello>(r, message, "Hello"); break;
      case MsgType::kLoadModel: read_body<LoadModel>(r, message, "LoadModel"); break;
      case MsgType::kProfileResult: read_body<ProfileResult>(r, message, "ProfileResult"); break;
      case MsgType::kInitKVCache: read_body<InitKVCache>(r, message, "InitKVCache"); break;
      case MsgType::kHeartbeat: read_body<Heartbeat>(r, message, "Heartbeat"); break;
      case MsgType::kShutdown: read_body<Shutdown>(r, message, "Shutdown"); break;
      case MsgType::kError: read_body<ErrorMessage>(r, message, "Error"); break;
      case MsgType::kAck: read_body<Ack>(r, message, "Ack"); break;
    }
    if (r.remaining() != 0)
      throw wire::WireFailure{"malformed", "trailing bytes after the message at offset " +
                                               std::to_string(frame0.size() - r.remaining())};
    return env;
  } catch (const wire::WireFailure& f) {
    // A frame that is not well-formed msgpack is named as such, as the two-pass
    // decoder did; otherwise the field the reader stopped at.
    if (auto bad = structural_error(frame0, limits)) return *bad;
    return make_error(f.code, f.message);
  } catch (const std::exception& e) {  // e.g. bad_alloc on a pathological but bounded frame
    return make_error("malformed", e.what());
  }
}

Result<Decoded> decode(const Frames& frames, const DecodeLimits& limits) {
  Decoded d;
  auto env = decode_into(frames, d.message, limits);
  if (!env) return env.error();
  d.envelope = env.value();
  return d;
}

}  // namespace vela::msg
namespace vela {
const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "none";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kError: return "error";
  }
  return "unknown";
}
}  // namespace vela

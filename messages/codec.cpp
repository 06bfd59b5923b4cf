#include "messages/codec.h"

#include <msgpack.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
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
// Packs msgpack straight into frame 0, growing it ahead (doubling) and fixing its
// length once at the end: a reused Frames encodes without allocating once warm, and
// each value is a bounds check and a few stores (msgpack-c's packer made a call per
// value). Integers take their most compact form, as msgpack-c writes them.
class Packer {
 public:
  explicit Packer(Frames* frames) : frames_(frames) {
    std::string& s = (*frames_)[0];
    s.resize(std::max(s.capacity(), size_t{256}));
  }
  void finish() { (*frames_)[0].resize(len_); }

  void pack_nil() { *room(1) = 0xc0; }
  void pack_bool(bool b) { *room(1) = b ? 0xc3 : 0xc2; }
  void pack_uint(uint64_t v) {
    if (v < 128) { *room(1) = uint8_t(v); }
    else if (v <= 0xff) { uint8_t* p = room(2); p[0] = 0xcc; p[1] = uint8_t(v); }
    else if (v <= 0xffff) { be(room(3), 0xcd, v, 2); }
    else if (v <= 0xffffffffu) { be(room(5), 0xce, v, 4); }
    else { be(room(9), 0xcf, v, 8); }
  }
  void pack_int(int64_t v) {
    if (v >= 0) return pack_uint(uint64_t(v));
    if (v >= -32) { *room(1) = uint8_t(int8_t(v)); }
    else if (v >= -128) { uint8_t* p = room(2); p[0] = 0xd0; p[1] = uint8_t(int8_t(v)); }
    else if (v >= -32768) { be(room(3), 0xd1, uint64_t(v), 2); }
    else if (v >= INT32_MIN) { be(room(5), 0xd2, uint64_t(v), 4); }
    else { be(room(9), 0xd3, uint64_t(v), 8); }
  }
  void pack_float(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    be(room(5), 0xca, bits, 4);
  }
  void pack_double(double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    be(room(9), 0xcb, bits, 8);
  }
  void pack_array(uint32_t n) {
    if (n < 16) { *room(1) = uint8_t(0x90 | n); }
    else if (n <= 0xffff) { be(room(3), 0xdc, n, 2); }
    else { be(room(5), 0xdd, n, 4); }
  }
  void pack_str(const std::string& x) {
    const size_t n = x.size();
    uint8_t* p;
    if (n < 32) { p = room(1 + n); *p++ = uint8_t(0xa0 | n); }
    else if (n <= 0xff) { p = room(2 + n); p[0] = 0xd9; p[1] = uint8_t(n); p += 2; }
    else if (n <= 0xffff) { p = room(3 + n); be(p, 0xda, n, 2); p += 3; }
    else { p = room(5 + n); be(p, 0xdb, n, 4); p += 5; }
    if (n) std::memcpy(p, x.data(), n);
  }

 private:
  // n bytes at the end of the frame, which is grown when needed; advances the length.
  uint8_t* room(size_t n) {
    std::string& s = (*frames_)[0];  // re-read: blob frames appended may move it
    if (len_ + n > s.size()) s.resize(std::max(len_ + n, 2 * s.size()));
    uint8_t* p = reinterpret_cast<uint8_t*>(s.data()) + len_;
    len_ += n;
    return p;
  }
  static void be(uint8_t* p, uint8_t tag, uint64_t v, int bytes) {
    p[0] = tag;
    for (int i = 0; i < bytes; ++i) p[1 + i] = uint8_t(v >> (8 * (bytes - 1 - i)));
  }
  Frames* frames_;
  size_t len_ = 0;
};

class Writer {
 public:
  Writer(Packer& pk, Frames* frames) : pk_(pk), frames_(frames) {}

  template <class T> void operator()(const char*, const T& x) { write(x); }

  template <class T> void blob(const char*, const std::vector<T>& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    frames_->emplace_back(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
    pk_.pack_uint(frames_->size() - 1);
  }

  template <class T> void write(const T& x) {
    if constexpr (std::is_same_v<T, bool>) {
      pk_.pack_bool(x);
    } else if constexpr (std::is_enum_v<T>) {
      pk_.pack_int(static_cast<int64_t>(x));
    } else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) {
      pk_.pack_uint(x);
    } else if constexpr (std::is_integral_v<T>) {
      pk_.pack_int(x);
    } else if constexpr (std::is_same_v<T, float>) {
      pk_.pack_float(x);
    } else if constexpr (std::is_same_v<T, double>) {
      pk_.pack_double(x);
    } else if constexpr (std::is_same_v<T, std::string>) {
      pk_.pack_str(x);
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
  Packer& pk_;
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
Status check_structure(const std::string& frame, const DecodeLimits& limits) {
  BoundedVisitor v;
  v.max_depth = limits.max_depth;
  size_t off = 0;
  auto ret = msgpack::detail::parse_imp(frame.data(), frame.size(), off, v);
  if (v.too_deep) return make_error("malformed", "nesting deeper than " + std::to_string(limits.max_depth));
  if (ret == msgpack::PARSE_CONTINUE) return make_error("truncated", "frame ends inside a value");
  if (ret == msgpack::PARSE_EXTRA_BYTES)
    return make_error("malformed", "trailing bytes after the message at offset " + std::to_string(off));
  if (ret != msgpack::PARSE_SUCCESS) return make_error("malformed", "not valid msgpack");
  return ok_status();
}

Status check_frames(const Frames& frames, const DecodeLimits& limits) {
  if (frames.empty()) return make_error("no_frames", "message has no frames");
  if (frames.size() > limits.max_frames)
    return make_error("too_many_frames", std::to_string(frames.size()) + " frames exceed the limit of " +
                                             std::to_string(limits.max_frames));
  for (size_t i = 0; i < frames.size(); ++i)
    if (frames[i].size() > limits.max_frame_bytes)
      return make_error("frame_too_large", "frame " + std::to_string(i) + " of " + std::to_string(frames[i].size()) +
                                               " bytes exceeds the limit of " +
                                               std::to_string(limits.max_frame_bytes));
  return ok_status();
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
  Packer pk(&frames);
  pk.pack_array(5);
  pk.pack_uint(kProtocolVersion);
  pk.pack_uint(static_cast<uint16_t>(type));
  pk.pack_uint(id);
  pk.pack_int(send_time_ns != 0 ? send_time_ns : wall_time_ns());
  Writer w(pk, &frames);
  w.write(m);
  pk.finish();
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
  VELA_TRY(check_frames({frame0}, limits));
  VELA_TRY(check_structure(frame0, limits));
  Frames none;
  wire::WireReader r(frame0.data(), frame0.size(), none, limits.max_depth);
  try {
    return read_envelope(r);
  } catch (const wire::WireFailure& f) {
    return make_error(f.code, f.message);
  }
}

Result<Envelope> decode_into(const Frames& frames, Message& message, const DecodeLimits& limits) {
  VELA_TRY(check_frames(frames, limits));
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
    VELA_TRY(check_structure(frame0, limits));
    return make_error(f.code, f.message);
  } catch (const std::exception& e) {  // e.g. bad_alloc on a pathological but bounded frame
    return make_error("malformed", e.what());
  }
}

Result<Decoded> decode(const Frames& frames, const DecodeLimits& limits) {
  Decoded d;
  VELA_TRY_ASSIGN(d.envelope, decode_into(frames, d.message, limits));
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

#include "messages/codec.h"

#include <msgpack.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>

#include "common/clock.h"
#include "messages/fields.h"

namespace vela::msg {
namespace {

// ---- traits ----------------------------------------------------------------
template <class T> struct is_vector : std::false_type {};
template <class T, class A> struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};
template <class T> struct is_pair : std::false_type {};
template <class A, class B> struct is_pair<std::pair<A, B>> : std::true_type {};

template <class T> constexpr int enum_max() { return 0; }
template <> constexpr int enum_max<FinishReason>() { return 4; }

struct FieldCounter {
  size_t n = 0;
  template <class T> void operator()(const char*, T&) { ++n; }
  template <class T> void blob(const char*, T&) { ++n; }
};
template <class T> size_t field_count(T& x) {
  FieldCounter c;
  fields(c, x);
  return c.n;
}

// ---- encoding ----------------------------------------------------------------
class Writer {
 public:
  Writer(msgpack::packer<msgpack::sbuffer>& pk, Frames* frames) : pk_(pk), frames_(frames) {}

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
      pk_.pack_array(static_cast<uint32_t>(field_count(m)));
      fields(*this, m);
    }
  }

 private:
  msgpack::packer<msgpack::sbuffer>& pk_;
  Frames* frames_;
};

// ---- decoding ----------------------------------------------------------------
struct DecodeFailure {
  std::string code;
  std::string message;
};

class Reader {
 public:
  explicit Reader(const Frames& frames) : frames_(frames) {}

  // Reads struct fields from an array; missing trailing fields keep their defaults.
  template <class T> void read_struct(const msgpack::object& o, T& x, const std::string& path) {
    if (o.type != msgpack::type::ARRAY) fail(path, "expected an array (struct)");
    arr_ = &o.via.array;
    index_ = 0;
    path_ = path;
    fields(*this, x);
  }

  template <class T> void operator()(const char* name, T& field) {
    const msgpack::object_array* arr = arr_;
    size_t idx = index_++;
    if (idx >= arr->size) return;  // older sender: keep the default
    std::string saved_path = path_;
    size_t saved_index = index_;
    read(arr->ptr[idx], field, path_ + "." + name);
    arr_ = arr;
    index_ = saved_index;
    path_ = saved_path;
  }

  template <class T> void blob(const char* name, std::vector<T>& out) {
    const msgpack::object_array* arr = arr_;
    size_t idx = index_++;
    if (idx >= arr->size) return;
    std::string path = path_ + "." + name;
    uint32_t frame = 0;
    read(arr->ptr[idx], frame, path);
    if (frame == 0 || frame >= frames_.size()) fail(path, "blob frame index out of range", "bad_blob");
    const std::string& bytes = frames_[frame];
    if (bytes.size() % sizeof(T) != 0) fail(path, "blob size is not a multiple of the element size", "bad_blob");
    out.resize(bytes.size() / sizeof(T));
    if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  }

  template <class T> void read(const msgpack::object& o, T& x, const std::string& path) {
    if constexpr (std::is_same_v<T, bool>) {
      if (o.type != msgpack::type::BOOLEAN) fail(path, "expected a boolean");
      x = o.via.boolean;
    } else if constexpr (std::is_enum_v<T>) {
      int64_t v = 0;
      read(o, v, path);
      if (v < 0 || v > enum_max<T>()) fail(path, "enum value out of range: " + std::to_string(v));
      x = static_cast<T>(v);
    } else if constexpr (std::is_integral_v<T>) {
      if (o.type == msgpack::type::POSITIVE_INTEGER) {
        if (o.via.u64 > static_cast<uint64_t>(std::numeric_limits<T>::max()))
          fail(path, "integer out of range: " + std::to_string(o.via.u64));
        x = static_cast<T>(o.via.u64);
      } else if (o.type == msgpack::type::NEGATIVE_INTEGER) {
        if constexpr (std::is_unsigned_v<T>) {
          fail(path, "negative value for an unsigned field: " + std::to_string(o.via.i64));
        } else {
          if (o.via.i64 < static_cast<int64_t>(std::numeric_limits<T>::min()))
            fail(path, "integer out of range: " + std::to_string(o.via.i64));
          x = static_cast<T>(o.via.i64);
        }
      } else {
        fail(path, "expected an integer");
      }
    } else if constexpr (std::is_floating_point_v<T>) {
      if (o.type == msgpack::type::FLOAT32 || o.type == msgpack::type::FLOAT64) x = static_cast<T>(o.via.f64);
      else if (o.type == msgpack::type::POSITIVE_INTEGER) x = static_cast<T>(o.via.u64);
      else if (o.type == msgpack::type::NEGATIVE_INTEGER) x = static_cast<T>(o.via.i64);
      else fail(path, "expected a number");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (o.type == msgpack::type::STR) x.assign(o.via.str.ptr, o.via.str.size);
      else if (o.type == msgpack::type::BIN) x.assign(o.via.bin.ptr, o.via.bin.size);
      else fail(path, "expected a string");
    } else if constexpr (is_vector<T>::value) {
      if (o.type != msgpack::type::ARRAY) fail(path, "expected an array");
      x.clear();
      x.resize(o.via.array.size);
      for (uint32_t i = 0; i < o.via.array.size; ++i) {
        typename T::value_type e{};
        read(o.via.array.ptr[i], e, path + "[" + std::to_string(i) + "]");
        x[i] = std::move(e);
      }
    } else if constexpr (is_optional<T>::value) {
      if (o.type == msgpack::type::NIL) {
        x.reset();
      } else {
        typename T::value_type v{};
        read(o, v, path);
        x = std::move(v);
      }
    } else if constexpr (is_pair<T>::value) {
      if (o.type != msgpack::type::ARRAY || o.via.array.size != 2) fail(path, "expected a pair");
      read(o.via.array.ptr[0], x.first, path + ".first");
      read(o.via.array.ptr[1], x.second, path + ".second");
    } else {
      read_struct(o, x, path);
    }
  }

  [[noreturn]] static void fail(const std::string& path, const std::string& what,
                                const std::string& code = "bad_field") {
    throw DecodeFailure{code, "field '" + path + "': " + what};
  }

 private:
  const Frames& frames_;
  const msgpack::object_array* arr_ = nullptr;
  size_t index_ = 0;
  std::string path_;
};

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

Result<msgpack::object_handle> safe_unpack(const std::string& frame, const DecodeLimits& limits) {
  if (frame.size() > limits.max_frame_bytes)
    return make_error("frame_too_large", "frame of " + std::to_string(frame.size()) +
                                             " bytes exceeds the limit of " +
                                             std::to_string(limits.max_frame_bytes));
  BoundedVisitor v;
  v.max_depth = limits.max_depth;
  size_t off = 0;
  auto ret = msgpack::detail::parse_imp(frame.data(), frame.size(), off, v);
  if (v.too_deep) return make_error("malformed", "nesting deeper than " + std::to_string(limits.max_depth));
  if (ret == msgpack::PARSE_CONTINUE) return make_error("truncated", "frame ends inside a value");
  if (ret == msgpack::PARSE_EXTRA_BYTES)
    return make_error("malformed", "trailing bytes after the message at offset " + std::to_string(off));
  if (ret != msgpack::PARSE_SUCCESS) return make_error("malformed", "not valid msgpack");
  try {
    const size_t n = frame.size();
    msgpack::unpack_limit lim(n, n, n, n, n, limits.max_depth);
    return msgpack::unpack(frame.data(), frame.size(), nullptr, nullptr, lim);
  } catch (const std::exception& e) {
    return make_error("malformed", std::string("msgpack: ") + e.what());
  }
}

template <class T> Message decode_body(Reader& r, const msgpack::object& body, const char* name) {
  T value{};
  r.read_struct(body, value, name);
  return Message{std::move(value)};
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

Frames encode(const Message& message, uint64_t id, int64_t send_time_ns) {
  Frames frames(1);
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(5);
  pk.pack_uint32(kProtocolVersion);
  pk.pack_uint16(static_cast<uint16_t>(type_of(message)));
  pk.pack_uint64(id);
  pk.pack_int64(send_time_ns != 0 ? send_time_ns : wall_time_ns());
  Writer w(pk, &frames);
  std::visit([&](const auto& m) { w.write(m); }, message);
  frames[0].assign(buf.data(), buf.size());
  return frames;
}

namespace {
Result<Envelope> read_envelope(const msgpack::object& root) {
  if (root.type != msgpack::type::ARRAY || root.via.array.size != 5)
    return make_error("malformed", "envelope must be an array of 5: [version, type, id, send_time_ns, body]");
  Envelope env;
  try {
    Frames none;
    Reader r(none);
    uint16_t type = 0;
    r.read(root.via.array.ptr[0], env.version, "envelope.version");
    r.read(root.via.array.ptr[1], type, "envelope.type");
    r.read(root.via.array.ptr[2], env.id, "envelope.id");
    r.read(root.via.array.ptr[3], env.send_time_ns, "envelope.send_time_ns");
    env.type = static_cast<MsgType>(type);
  } catch (const DecodeFailure& f) {
    return make_error("malformed", f.message);
  }
  if (env.version != kProtocolVersion)
    return make_error("bad_version", "protocol version " + std::to_string(env.version) +
                                         " (this build speaks " + std::to_string(kProtocolVersion) + ")");
  if (std::string(msg_type_name(env.type)) == "Unknown")
    return make_error("unknown_type", "unknown message type " + std::to_string(static_cast<int>(env.type)));
  return env;
}
}  // namespace

Result<Envelope> peek_envelope(const std::string& frame0, const DecodeLimits& limits) {
  auto handle = safe_unpack(frame0, limits);
  if (!handle) return handle.error();
  return read_envelope(handle->get());
}

Result<Decoded> decode(const Frames& frames, const DecodeLimits& limits) {
  if (frames.empty()) return make_error("no_frames", "message has no frames");
  if (frames.size() > limits.max_frames)
    return make_error("too_many_frames", std::to_string(frames.size()) + " frames exceed the limit of " +
                                             std::to_string(limits.max_frames));
  for (size_t i = 1; i < frames.size(); ++i)
    if (frames[i].size() > limits.max_frame_bytes)
      return make_error("frame_too_large", "frame " + std::to_string(i) + " of " +
                                               std::to_string(frames[i].size()) + " bytes exceeds the limit");
  auto handle = safe_unpack(frames[0], limits);
  if (!handle) return handle.error();
  const msgpack::object& root = handle->get();
  auto env = read_envelope(root);
  if (!env) return env.error();
  const msgpack::object& body = root.via.array.ptr[4];
  Reader r(frames);
  try {
    switch (env->type) {
      case MsgType::kEngineCoreRequest: return Decoded{*env, decode_body<EngineCoreRequest>(r, body, "EngineCoreRequest")};
      case MsgType::kAbortRequests: return Decoded{*env, decode_body<AbortRequests>(r, body, "AbortRequests")};
      case MsgType::kEngineCoreOutputs: return Decoded{*env, decode_body<EngineCoreOutputs>(r, body, "EngineCoreOutputs")};
      case MsgType::kSchedulerOutput: return Decoded{*env, decode_body<SchedulerOutput>(r, body, "SchedulerOutput")};
      case MsgType::kModelRunnerOutput: return Decoded{*env, decode_body<ModelRunnerOutput>(r, body, "ModelRunnerOutput")};
      case MsgType::kHello: return Decoded{*env, decode_body<Hello>(r, body, "Hello")};
      case MsgType::kLoadModel: return Decoded{*env, decode_body<LoadModel>(r, body, "LoadModel")};
      case MsgType::kProfileResult: return Decoded{*env, decode_body<ProfileResult>(r, body, "ProfileResult")};
      case MsgType::kInitKVCache: return Decoded{*env, decode_body<InitKVCache>(r, body, "InitKVCache")};
      case MsgType::kHeartbeat: return Decoded{*env, decode_body<Heartbeat>(r, body, "Heartbeat")};
      case MsgType::kShutdown: return Decoded{*env, decode_body<Shutdown>(r, body, "Shutdown")};
      case MsgType::kError: return Decoded{*env, decode_body<ErrorMessage>(r, body, "Error")};
      case MsgType::kAck: return Decoded{*env, decode_body<Ack>(r, body, "Ack")};
    }
  } catch (const DecodeFailure& f) {
    return make_error(f.code, f.message);
  } catch (const std::exception& e) {  // e.g. bad_alloc on a pathological but bounded frame
    return make_error("malformed", e.what());
  }
  return make_error("unknown_type", "unknown message type");
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

#pragma once
// WireReader: decodes msgpack straight from a frame's bytes into the wire structs in
// one pass, driven by their field lists (messages/fields.h). Internal to codec.cpp.
//
// Why not msgpack::unpack + convert: that walks every step three times (a validation
// walk, an object tree in a zone, then the conversion) and allocates a path string
// per element; a 256-request step spent most of its decode time there.
//
// Safety, the same as before: every read is bounds-checked; a container's declared
// size is checked against the bytes left before anything is allocated (each element
// takes >= 1 byte), so garbage cannot make it allocate more than a small multiple of
// the frame; nesting is limited by max_depth; values it does not know (trailing
// fields of a newer sender) are skipped with the same checks. Reading in place
// reuses the target's vectors and strings; fields the sender did not send are reset
// to their defaults. Errors throw WireFailure; codec.cpp turns them into Results.
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "messages/fields.h"

namespace vela::msg::wire {

struct WireFailure {
  std::string code;     // "truncated", "malformed", "bad_field", "bad_blob"
  std::string message;
};

template <class T> struct is_vector : std::false_type {};
template <class T, class A> struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};
template <class T> struct is_pair : std::false_type {};
template <class A, class B> struct is_pair<std::pair<A, B>> : std::true_type {};

template <class T> constexpr int64_t enum_max() { return 0; }
template <> constexpr int64_t enum_max<FinishReason>() { return 4; }

struct FieldCounter {
  uint32_t n = 0;
  template <class T> void operator()(const char*, T&) { ++n; }
  template <class T> void blob(const char*, T&) { ++n; }
};
template <class T> uint32_t field_count() {
  static const uint32_t n = [] {
    T x{};
    FieldCounter c;
    fields(c, x);
    return c.n;
  }();
  return n;
}

class WireReader {
 public:
  // blobs[i] is frame i of the message (frame 0, the msgpack one, is never a blob).
  WireReader(const char* data, size_t size, const std::vector<std::string>& frames, uint32_t max_depth)
      : p_(reinterpret_cast<const uint8_t*>(data)), end_(p_ + size), frames_(frames), max_depth_(max_depth) {}

  size_t remaining() const { return size_t(end_ - p_); }

  // The array header of a struct or container: its element count.
  uint32_t read_array_header() {
    const uint8_t tag = byte();
    uint32_t n;
    if ((tag & 0xf0) == 0x90) n = tag & 0x0f;
    else if (tag == 0xdc) n = be<uint16_t>();
    else if (tag == 0xdd) n = be<uint32_t>();
    else { unread(); fail_type("expected an array"); }
    if (n > remaining()) [[unlikely]] fail_array_too_long(n);
    return n;
  }

  // Reads a struct from an array of its fields, in place.
  template <class T> void read_struct(T& x, const char* name) {
    std::optional<Scope> scope;
    if (name) scope.emplace(*this, name);
    uint32_t n;
    {
      const uint8_t tag = peek();
      if ((tag & 0xf0) != 0x90 && tag != 0xdc && tag != 0xdd) fail_type("expected an array (struct)");
      n = read_array_header();
    }
    enter();
    fields_left_ = n;
    fields(*this, x);
    for (uint32_t i = field_count<T>(); i < n; ++i) skip_value(depth_);  // a newer sender's fields
    --depth_;
  }

  // fields() callbacks.
  template <class T> void operator()(const char* name, T& field) {
    if (fields_left_ == 0) {  // an older sender: the default
      field = T{};
      return;
    }
    const uint32_t left = --fields_left_;
    Scope scope(*this, name);
    read(field);
    fields_left_ = left;
  }
  template <class T> void blob(const char* name, std::vector<T>& out) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (fields_left_ == 0) {
      out.clear();
      return;
    }
    const uint32_t left = --fields_left_;
    Scope scope(*this, name);
    uint32_t frame = 0;
    read(frame);
    if (frame == 0 || frame >= frames_.size()) fail("bad_blob", "blob frame index out of range");
    const std::string& bytes = frames_[frame];
    if (bytes.size() % sizeof(T) != 0) fail("bad_blob", "blob size is not a multiple of the element size");
    out.resize(bytes.size() / sizeof(T));
    if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    fields_left_ = left;
  }

  template <class T> void read(T& x) {
    if constexpr (std::is_same_v<T, bool>) {
      const uint8_t tag = byte();
      if (tag == 0xc2) x = false;
      else if (tag == 0xc3) x = true;
      else { unread(); fail_type("expected a boolean"); }
    } else if constexpr (std::is_enum_v<T>) {
      int64_t v = 0;
      read(v);
      if (v < 0 || v > enum_max<T>()) fail_type("enum value out of range: " + std::to_string(v));
      x = static_cast<T>(v);
    } else if constexpr (std::is_integral_v<T>) {
      read_integer(x);
    } else if constexpr (std::is_floating_point_v<T>) {
      read_number(x);
    } else if constexpr (std::is_same_v<T, std::string>) {
      const uint8_t tag = byte();
      uint32_t n;
      if ((tag & 0xe0) == 0xa0) n = tag & 0x1f;
      else if (tag == 0xd9 || tag == 0xc4) n = be<uint8_t>();
      else if (tag == 0xda || tag == 0xc5) n = be<uint16_t>();
      else if (tag == 0xdb || tag == 0xc6) n = be<uint32_t>();
      else { unread(); fail_type("expected a string"); }
      need(n);
      x.assign(reinterpret_cast<const char*>(p_), n);
      p_ += n;
    } else if constexpr (is_vector<T>::value) {
      const uint32_t n = read_array_header();
      enter();
      x.resize(n);  // n <= bytes left: bounded; existing elements keep their buffers
      for (uint32_t i = 0; i < n; ++i) {
        index_ = i;
        read_element(x[i]);
      }
      --depth_;
    } else if constexpr (is_optional<T>::value) {
      if (peek() == 0xc0) {
        ++p_;
        x.reset();
      } else {
        if (!x) x.emplace();
        read(*x);
      }
    } else if constexpr (is_pair<T>::value) {
      if (read_array_header() != 2) fail_type("expected a pair");
      enter();
      { Scope s(*this, "first"); read(x.first); }
      { Scope s(*this, "second"); read(x.second); }
      --depth_;
    } else {
      read_struct(x, nullptr);
    }
  }

  // A named top-level value (the envelope's fields).
  template <class T> void read_named(T& x, const char* name) {
    Scope scope(*this, name);
    read(x);
  }
  void enter() {
    if (++depth_ > max_depth_) fail("malformed", "nesting deeper than " + std::to_string(max_depth_));
  }

  // Skips one value of any type (bounded by depth, never allocates).
  void skip_value(uint32_t depth) {
    const uint8_t tag = byte();
    if (tag <= 0x7f || tag >= 0xe0 || tag == 0xc0 || tag == 0xc2 || tag == 0xc3) return;
    if ((tag & 0xe0) == 0xa0) return advance(tag & 0x1f);
    if ((tag & 0xf0) == 0x90) return skip_values(tag & 0x0f, depth);
    if ((tag & 0xf0) == 0x80) return skip_values(uint64_t{tag & 0x0fu} * 2, depth);
    switch (tag) {
      case 0xcc: case 0xd0: return advance(1);
      case 0xcd: case 0xd1: return advance(2);
      case 0xca: case 0xce: case 0xd2: return advance(4);
      case 0xcb: case 0xcf: case 0xd3: return advance(8);
      case 0xc4: case 0xd9: return advance(be<uint8_t>());
      case 0xc5: case 0xda: return advance(be<uint16_t>());
      case 0xc6: case 0xdb: return advance(be<uint32_t>());
      case 0xd4: return advance(2);
      case 0xd5: return advance(3);
      case 0xd6: return advance(5);
      case 0xd7: return advance(9);
      case 0xd8: return advance(17);
      case 0xc7: return advance(size_t{be<uint8_t>()} + 1);
      case 0xc8: return advance(size_t{be<uint16_t>()} + 1);
      case 0xc9: return advance(size_t{be<uint32_t>()} + 1);
      case 0xdc: return skip_values(be<uint16_t>(), depth);
      case 0xdd: return skip_values(be<uint32_t>(), depth);
      case 0xde: return skip_values(uint64_t{be<uint16_t>()} * 2, depth);
      case 0xdf: return skip_values(uint64_t{be<uint32_t>()} * 2, depth);
      default: fail("malformed", "invalid msgpack byte 0xc1");
    }
  }

  // The failure paths are kept out of line so the hot reads stay small and inlined.
  [[noreturn, gnu::noinline, gnu::cold]] void fail(const std::string& code, const std::string& what) {
    throw WireFailure{code, "field '" + path() + "': " + what};
  }
  [[noreturn, gnu::noinline, gnu::cold]] void fail_array_too_long(uint32_t n) {
    fail("truncated", "array of " + std::to_string(n) + " elements in " + std::to_string(remaining()) + " bytes");
  }
  [[noreturn, gnu::noinline, gnu::cold]] void fail_truncated() { fail("truncated", "frame ends inside a value"); }

 private:
  // The current field path, built only when an error names it.
  struct Frame {
    const char* name;  // null: an element of the enclosing vector
    int64_t index;
  };
  class Scope {
   public:
    Scope(WireReader& r, const char* name) : r_(r) {
      if (r_.path_len_ < kMaxPath) r_.path_[r_.path_len_] = Frame{name, r_.index_};
      ++r_.path_len_;
    }
    ~Scope() { --r_.path_len_; }
   private:
    WireReader& r_;
  };
  static constexpr uint32_t kMaxPath = 32;

  template <class E> void read_element(E& e) {
    Scope scope(*this, nullptr);
    read(e);
  }

  std::string path() const {
    std::string out;
    for (uint32_t i = 0; i < path_len_ && i < kMaxPath; ++i) {
      const Frame& f = path_[i];
      if (f.name) {
        if (!out.empty()) out += '.';
        out += f.name;
      } else {
        out += '[' + std::to_string(f.index) + ']';
      }
    }
    return out;
  }

  void skip_values(uint64_t n, uint32_t depth) {
    if (n > remaining()) fail("truncated", "container larger than the bytes left");
    if (depth + 1 > max_depth_) fail("malformed", "nesting deeper than " + std::to_string(max_depth_));
    for (uint64_t i = 0; i < n; ++i) skip_value(depth + 1);
  }
  void need(size_t n) {
    if (n > remaining()) [[unlikely]] fail_truncated();
  }
  void advance(size_t n) {
    need(n);
    p_ += n;
  }
  uint8_t peek() {
    need(1);
    return *p_;
  }
  uint8_t byte() {
    need(1);
    return *p_++;
  }
  void unread() { --p_; }
  template <class U> U be() {
    need(sizeof(U));
    U v = 0;
    for (size_t i = 0; i < sizeof(U); ++i) v = U((uint64_t(v) << 8) | p_[i]);
    p_ += sizeof(U);
    return v;
  }
  [[noreturn, gnu::noinline, gnu::cold]] void fail_type(const std::string& what) { fail("bad_field", what); }

  // One msgpack integer of any width, range-checked into T.
  template <class T> void read_integer(T& x) {
    const uint8_t tag = byte();
    uint64_t u = 0;
    int64_t s = 0;
    bool negative = false;
    if (tag <= 0x7f) u = tag;
    else if (tag >= 0xe0) { s = int8_t(tag); negative = true; }
    else switch (tag) {
      case 0xcc: u = be<uint8_t>(); break;
      case 0xcd: u = be<uint16_t>(); break;
      case 0xce: u = be<uint32_t>(); break;
      case 0xcf: u = be<uint64_t>(); break;
      case 0xd0: s = int8_t(be<uint8_t>()); negative = s < 0; u = uint64_t(s); break;
      case 0xd1: s = int16_t(be<uint16_t>()); negative = s < 0; u = uint64_t(s); break;
      case 0xd2: s = int32_t(be<uint32_t>()); negative = s < 0; u = uint64_t(s); break;
      case 0xd3: s = int64_t(be<uint64_t>()); negative = s < 0; u = uint64_t(s); break;
      default: unread(); fail_type("expected an integer");
    }
    if (!negative) {
      if (u > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        fail_type("integer out of range: " + std::to_string(u));
      x = static_cast<T>(u);
    } else if constexpr (std::is_unsigned_v<T>) {
      fail_type("negative value for an unsigned field: " + std::to_string(s));
    } else {
      if (s < static_cast<int64_t>(std::numeric_limits<T>::min()))
        fail_type("integer out of range: " + std::to_string(s));
      x = static_cast<T>(s);
    }
  }

  template <class T> void read_number(T& x) {
    const uint8_t tag = peek();
    if (tag == 0xca) {
      ++p_;
      uint32_t bits = be<uint32_t>();
      float f;
      std::memcpy(&f, &bits, 4);
      x = static_cast<T>(f);
    } else if (tag == 0xcb) {
      ++p_;
      uint64_t bits = be<uint64_t>();
      double d;
      std::memcpy(&d, &bits, 8);
      x = static_cast<T>(d);
    } else if (tag <= 0x7f || tag >= 0xe0 || (tag >= 0xcc && tag <= 0xcf) || (tag >= 0xd0 && tag <= 0xd3)) {
      if (tag <= 0x7f || (tag >= 0xcc && tag <= 0xcf)) {
        uint64_t u = 0;
        read_integer(u);
        x = static_cast<T>(u);
      } else {
        int64_t s = 0;
        read_integer(s);
        x = static_cast<T>(s);
      }
    } else {
      fail_type("expected a number");
    }
  }

  const uint8_t* p_;
  const uint8_t* end_;
  const std::vector<std::string>& frames_;
  uint32_t max_depth_;
  uint32_t depth_ = 0;
  uint32_t fields_left_ = 0;  // fields of the struct being read that are still on the wire
  int64_t index_ = 0;         // element index for the next Scope of a vector element
  Frame path_[kMaxPath];
  uint32_t path_len_ = 0;
};

}  // namespace vela::msg::wire

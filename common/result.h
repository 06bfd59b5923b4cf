#pragma once
// Result<T>: a value or an Error, for "check, then act" code paths that must not
// throw across a boundary (decoders, validation, allocation answers). The project's
// one error currency: Status (= Result<Ok>) when there is no value, an Error with a
// field path for a bad field, VELA_TRY / VELA_TRY_ASSIGN to pass an error up.
#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace vela {

struct Error {
  std::string code;     // short machine-readable tag, e.g. "truncated", "bad_type"
  std::string message;  // human text naming what was wrong (field, key, value)
  std::string field;    // path of the field at fault ("params.top_p", "prompt_token_ids[3]"); may be empty
};

// The value of a Status that succeeded.
struct Ok {};

template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}        // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

using Status = Result<Ok>;
inline Status ok_status() { return Ok{}; }

inline Error make_error(std::string code, std::string message) {
  return Error{std::move(code), std::move(message), {}};
}
inline Error field_error(std::string code, std::string field, std::string message) {
  return Error{std::move(code), std::move(message), std::move(field)};
}

}  // namespace vela

#define VELA_CONCAT_INNER(a, b) a##b
#define VELA_CONCAT(a, b) VELA_CONCAT_INNER(a, b)
// Returns the error of `expr` (a Result or Status) from the enclosing function.
#define VELA_TRY(expr)                                        \
  do {                                                        \
    if (auto vela_try_result_ = (expr); !vela_try_result_)    \
      return vela_try_result_.error();                        \
  } while (0)
// `lhs = *expr` when expr succeeded, else returns its error. lhs may declare: VELA_TRY_ASSIGN(auto x, f());
#define VELA_TRY_ASSIGN(lhs, expr) VELA_TRY_ASSIGN_IMPL(VELA_CONCAT(vela_try_value_, __LINE__), lhs, expr)
#define VELA_TRY_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                         \
  if (!tmp) return tmp.error();              \
  lhs = std::move(tmp).value()

// Errors as values: every fallible function in the core returns Result<T>.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace machineid {

// What kind of failure; the message says what and where.
enum class Errc {
  malformed,    // input violates its format
  limit,        // input exceeds a named hard limit
  unsupported,  // well-formed but not something we accept
  io,           // a file or socket could not be read or written
  transient,    // descriptors or memory ran out, or a call was interrupted: retry soon
  config,       // a configuration value is wrong
  crypto,       // a signature or key failed a cryptographic check
};

struct Error {
  Errc code;
  std::string message;
};

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

// Prefixes an error's message with where it happened ("file:12: ...").
inline Error with_context(Error e, const std::string& where) {
  e.message = where + ": " + e.message;
  return e;
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return error_; }

 private:
  Error error_{};
  bool failed_ = false;
};

using Status = Result<void>;

}  // namespace machineid

// Evaluates a Result expression; on failure returns its error from the caller.
#define MID_TRY(var, expr)                        \
  auto var##_result_ = (expr);                    \
  if (!var##_result_.ok()) return var##_result_.error(); \
  auto var = std::move(var##_result_).value()

#define MID_CHECK(expr)                               \
  do {                                                \
    auto mid_status_ = (expr);                        \
    if (!mid_status_.ok()) return mid_status_.error(); \
  } while (0)

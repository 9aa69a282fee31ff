// Errors as values at module boundaries.
//
// Every function that can fail on bad input or on a failing library returns a
// Status or a Result<T>. The error carries a kind (which the CLI maps to an exit
// code: kBadInput -> 2, everything else -> 1) and a one-line message that names
// the file and the problem. Exceptions from third-party libraries are caught at
// the edge of the module that calls them and converted here.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace hilum {

enum class ErrorKind {
  kBadInput,     // the user's data or arguments are wrong (exit code 2)
  kUnsupported,  // valid but not handled by this build or this code (exit code 2)
  kInternal,     // a bug or a failing library/system call (exit code 1)
  kCancelled,    // the user cancelled a long operation (exit code 1)
};

class Error {
 public:
  Error(ErrorKind kind, std::string message) : kind_(kind), message_(std::move(message)) {}

  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "<prefix>: <message>" (for adding the file name
  // or the stage at a higher level).
  Error with_context(const std::string& prefix) const {
    return Error(kind_, prefix + ": " + message_);
  }

 private:
  ErrorKind kind_;
  std::string message_;
};

inline Error bad_input(std::string message) { return Error(ErrorKind::kBadInput, std::move(message)); }
inline Error unsupported(std::string message) { return Error(ErrorKind::kUnsupported, std::move(message)); }
inline Error internal_error(std::string message) { return Error(ErrorKind::kInternal, std::move(message)); }
inline Error cancelled_error() { return Error(ErrorKind::kCancelled, "cancelled"); }

// Exit code the CLI uses for an error of this kind.
inline int exit_code_for(const Error& e) {
  switch (e.kind()) {
    case ErrorKind::kBadInput:
    case ErrorKind::kUnsupported:
      return 2;
    default:
      return 1;
  }
}

// Value or error. Accessing value() of an error (or error() of a value) is a
// programmer bug and asserts.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Success or error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  static Status Ok() { return Status(); }

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { assert(!ok()); return *error_; }

 private:
  std::optional<Error> error_;
};

}  // namespace hilum

// Propagates an error from an expression returning Status or Result<T>.
#define HILUM_RETURN_IF_ERROR(expr)                \
  do {                                             \
    auto _hilum_status = (expr);                   \
    if (!_hilum_status.ok()) return _hilum_status.error(); \
  } while (0)

#define HILUM_CONCAT_INNER(a, b) a##b
#define HILUM_CONCAT(a, b) HILUM_CONCAT_INNER(a, b)

// HILUM_ASSIGN_OR_RETURN(auto x, f()); assigns the value of a Result or returns its error.
#define HILUM_ASSIGN_OR_RETURN(lhs, expr) \
  HILUM_ASSIGN_OR_RETURN_IMPL(HILUM_CONCAT(_hilum_result_, __LINE__), lhs, expr)
#define HILUM_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.error();                \
  lhs = std::move(tmp).value()

//===- Error.h - The runtime's one way of reporting failure -----*- C++ -*-===//
//
// Every runtime function that can fail returns the failure as a value: an
// Error when it has nothing else to return, a Result<T> when it does. Both
// carry one line that names the file, tensor or kernel at fault. The runtime
// throws no exceptions, and an empty string never stands for success.
//
//===----------------------------------------------------------------------===//

#ifndef ROTOR_RT_ERROR_H
#define ROTOR_RT_ERROR_H

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace rotor::rt {

/// Success, or a failure and its message. It is true when it holds a
/// failure, as llvm::Error is, so that a caller passes one on with
/// `if (Error err = step()) return err;`.
class [[nodiscard]] Error {
public:
  static Error success() { return Error(); }
  static Error failure(std::string message) {
    Error e;
    e.failed = true;
    e.text = std::move(message);
    return e;
  }
  explicit operator bool() const { return failed; }
  /// What went wrong; empty on success.
  const std::string &message() const { return text; }

private:
  Error() = default;
  bool failed = false;
  std::string text;
};

/// A value or the Error that kept it from being computed.
template <typename T> class [[nodiscard]] Result {
public:
  Result(T value) : data(std::move(value)) {}
  /// Passes on a failure; `error` must hold one.
  Result(Error error) : data(std::move(error)) {
    assert(bool(std::get<Error>(data)) && "a Result from a success");
  }
  static Result failure(std::string message) {
    return Result(Error::failure(std::move(message)));
  }
  explicit operator bool() const { return std::holds_alternative<T>(data); }
  T &operator*() { return std::get<T>(data); }
  T *operator->() { return &std::get<T>(data); }
  /// The failure's message.
  const std::string &error() const { return std::get<Error>(data).message(); }

private:
  std::variant<T, Error> data;
};

} // namespace rotor::rt

#endif // ROTOR_RT_ERROR_H

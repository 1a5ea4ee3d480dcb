#pragma once

// Errors are values: a Result<T> holds either a T or an Error with a message. Exceptions never
// cross a module boundary; CHECK is for states that cannot happen.

#include <string>
#include <utility>
#include <variant>

#include <glog/logging.h>

namespace agora {

struct Error {
  explicit Error(std::string m) : message(std::move(m)) {}
  std::string message;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(const T& value) : value_(value) {}                       // NOLINT: implicit on purpose
  Result(T&& value) : value_(std::move(value)) {}                 // NOLINT
  Result(const Error& error) : value_(error) {}                   // NOLINT
  Result(Error&& error) : value_(std::move(error)) {}             // NOLINT

  bool ok() const { return std::holds_alternative<T>(value_); }
  explicit operator bool() const { return ok(); }

  const T& value() const& {
    CHECK(ok()) << "Result::value() on an error: " << error();
    return std::get<T>(value_);
  }
  T& value() & {
    CHECK(ok()) << "Result::value() on an error: " << error();
    return std::get<T>(value_);
  }
  T&& value() && {
    CHECK(ok()) << "Result::value() on an error: " << error();
    return std::get<T>(std::move(value_));
  }
  // The value, or `fallback` for an error.
  T value_or(T fallback) const& { return ok() ? std::get<T>(value_) : std::move(fallback); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  const std::string& error() const {
    CHECK(!ok()) << "Result::error() on a value";
    return std::get<Error>(value_).message;
  }

 private:
  std::variant<T, Error> value_;
};

// Result<void>: success or an error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(const Error& error) : error_(error.message), failed_(true) {}  // NOLINT
  Result(Error&& error) : error_(std::move(error.message)), failed_(true) {}  // NOLINT

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const std::string& error() const {
    CHECK(failed_) << "Result::error() on success";
    return error_;
  }

 private:
  std::string error_;
  bool failed_ = false;
};

using Status = Result<void>;

inline Status ok() { return Status(); }

}  // namespace agora

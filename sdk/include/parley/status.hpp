// Error codes and the Status value used across the SDK.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "parley/export.hpp"

namespace parley {

// The closed set of error codes. The first group is the client protocol's
// (docs/protocol.md); `timeout` exists only on the bus and reaches clients as
// `unavailable`.
enum class ErrorCode {
  ok,
  bad_request,
  unauthenticated,
  forbidden,
  not_found,
  conflict,
  group_full,
  too_large,
  rate_limited,
  unsupported,
  unavailable,
  internal,
  timeout,
};

// The wire name of a code ("bad_request"); `timeout` is reported as "unavailable".
inline std::string_view wire_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::ok:
      return "ok";
    case ErrorCode::bad_request:
      return "bad_request";
    case ErrorCode::unauthenticated:
      return "unauthenticated";
    case ErrorCode::forbidden:
      return "forbidden";
    case ErrorCode::not_found:
      return "not_found";
    case ErrorCode::conflict:
      return "conflict";
    case ErrorCode::group_full:
      return "group_full";
    case ErrorCode::too_large:
      return "too_large";
    case ErrorCode::rate_limited:
      return "rate_limited";
    case ErrorCode::unsupported:
      return "unsupported";
    case ErrorCode::unavailable:
      return "unavailable";
    case ErrorCode::timeout:
      return "unavailable";
    case ErrorCode::internal:
      return "internal";
  }
  return "internal";
}

// The outcome of an operation: ok, or a code with a human-readable message
// and, optionally, a machine-readable `reason` (for example a filter plugin's
// "profanity"), sent to the client as the error frame's "reason" field.
class Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message, std::string reason = {})
      : code_(code), message_(std::move(message)), reason_(std::move(reason)) {}

  static Status success() { return {}; }

  bool ok() const { return code_ == ErrorCode::ok; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& reason() const { return reason_; }

 private:
  ErrorCode code_ = ErrorCode::ok;
  std::string message_;
  std::string reason_;
};

// Thrown by plugin code to answer a request or bus call with a specific error
// code; the kernel catches it at the boundary. Any other exception becomes
// `internal` and is logged with the plugin's name.
class PARLEY_SDK_VISIBLE Failure : public std::runtime_error {
 public:
  Failure(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace parley

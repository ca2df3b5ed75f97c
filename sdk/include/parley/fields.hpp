// Reading request fields with the protocol's error rules: a field of the
// wrong kind is `bad_request` (thrown as parley::Failure, which the kernel
// turns into the reply).
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "parley/status.hpp"

namespace parley::fields {

inline std::optional<std::string_view> optional_string(const boost::json::object& fields,
                                                       std::string_view key) {
  auto it = fields.find(key);
  if (it == fields.end() || it->value().is_null()) return std::nullopt;
  if (!it->value().is_string()) {
    throw Failure(ErrorCode::bad_request, "'" + std::string(key) + "' must be a string");
  }
  return std::string_view(it->value().get_string());
}

inline std::string_view required_string(const boost::json::object& fields, std::string_view key) {
  auto value = optional_string(fields, key);
  if (!value) throw Failure(ErrorCode::bad_request, "'" + std::string(key) + "' is required");
  return *value;
}

inline std::optional<std::int64_t> optional_int(const boost::json::object& fields,
                                                std::string_view key) {
  auto it = fields.find(key);
  if (it == fields.end() || it->value().is_null()) return std::nullopt;
  const auto& v = it->value();
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.get_uint64());
  }
  if (v.is_double()) {
    // Range first: casting a double outside int64_t's range is undefined.
    const double d = v.get_double();
    if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == std::trunc(d)) {
      return static_cast<std::int64_t>(d);
    }
  }
  throw Failure(ErrorCode::bad_request, "'" + std::string(key) + "' must be an integer");
}

inline std::int64_t required_int(const boost::json::object& fields, std::string_view key) {
  auto value = optional_int(fields, key);
  if (!value) throw Failure(ErrorCode::bad_request, "'" + std::string(key) + "' is required");
  return *value;
}

}  // namespace parley::fields
